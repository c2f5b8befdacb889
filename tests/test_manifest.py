"""The run manifest (mrfbatch.manifest): every task's outcome, read from its status.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrfbatch import manifest as manifest_module
from mrfbatch.layout import RunLayout
from mrfbatch.manifest import build_manifest, read_manifest_without_plans, write_manifest
from mrfbatch.tasks import SkippedEntry, Task

TASKS = [
    Task("alpha", "https://h.example/alpha.json?Signature=s3cr3tS1gn", ({"plan_name": "A"},)),
    Task("beta", "https://h.example/beta.json"),
    Task("gamma", "https://h.example/gamma.json"),
    Task("delta", "https://h.example/delta.json"),
]


def write_status(layout: RunLayout, network_id: str, **fields: Any) -> None:
    path = Path(layout.status(network_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"network_id": network_id, **fields}))


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    layout = RunLayout(str(tmp_path / "out"))
    counts = {"rate_rows": 10, "provider_rows": 4, "items_matched": 2, "bytes_read": 1000}
    write_status(layout, "alpha", status="success", output_files={"rates": "r"}, **counts)
    counts = {"rate_rows": 5, "provider_rows": 0, "items_matched": 1, "bytes_read": 500}
    incomplete = ["2 of 2 remote files failed"]
    write_status(layout, "beta", status="incomplete", incomplete=incomplete, **counts)
    write_status(layout, "gamma", status="failed", error="HTTP 404", retryable=False)
    return layout


def test_build_manifest_counts_each_status_and_sums_the_rows(layout: RunLayout) -> None:
    manifest = build_manifest(TASKS, layout, "urls", "list.txt")
    assert manifest["total_tasks"] == 4
    assert manifest["summary"] == {
        "successful": 1,
        "incomplete": 1,
        "failed": 1,
        "not_run": 1,
        "rate_rows": 15,
        "provider_rows": 4,
        "allowed_amount_rows": 0,
        "allowed_amount_provider_rows": 0,
        "items_matched": 3,
        "bytes_read": 1500,
        "codes_listed": None,  # no whitelist
        "codes_not_found": None,
    }
    by_id = {e["network_id"]: e for e in manifest["extractions"]}
    assert by_id["beta"]["incomplete"] == ["2 of 2 remote files failed"]
    assert (by_id["gamma"]["error"], by_id["gamma"]["retryable"]) == ("HTTP 404", False)
    assert by_id["delta"]["status"] == "not_run"
    assert by_id["delta"]["error"] == "no status: the task has not run, or was interrupted"
    assert by_id["alpha"]["log_file"] == f"{layout.output_dir}/logs/extract/alpha.log"
    assert by_id["alpha"]["plan_metadata"] == [{"plan_name": "A"}]


def test_build_manifest_a_job_that_ended_without_its_status_failed(layout: RunLayout) -> None:
    """Killed (out of memory, say) in this run: failed with the console's words, not `not_run`,
    and over whatever status an earlier run left (gamma's)."""
    why = "the job ended without a status (killed, out of memory, or a full disk?); see x.log"
    manifest = build_manifest(
        TASKS, layout, "urls", "list.txt", unrecorded={"delta": why, "gamma": why}
    )
    by_id = {e["network_id"]: e for e in manifest["extractions"]}
    for network_id in ("delta", "gamma"):
        entry = by_id[network_id]
        assert (entry["status"], entry["error"], entry["retryable"]) == ("failed", why, True)
    assert (manifest["summary"]["failed"], manifest["summary"]["not_run"]) == (2, 0)


def test_build_manifest_carries_file_kind_and_allowed_amount_counts(tmp_path: Path) -> None:
    layout = RunLayout(str(tmp_path / "out"))
    tables = {"allowed_amounts": "a", "allowed_amount_providers": "p"}
    write_status(
        layout,
        "alpha",
        status="success",
        file_kind="allowed-amounts",
        output_files=tables,
        allowed_amount_rows=7,
        allowed_amount_provider_rows=12,
    )
    write_status(layout, "beta", status="success", rate_rows=3)  # before file kinds
    write_status(
        layout,
        "gamma",
        status="success",
        file_kind="allowed-amounts",
        allowed_amount_rows=1,
        allowed_amount_provider_rows=0,
    )
    manifest = build_manifest(TASKS, layout, "urls", "list.txt")
    by_id = {e["network_id"]: e for e in manifest["extractions"]}
    assert [by_id[n]["file_kind"] for n in ("alpha", "beta", "gamma", "delta")] == [
        "allowed-amounts",
        "in-network",
        "allowed-amounts",
        "in-network",  # not run: what the source says (a urls source's task: in-network)
    ]
    assert by_id["alpha"]["output_files"] == tables
    assert (by_id["alpha"]["allowed_amount_rows"], by_id["alpha"]["rate_rows"]) == (7, None)
    assert manifest["summary"]["allowed_amount_rows"] == 8
    assert manifest["summary"]["allowed_amount_provider_rows"] == 12
    assert manifest["summary"]["rate_rows"] == 3


def codes_layout(tmp_path: Path, **matched: Any) -> RunLayout:
    """alpha and beta read with a whitelist of 4 codes, each having the codes `matched` gives
    it; gamma failed with an item of 0450 read before it broke (a failed file has no codes)."""
    layout = RunLayout(str(tmp_path / "out"))
    for network_id, status in (("alpha", "success"), ("beta", "incomplete")):
        codes = matched.get(network_id, {})
        write_status(layout, network_id, status=status, whitelist_size=4, matched_codes=codes)
    write_status(layout, "gamma", status="failed", whitelist_size=4, matched_codes={"0450": 1})
    return layout


WHITELIST = frozenset({"0450", "27447", "99213", "J1885"})


def test_build_manifest_names_the_codes_no_file_read_has(tmp_path: Path) -> None:
    layout = codes_layout(tmp_path, alpha={"27447": 2}, beta={"27447": 1, "J1885": 4})
    summary = build_manifest(TASKS, layout, "urls", "list.txt", whitelist=WHITELIST)["summary"]
    assert (summary["codes_listed"], summary["codes_not_found"]) == (4, ["0450", "99213"])


def test_build_manifest_does_not_name_codes_when_a_file_does_not_say_its_own(
    tmp_path: Path,
) -> None:
    """A status from before matched_codes, or from another whitelist: no list, rather than
    a wrong one."""
    layout = codes_layout(tmp_path, alpha={"27447": 2})
    write_status(layout, "beta", status="success")  # no matched_codes
    summary = build_manifest(TASKS, layout, "urls", "list.txt", whitelist=WHITELIST)["summary"]
    assert summary["codes_not_found"] is None
    layout = codes_layout(tmp_path, alpha={"27447": 2})
    write_status(layout, "beta", status="success", whitelist_size=3, matched_codes={})
    summary = build_manifest(TASKS, layout, "urls", "list.txt", whitelist=WHITELIST)["summary"]
    assert summary["codes_not_found"] is None


def test_build_manifest_shows_no_secret_of_a_url(layout: RunLayout) -> None:
    manifest = build_manifest(TASKS, layout, "url", "https://h.example/i.json?token=t0k3nV4lue")
    text = json.dumps(manifest)
    assert "s3cr3tS1gn" not in text and "t0k3nV4lue" not in text
    assert manifest["source_input"] == "https://h.example/i.json"
    assert manifest["extractions"][0]["url"] == "https://h.example/alpha.json"


def test_build_manifest_reads_an_unknown_status_as_failed(layout: RunLayout) -> None:
    write_status(layout, "delta", status="exploded")
    (Path(layout.status("gamma"))).write_text("{not json")
    by_id = {e["network_id"]: e for e in build_manifest(TASKS, layout, "urls", "l")["extractions"]}
    assert by_id["delta"]["status"] == "failed"
    assert by_id["gamma"]["status"] == "not_run"  # unreadable: as if there were none


def test_write_manifest_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "manifest.json"
    write_manifest({"total_tasks": 1}, str(path))
    write_manifest({"total_tasks": 2}, str(path))
    assert json.loads(path.read_text()) == {"total_tasks": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"]


# Plans whose text looks like the layout read_manifest_without_plans passes over: a list's
# end, the key itself, newlines, nested lists and objects, an empty plan, text beyond ASCII.
AWKWARD_PLANS = (
    {"plan_name": "ends\n      ]\n", "plan_id": "1"},
    {"plan_name": '"plan_metadata": [', "states": ["CA", ["NY"]], "ids": {"a": [1.5, None]}},
    {},
    {"plan_name": "Café ☃ \u2028"},
)


def test_read_manifest_without_plans_is_the_manifest_less_its_plans(
    layout: RunLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [Task("alpha", "https://h.example/a.json", AWKWARD_PLANS), *TASKS[1:]]
    manifest = build_manifest(tasks, layout, "urls", "list.txt", ([SkippedEntry("x", "y")], 1))
    path = str(tmp_path / "manifest.json")
    write_manifest(manifest, path)
    assert json.loads(Path(path).read_text()) == manifest
    assert manifest["extractions"][0]["plan_metadata"] == list(AWKWARD_PLANS)
    assert manifest["extractions"][1]["plan_metadata"] == []
    expected = json.loads(json.dumps(manifest))
    for entry in expected["extractions"]:
        entry["plan_metadata"] = None
    with monkeypatch.context() as patched:  # as written: the plans' text is passed over
        patched.setattr(manifest_module, "read_json_object", None)
        assert read_manifest_without_plans(path) == expected
    # laid out otherwise (by hand, another tool): read whole, with the same answer
    for indent in (None, 4, "\t"):
        Path(path).write_text(json.dumps(manifest, indent=indent))
        assert read_manifest_without_plans(path) == expected


@pytest.mark.parametrize("text", [None, "", "{not json", "[1, 2]"])
def test_read_manifest_of_no_manifest_is_none(tmp_path: Path, text: str | None) -> None:
    path = tmp_path / "manifest.json"
    if text is not None:
        path.write_text(text)
    assert read_manifest_without_plans(str(path)) is None


def test_build_manifest_of_a_source_that_skipped_nothing_has_empty_skipped_entries(
    layout: RunLayout,
) -> None:
    manifest = build_manifest(TASKS, layout, "urls", "list.txt")
    assert (manifest["skipped_entries"], manifest["skipped_entries_total"]) == ([], 0)


def test_build_manifest_lists_the_skipped_entries_and_their_total(layout: RunLayout) -> None:
    kept = [
        SkippedEntry("reporting_structure[0].in_network_files[2]", "location is missing"),
        SkippedEntry("reporting_structure[4]", "expected a reporting structure object, found null"),
    ]
    manifest = build_manifest(TASKS, layout, "index", "toc.json", (kept, 1500))
    assert manifest["skipped_entries"] == [
        {"where": "reporting_structure[0].in_network_files[2]", "reason": "location is missing"},
        {
            "where": "reporting_structure[4]",
            "reason": "expected a reporting structure object, found null",
        },
    ]
    assert manifest["skipped_entries_total"] == 1500


def test_build_manifest_file_kind_from_the_status_else_the_task_else_in_network(
    layout: RunLayout,
) -> None:
    tasks = [
        Task("alpha", "https://h.example/alpha.json", (), {"file_kind": "allowed-amounts"}),
        Task("beta", "https://h.example/beta.json", (), {"file_kind": "allowed-amounts"}),
        Task("delta", "https://h.example/delta.json", (), {"file_kind": "allowed-amounts"}),
        Task("gamma", "https://h.example/gamma.json"),
    ]
    write_status(layout, "beta", status="success", file_kind="in-network")  # found when read
    by_id = {e["network_id"]: e for e in build_manifest(tasks, layout, "index", "i")["extractions"]}
    assert {name: entry["file_kind"] for name, entry in by_id.items()} == {
        "alpha": "allowed-amounts",  # its status.json has no file_kind
        "beta": "in-network",
        "delta": "allowed-amounts",  # not run
        "gamma": "in-network",  # a task that says no kind
    }
