"""The words of a run's outcome: a file's line, the closing block (mrfbatch.summary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrfbatch import summary
from mrfbatch.layout import RunLayout
from mrfbatch.summary import redone_text, summary_text, task_line
from mrfbatch.tasks import SkippedEntry


@pytest.fixture(autouse=True)
def in_a_fresh_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layouts here are relative: a results/ of make run's must not count."""
    monkeypatch.chdir(tmp_path)


def summary_lines(manifest: dict[str, object], whitelist: str | None = None) -> list[str]:
    """The summary of a run of 1 s into results/, whose command was `snakemake -c1`."""
    return summary_text(
        manifest, RunLayout("results"), 1, "snakemake -c1", whitelist=whitelist
    ).splitlines()


def test_summary_text_lists_what_failed_and_how_to_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    layout = RunLayout("results")
    Path("results").mkdir()
    Path(layout.manifest).write_text("{}")  # the manifest line names it when it is there
    entries = [
        {"network_id": f"f{i}", "status": "failed", "error": f"HTTP 404 ({i})"} for i in range(7)
    ]
    entries.append({"network_id": "r", "status": "incomplete", "incomplete": ["2 of 2 ..."]})
    manifest = {
        "total_tasks": 10,
        "extractions": entries,
        "summary": {
            "successful": 2,
            "incomplete": 1,
            "failed": 7,
            "not_run": 0,
            "rate_rows": 1234,
            "provider_rows": 56,
            "items_matched": 0,
            "bytes_read": 2_500_000,
        },
    }
    text = summary_text(
        manifest, layout, 75, "snakemake --cores 2", done_before=1, whitelist="codes.txt"
    )
    assert text.splitlines() == [
        "mrfbatch: 10 files in 75 s: 2 success, 1 incomplete, 7 failed (1 done before this run)",
        "  rows:       1,234 rate rows, 56 provider rows, from 2.5 MB read",
        "  note:       no item of the 3 files read has a billing code listed in codes.txt: check "
        "the codes (and their type: CPT, HCPCS, RC, ...)",
        "  tables:     results/<network_id>/rates.parquet, providers.parquet",
        "  manifest:   results/manifest.json (every file's status)",
        "  logs:       results/logs/extract/<network_id>.log",
        "  failed:     f0: HTTP 404 (0)",
        "  failed:     f1: HTTP 404 (1)",
        "  failed:     f2: HTTP 404 (2)",
        "  failed:     f3: HTTP 404 (3)",
        "  failed:     f4: HTTP 404 (4)",
        "  ...         and 3 more in the manifest",
        "  next:       run the same command again: it redoes the 8 files not done and keeps "
        "the others",
        "              snakemake --cores 2",
    ]


def test_summary_text_names_the_tables_the_statuses_list() -> None:
    entries = [
        {"network_id": "a", "status": "failed", "error": "HTTP 404", "output_files": {}},
        {
            "network_id": "b",
            "status": "success",
            "output_files": {"rates": "out/b/rates.csv", "providers": "out/b/providers.csv"},
        },
    ]
    manifest = {"total_tasks": 2, "extractions": entries, "summary": {"successful": 1}}
    lines = summary_text(manifest, RunLayout("out"), 1, "snakemake -c1").splitlines()
    assert "  tables:     out/<network_id>/rates.csv, providers.csv" in lines


def test_summary_text_of_a_source_that_could_not_be_read() -> None:
    manifest = {"total_tasks": 0, "error": "the csv source could not be turned into tasks"}
    assert summary_lines(manifest) == [
        "mrfbatch: stopped in 1.0 s: the csv source could not be turned into tasks",
        "  next:       fix the source, then run again: snakemake -c1",
    ]


def test_summary_text_of_a_source_stopped_by_a_full_disk_says_to_run_again() -> None:
    """The task list could not be written, nor the run's files: the source is not to blame."""
    unwritten = "the disk is full (No space left on device) while writing results/plans.parquet"
    manifest = {
        "total_tasks": 0,
        "error": "the csv source could not be turned into tasks",
        "unwritten": unwritten,
    }
    assert summary_lines(manifest) == [
        "mrfbatch: stopped in 1.0 s: the csv source could not be turned into tasks",
        f"  error:      {unwritten}",
        "  next:       run again: snakemake -c1",
    ]


def test_summary_text_of_a_run_whose_own_files_are_unwritten(tmp_path: Path) -> None:
    """Every file done, the manifest and database not written: no line points at them, and
    the rerun is still the next step."""
    layout = RunLayout(str(tmp_path / "results"))
    entries = [{"network_id": "a", "status": "success"}]
    manifest = {
        "total_tasks": 1,
        "extractions": entries,
        "summary": {"successful": 1},
        "unwritten": "the disk is full (...) while writing results/mrfbatch.duckdb; ...",
    }
    lines = summary_text(manifest, layout, 1, "snakemake -c1").splitlines()
    assert lines[-3:] == [
        "  error:      the disk is full (...) while writing results/mrfbatch.duckdb; ...",
        "  next:       run the same command again: it keeps the 1 file done and writes the rest",
        "              snakemake -c1",
    ]
    assert not any(line.startswith(("  manifest:", "  query:", "  report:")) for line in lines)


def test_summary_text_of_a_run_interrupted_while_the_source_was_read() -> None:
    """Ctrl-C while the index downloads: the source is not to blame."""
    manifest = {"total_tasks": 0, "error": "the index source could not be turned into tasks"}
    lines = summary_text(manifest, RunLayout("results"), 4, "snakemake -c1", interrupted=True)
    assert lines.splitlines() == [
        "mrfbatch: interrupted after 4.0 s, while the source was read",
        "  next:       run the same command again: snakemake -c1",
    ]


def test_summary_text_of_an_interrupted_run_says_so_first() -> None:
    entries = [{"network_id": "big", "status": "failed", "error": "interrupted"}]
    manifest = {"total_tasks": 2, "extractions": entries, "summary": {"successful": 1, "failed": 1}}
    lines = summary_text(manifest, RunLayout("results"), 4, "snakemake -c1", interrupted=True)
    assert lines.splitlines()[0] == "mrfbatch: 2 files in 4.0 s (interrupted): 1 success, 1 failed"


def test_task_line_of_a_failure_without_a_reason() -> None:
    assert task_line({"network_id": "x", "status": "failed"}) == "x: FAILED: no reason given"


def test_summary_text_of_a_run_with_nothing_to_do() -> None:
    manifest = {"total_tasks": 2, "summary": {"successful": 2, "bytes_read": 1000}}
    lines = summary_text(manifest, RunLayout("out"), 0.2, "snakemake -c1", done_before=2)
    assert lines.splitlines()[0] == "mrfbatch: nothing to do, 2 files done before: 2 success"
    assert "next:" not in lines


def test_rerun_command_is_the_front_ends_when_it_says_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.argv", ["/venv/bin/snakemake", "--cores", "2", "--config", "a=b c"])
    monkeypatch.delenv(summary.RERUN_VARIABLE, raising=False)
    assert summary.rerun_command() == "snakemake --cores 2 --config 'a=b c'"
    monkeypatch.setenv(summary.RERUN_VARIABLE, "python -m mrfbatch.batch_orchestrator ...")
    assert summary.rerun_command() == "python -m mrfbatch.batch_orchestrator ..."


SQL = (
    "SELECT billing_code, count(*) AS rates, median(negotiated_rate) AS median FROM rates "
    "GROUP BY ALL ORDER BY ALL"
)


@pytest.mark.parametrize(
    ("output_dir", "command"),
    [
        ("results", f"mrfbatch-query '{SQL}'"),
        ("my run", f"mrfbatch-query --output-dir 'my run' '{SQL}'"),
    ],
)
def test_summary_text_says_how_to_query_and_where_the_report_is(
    output_dir: str, command: str
) -> None:
    layout = RunLayout(output_dir)
    manifest = {"total_tasks": 0, "extractions": [], "summary": {"successful": 0}}
    lines = summary_text(manifest, layout, 1, "snakemake -c1").splitlines()
    assert not any(line.startswith(("  query:", "  report:")) for line in lines)
    Path(output_dir).mkdir()
    Path(layout.database).touch()
    Path(layout.report).touch()
    lines = summary_text(manifest, layout, 1, "snakemake -c1").splitlines()
    assert f"  query:      {command}" in lines
    assert f"  report:     {output_dir}/report.html (open it in a browser)" in lines


def test_task_line_of_an_allowed_amounts_file() -> None:
    status = {
        "network_id": "aa-file",
        "status": "success",
        "file_kind": "allowed-amounts",
        "items_seen": 3,
        "items_matched": 3,
        "rate_rows": 0,
        "allowed_amount_rows": 7,
        "allowed_amount_provider_rows": 12,
        "bytes_read": 1500,
        "duration_seconds": 0.5,
    }
    assert task_line(status) == (
        "aa-file: success (allowed amounts), 3 of 3 items, 7 payment rows, 12 provider rows, "
        "1.5 kB in 0.5 s"
    )


def test_summary_text_of_a_run_with_both_kinds_of_file() -> None:
    entries = [
        {
            "network_id": "a",
            "status": "success",
            "output_files": {
                "rates": "out/a/rates.parquet",
                "providers": "out/a/providers.parquet",
            },
        },
        {
            "network_id": "b",
            "status": "success",
            "output_files": {
                "allowed_amounts": "out/b/allowed_amounts.parquet",
                "allowed_amount_providers": "out/b/allowed_amount_providers.parquet",
            },
        },
    ]
    totals = {"successful": 2, "rate_rows": 4, "provider_rows": 2, "allowed_amount_rows": 7}
    manifest = {"total_tasks": 2, "extractions": entries, "summary": totals}
    lines = summary_text(manifest, RunLayout("out"), 1, "snakemake -c1").splitlines()
    assert lines[1] == (
        "  rows:       4 rate rows, 2 provider rows, 7 allowed-amount payment rows, "
        "0 allowed-amount provider rows, from 0 B read"
    )
    assert lines[2] == (
        "  tables:     out/<network_id>/rates.parquet, providers.parquet, "
        "allowed_amounts.parquet, allowed_amount_providers.parquet"
    )


def test_skipped_text_of_a_source_that_skipped_nothing_is_empty() -> None:
    assert summary.skipped_text([], 0, "results/logs/tasks.log") == ""


def test_skipped_text_names_a_few_entries() -> None:
    one = SkippedEntry("reporting_structure[3].in_network_files[7]", "location is missing")
    two = SkippedEntry(
        "reporting_structure[5]", "expected a reporting structure object, found null"
    )
    assert summary.skipped_text([one], 1, "results/logs/tasks.log") == (
        ", 1 entry skipped (reporting_structure[3].in_network_files[7]: location is missing)"
    )
    assert summary.skipped_text([one, two], 2, "results/logs/tasks.log") == (
        ", 2 entries skipped (reporting_structure[3].in_network_files[7]: location is missing; "
        "reporting_structure[5]: expected a reporting structure object, found null)"
    )


def test_skipped_text_of_many_entries_gives_the_count_the_first_and_the_log() -> None:
    entries = [SkippedEntry(f"reporting_structure[{n}]", "location is missing") for n in range(4)]
    assert summary.skipped_text(entries[:1000], 1204, "results/logs/tasks.log") == (
        ", 1,204 entries skipped (first: reporting_structure[0]: location is missing; "
        "see results/logs/tasks.log)"
    )


def test_summary_text_says_how_many_entries_were_skipped() -> None:
    manifest = {"total_tasks": 1, "summary": {"successful": 1}, "skipped_entries_total": 2}
    text = summary_text(manifest, RunLayout("results"), 1.0, "snakemake --cores 2")
    assert (
        "  skipped:    2 entries of the source, named in results/logs/tasks.log and the manifest"
    ) in text.splitlines()


def test_summary_text_says_which_failures_a_rerun_does_not_cure() -> None:
    entries = [
        {"network_id": "gone", "status": "failed", "error": "HTTP 404", "retryable": False},
        {"network_id": "flaky", "status": "failed", "error": "HTTP 503", "retryable": True},
        {"network_id": "page", "status": "failed", "error": "an HTML page", "retryable": False},
    ]
    manifest = {
        "total_tasks": 3,
        "extractions": entries,
        "summary": {"successful": 0, "failed": 3},
    }
    lines = summary_lines(manifest)
    assert lines[-3:] == [
        "  next:       run the same command again: it redoes the 3 files not done and keeps "
        "the others",
        "              (gone and page will fail again as they stand, for the reasons above: "
        "fix or drop them in the source)",
        "              snakemake -c1",
    ]


@pytest.mark.parametrize(
    ("lasting", "who"),
    [
        (1, "(f0 will fail again as it stands, for the reason above: fix or drop it in"),
        (3, "(f0, f1 and f2 will fail again as they stand, for the reasons above: fix or"),
        (4, "(4 of them will fail again as they stand, for the reasons above: fix or drop"),
    ],
)
def test_summary_text_names_the_few_failures_a_rerun_does_not_cure(lasting: int, who: str) -> None:
    entries = [
        {"network_id": f"f{i}", "status": "failed", "error": "HTTP 404", "retryable": False}
        for i in range(lasting)
    ]
    entries.append({"network_id": "flaky", "status": "failed", "error": "HTTP 503"})
    manifest = {"total_tasks": lasting + 1, "extractions": entries, "summary": {"failed": 1}}
    lines = summary_lines(manifest)
    assert lines[-2].strip().startswith(who), lines[-2]


def test_summary_text_of_one_failure_a_rerun_does_not_cure() -> None:
    entries = [{"network_id": "gone", "status": "failed", "error": "HTTP 404", "retryable": False}]
    manifest = {"total_tasks": 1, "extractions": entries, "summary": {"failed": 1}}
    lines = summary_lines(manifest)
    assert lines[-2] == (
        "              (it will fail again as it stands, for the reason above: fix or drop it "
        "in the source)"
    )


@pytest.mark.parametrize(
    ("source_type", "count", "cure"),
    [
        ("csv", 1, "fix or drop it in in/plans.csv"),
        ("urls", 2, "fix or drop them in in/plans.csv"),
        # a payer's index is not the user's to edit
        ("index", 1, "the file is the payer's, listed in in/plans.csv"),
        ("index", 2, "the files are the payer's, listed in in/plans.csv"),
        ("url", 1, "check the url"),
    ],
)
def test_summary_text_says_what_to_do_by_the_kind_of_source(
    source_type: str, count: int, cure: str
) -> None:
    entries = [
        {"network_id": f"f{i}", "status": "failed", "error": "HTTP 404", "retryable": False}
        for i in range(count)
    ]
    manifest = {
        "source_type": source_type,
        "source_input": "in/plans.csv",
        "total_tasks": count,
        "extractions": entries,
        "summary": {"failed": count},
    }
    lines = summary_lines(manifest)
    assert lines[-2].endswith(f"above: {cure})"), lines[-2]


@pytest.mark.parametrize(
    ("third", "next_line"),
    [
        # its remote files may answer later (503): a rerun may help, and it is not named
        (
            {"status": "incomplete", "incomplete": ["1 of 2 remote ..."], "retryable": True},
            "  next:       run the same command again: it redoes the 3 files not done and keeps "
            "the others",
        ),
        # every file not done is as a rerun would leave it: that comes before the command
        (
            {"status": "success"},
            "  next:       a rerun alone would not change the 2 files not done; once their "
            "causes are dealt with, run the same command again (it keeps the others)",
        ),
    ],
)
def test_summary_text_says_which_incomplete_files_a_rerun_does_not_complete(
    third: dict[str, object], next_line: str
) -> None:
    """An incomplete file whose remote files failed for good (404) is read again by a rerun,
    only to lack the same."""
    lacks = ["1 of 2 remote provider-reference files could not be fetched"]
    entries = [
        {"network_id": "gone", "status": "failed", "error": "HTTP 404", "retryable": False},
        {"network_id": "refs404", "status": "incomplete", "incomplete": lacks, "retryable": False},
        {"network_id": "third", **third},
    ]
    manifest = {
        "source_type": "index",
        "source_input": "toc.json",
        "total_tasks": 3,
        "extractions": entries,
        "summary": {"failed": 1, "incomplete": sum(e["status"] == "incomplete" for e in entries)},
    }
    lines = summary_lines(manifest)
    assert lines[-4:] == [
        next_line,
        "              (gone will fail again as it stands, for the reason above: the file is "
        "the payer's, listed in toc.json)",
        "              (refs404 will be incomplete again as it stands, for the reason above: the "
        "remote provider-reference files it lacks are the payer's; its tables have every rate)",
        "              snakemake -c1",
    ]


@pytest.mark.parametrize(
    ("extra", "not_run"),
    [
        # one file a rerun may cure (a 503) among the lasting one
        ({"network_id": "flaky", "status": "failed", "error": "HTTP 503", "retryable": True}, 0),
        # one file not run yet
        (None, 1),
    ],
)
def test_summary_text_sends_a_rerun_first_when_one_may_help(
    extra: dict[str, object] | None, not_run: int
) -> None:
    entries = [{"network_id": "gone", "status": "failed", "error": "HTTP 404", "retryable": False}]
    entries += [extra] if extra else [{"network_id": "later", "status": "not_run"}]
    manifest = {
        "total_tasks": 2,
        "extractions": entries,
        "summary": {"failed": len(entries) - not_run, "not_run": not_run},
    }
    lines = summary_lines(manifest)
    assert lines[-3:] == [
        "  next:       run the same command again: it redoes the 2 files not done and keeps "
        "the others",
        "              (gone will fail again as it stands, for the reason above: fix or drop it "
        "in the source)",
        "              snakemake -c1",
    ]


def test_summary_text_of_one_lasting_failure_says_a_rerun_alone_does_not_help() -> None:
    entries = [{"network_id": "gone", "status": "failed", "error": "HTTP 404", "retryable": False}]
    manifest = {"total_tasks": 1, "extractions": entries, "summary": {"failed": 1}}
    assert summary_lines(manifest)[-3] == (
        "  next:       a rerun alone would not change the 1 file not done; once its cause is "
        "dealt with, run the same command again (it keeps the others)"
    )


def test_summary_text_of_incomplete_files_only_a_rerun_does_not_complete() -> None:
    lacks = ["1 of 1 remote provider-reference files could not be fetched"]
    entries = [
        {"network_id": f"f{i}", "status": "incomplete", "incomplete": lacks, "retryable": False}
        for i in range(2)
    ]
    manifest = {"total_tasks": 2, "extractions": entries, "summary": {"incomplete": 2}}
    lines = summary_lines(manifest)
    assert lines[-2] == (
        "              (all 2 will be incomplete again as they stand, for the reasons above: the "
        "remote provider-reference files they lack are the payer's; their tables have every rate)"
    )


@pytest.mark.parametrize(
    ("not_found", "line"),
    [
        (
            ["0450", "99999"],
            "  codes:      3 of the 5 codes in codes.txt are in the 2 files read; not found: 0450, "
            "99999",
        ),
        (
            [f"C{i}" for i in range(7)],
            "  codes:      3 of the 10 codes in codes.txt are in the 2 files read; not found: C0, "
            "C1, C2, C3, C4 and 2 more (manifest.json lists them)",
        ),
    ],
)
def test_summary_text_names_the_codes_no_file_read_has(not_found: list[str], line: str) -> None:
    counts = {
        "successful": 1,
        "incomplete": 1,
        "items_matched": 4,
        "codes_listed": len(not_found) + 3,
        "codes_not_found": not_found,
    }
    manifest = {"total_tasks": 2, "summary": counts}
    assert summary_lines(manifest, whitelist="codes.txt")[2] == line  # under the rows


@pytest.mark.parametrize(
    "counts",
    [
        {"items_matched": 4, "codes_listed": 3, "codes_not_found": []},  # every code found
        {"items_matched": 4, "codes_listed": 3, "codes_not_found": None},  # not known
        {"items_matched": 0, "codes_listed": 3, "codes_not_found": ["1", "2", "3"]},  # the note
    ],
)
def test_summary_text_has_no_codes_line_unless_some_code_is_not_found(
    counts: dict[str, object],
) -> None:
    manifest = {"total_tasks": 1, "summary": {"successful": 1, **counts}}
    assert not any(line.startswith("  codes:") for line in summary_lines(manifest, "codes.txt"))


def test_task_line_counts_one_of_each_in_the_singular() -> None:
    one = {
        "network_id": "aa",
        "status": "success",
        "file_kind": "allowed-amounts",
        "items_matched": 1,
        "items_seen": 1,
        "allowed_amount_rows": 1,
        "allowed_amount_provider_rows": 1,
        "bytes_read": 1400,
        "duration_seconds": 0.01,
    }
    assert task_line(one) == (
        "aa: success (allowed amounts), 1 of 1 item, 1 payment row, 1 provider row, 1.4 kB in 0.0 s"
    )


@pytest.mark.parametrize(
    ("why", "words"),
    [
        ({}, ""),
        ({"with other codes": 4}, " (4 finished before with other codes)"),
        (
            {"with other codes": 1, "in another format": 1_200, "by an earlier mrfbatch": 3},
            " (1,204 finished before: 1,200 in another format, 3 by an earlier mrfbatch, 1 with "
            "other codes)",
        ),
    ],
)
def test_redone_text_counts_the_tasks_finished_before_by_why(
    why: dict[str, int], words: str
) -> None:
    assert redone_text(why) == words
