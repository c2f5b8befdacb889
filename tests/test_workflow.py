"""The Snakemake workflow, run for real in temporary folders against a local HTTP server."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrfbatch import workflow
from mrfbatch.errors import UsageError
from mrfbatch.tables import PROVIDERS_SCHEMA, RATES_SCHEMA
from mrfbatch.tasks import Task
from support import containers, synth
from support.httpserver import FileServer
from support.oracle import canonical
from support.workflows import (
    ROOT,
    WHITELIST,
    csv_table,
    finished,
    manifest,
    snakemake,
    snakemake_command,
    synth_file,
    table,
)

pytestmark = pytest.mark.workflow


def expected_rows(sf: synth.SynthFile, network_id: str) -> tuple[int, int]:
    exp = sf.expected(network_id, set(WHITELIST))
    return len(exp.rates), len(exp.providers)


def test_workflow_csv_source_end_to_end(served: dict[str, Any], tmp_path: Path) -> None:
    urls = served["urls"]
    (tmp_path / "plans.csv").write_text(
        "file_url,plan_name,plan_id\r\n"
        f"{urls['alpha']}?Signature=SECRET1,Plan A,111\r\n"
        f"{urls['alpha']}?Signature=SECRET2,Plan B,222\r\n"
        "\r\n"
        f"{urls['beta']},Plan C,333\r\n"
    )
    proc = snakemake(tmp_path, "source=csv", "input=plans.csv", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == ["alpha", "beta"]
    m = manifest(tmp_path)
    assert (m["source_type"], m["source_input"], m["total_tasks"]) == ("csv", "plans.csv", 2)
    assert m["summary"]["successful"] == 2 and m["summary"]["failed"] == 0
    by_id = {e["network_id"]: e for e in m["extractions"]}
    assert sorted(by_id) == ["alpha", "beta"]
    for name, sf in served["files"].items():
        entry = by_id[name]
        rates, providers = expected_rows(sf, name)
        assert entry["url"] == urls[name]  # no query string
        assert entry["status"] == "success" and entry["error"] is None
        assert (entry["rate_rows"], entry["provider_rows"]) == (rates, providers)
        assert entry["items_seen"] == 12
        assert entry["duration_seconds"] >= 0
        assert entry["output_files"] == {
            "rates": f"results/{name}/rates.parquet",
            "providers": f"results/{name}/providers.parquet",
        }
        assert entry["log_file"] == f"results/logs/extract/{name}.log"
        assert (tmp_path / entry["log_file"]).stat().st_size > 0
        assert len(table(tmp_path / entry["output_files"]["rates"])) == rates
    assert [p["plan_name"] for p in by_id["alpha"]["plan_metadata"]] == ["Plan A", "Plan B"]
    tasks = (tmp_path / "results" / "tasks.tsv").read_text().splitlines()
    assert tasks[0].split("\t") == [
        "network_id",
        "url",
        "output_prefix",
        "plan_metadata",
        "extra_args",
    ]
    assert "SECRET1" in tasks[1]  # jobs need the signed URL ...
    kept = [
        p for p in tmp_path.glob("**/*") if p.is_file() and p.name not in ("tasks.tsv", "plans.csv")
    ]
    for path in kept:  # ... but nothing else keeps it: logs, statuses, Snakemake's metadata
        assert b"SECRET" not in path.read_bytes(), path


def test_workflow_index_source(served: dict[str, Any], tmp_path: Path) -> None:
    urls = served["urls"]
    index = {
        "reporting_entity_name": "Synthetic Health Plan",
        "reporting_entity_type": "health insurance issuer",
        "reporting_structure": [
            {
                "reporting_plans": [
                    {
                        "plan_name": "P1",
                        "plan_id": "1",
                        "plan_id_type": "ein",
                        "plan_market_type": "group",
                    }
                ],
                "in_network_files": [{"description": "a", "location": urls["alpha"]}],
                "allowed_amount_file": {
                    "description": "x",
                    "location": "https://127.0.0.1/aa.json",
                },
            },
            {
                "reporting_plans": [
                    {
                        "plan_name": "P2",
                        "plan_id": "2",
                        "plan_id_type": "ein",
                        "plan_market_type": "group",
                    }
                ],
                "in_network_files": [
                    {"description": "a", "location": urls["alpha"]},
                    {"description": "b", "location": urls["beta"]},
                ],
            },
        ],
    }
    index_url = served["server"].add(
        "/toc/index.json.gz", gzip.compress(json.dumps(index).encode())
    )
    proc = snakemake(tmp_path, "source=index", f"input={index_url}", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = manifest(tmp_path)
    assert (m["source_type"], m["total_tasks"], m["summary"]["successful"]) == ("index", 2, 2)
    plans = {
        e["network_id"]: [p["plan_name"] for p in e["plan_metadata"]] for e in m["extractions"]
    }
    assert plans == {"alpha": ["P1", "P2"], "beta": ["P2"]}
    header = {
        "index_reporting_entity_name": "Synthetic Health Plan",
        "index_reporting_entity_type": "health insurance issuer",
    }
    extra = {
        line.split("\t")[0]: json.loads(line.split("\t")[4])
        for line in (tmp_path / "results" / "tasks.tsv").read_text().splitlines()[1:]
    }
    kind = {"file_kind": "in-network"}
    assert extra == {
        "alpha": {**header, "file_description": "a", **kind},
        "beta": {**header, "file_description": "b", **kind},
    }
    assert (m["skipped_entries"], m["skipped_entries_total"]) == ([], 0)


# An allowed-amounts file (CMS schema: out_of_network), for an index's allowed_amount_file.
ALLOWED_AMOUNTS = {
    "reporting_entity_name": "Synthetic Health Plan",
    "reporting_entity_type": "health insurance issuer",
    "last_updated_on": "2024-05-01",
    "version": "1.0.0",
    "out_of_network": [
        {
            "name": "Knee replacement",
            "billing_code_type": "CPT",
            "billing_code_type_version": "2024",
            "billing_code": "27447",
            "description": "Total knee arthroplasty",
            "allowed_amounts": [
                {
                    "tin": {"type": "ein", "value": "12-3456789"},
                    "service_code": ["21"],
                    "billing_class": "professional",
                    "payments": [
                        {
                            "allowed_amount": 1500.0,
                            "providers": [{"billed_charge": 2000.0, "npi": [1234567890]}],
                        }
                    ],
                }
            ],
        }
    ],
}


def test_workflow_index_with_a_bad_entry_extracts_the_others(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """1 of 3 in-network entries has no location: 2 tasks, the bad one named in tasks.log, on
    the console and in the manifest. Then file_types=both adds the allowed-amounts file as a
    task of its own kind, and redoes none of the finished in-network tasks."""
    urls = served["urls"]
    aa_url = served["server"].add("/mrf/aa.json", json.dumps(ALLOWED_AMOUNTS).encode())
    p1 = {"plan_name": "P1", "plan_id": "1", "plan_id_type": "ein", "plan_market_type": "group"}
    p2 = {"plan_name": "P2", "plan_id": "2", "plan_id_type": "ein", "plan_market_type": "group"}
    index = {
        "reporting_entity_name": "Synthetic Health Plan",
        "reporting_entity_type": "health insurance issuer",
        "reporting_structure": [
            {
                "reporting_plans": [p1],
                "in_network_files": [
                    {"description": "a", "location": urls["alpha"]},
                    {"description": "lost"},
                ],
                "allowed_amount_file": {"description": "oon", "location": aa_url},
            },
            {
                "reporting_plans": [p2],
                "in_network_files": [{"description": "b", "location": urls["beta"]}],
            },
        ],
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    where = "reporting_structure[0].in_network_files[1]"
    proc = snakemake(tmp_path, "source=index", "input=index.json", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == ["alpha", "beta"]
    tasks = (tmp_path / "results" / "tasks.tsv").read_text().splitlines()[1:]
    assert [line.split("\t")[0] for line in tasks] == ["alpha", "beta"]
    log = (tmp_path / "results" / "logs" / "tasks.log").read_text()
    assert f"WARNING index index.json: skipped {where}: location is missing" in log
    assert (
        "index source index.json: 2 files, 1 entry skipped "
        f"({where}: location is missing); 0 already done, 2 to extract" in proc.stderr
    )
    m = manifest(tmp_path)
    assert m["skipped_entries"] == [{"where": where, "reason": "location is missing"}]
    assert m["skipped_entries_total"] == 1
    assert {e["network_id"]: e["file_kind"] for e in m["extractions"]} == {
        "alpha": "in-network",
        "beta": "in-network",
    }

    proc = snakemake(
        tmp_path,
        "source=index",
        "input=index.json",
        "cpt_whitelist=codes.txt",
        "file_types=both",
    )
    # Only the new task runs: the in-network tasks' recipes are unchanged.
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == ["aa"], proc.stderr[-3000:]
    m = manifest(tmp_path)
    by_id = {e["network_id"]: e for e in m["extractions"]}
    assert sorted(by_id) == ["aa", "alpha", "beta"]
    assert by_id["aa"]["file_kind"] == "allowed-amounts"
    assert [p["plan_name"] for p in by_id["aa"]["plan_metadata"]] == ["P1"]
    assert (by_id["alpha"]["status"], by_id["beta"]["status"]) == ("success", "success")
    assert (by_id["alpha"]["file_kind"], by_id["beta"]["file_kind"]) == ("in-network",) * 2
    assert m["skipped_entries"] == [{"where": where, "reason": "location is missing"}]
    extra = {
        line.split("\t")[0]: json.loads(line.split("\t")[4])
        for line in (tmp_path / "results" / "tasks.tsv").read_text().splitlines()[1:]
    }
    assert extra["aa"]["file_kind"] == "allowed-amounts"
    assert extra["aa"]["file_description"] == "oon"
    # the allowed-amounts file is extracted: ALLOWED_AMOUNTS has one 27447 payment of 1500.0
    # with one provider entry (one NPI, billed 2000.0); its plan is in the run's database
    assert by_id["aa"]["status"] == "success"
    assert (by_id["aa"]["allowed_amount_rows"], by_id["aa"]["allowed_amount_provider_rows"]) == (
        1,
        1,
    )
    with duckdb.connect(str(tmp_path / "results" / "mrfbatch.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT plan_name, billing_code, allowed_amount, npi, billed_charge "
            "FROM allowed_amounts JOIN allowed_amount_providers USING (network_id, payment_id) "
            "JOIN plans USING (network_id)"
        ).fetchall()
    assert rows == [("P1", "27447", 1500.0, 1234567890, 2000.0)]


def test_workflow_urls_and_url_sources(served: dict[str, Any], tmp_path: Path) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(
        f"# two files\n\n{urls['alpha']}\n  {urls['beta']}  # second\n"
    )
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert manifest(tmp_path)["summary"]["successful"] == 2

    single = tmp_path / "single"
    single.mkdir()
    (single / "codes.txt").write_text("99213\n")
    proc = snakemake(single, "source=url", f"input={urls['beta']}", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = manifest(single)
    assert (m["source_type"], m["total_tasks"]) == ("url", 1)
    entry = m["extractions"][0]
    assert entry["network_id"] == "beta"
    assert entry["rate_rows"] == len(served["files"]["beta"].expected("beta", {"99213"}).rates)


def test_workflow_same_file_name_gives_distinct_stable_ids(
    http_server: FileServer, tmp_path: Path
) -> None:
    one = http_server.add("/east/rates.json", synth_file(3).to_bytes())
    two = http_server.add("/west/rates.json", synth_file(4).to_bytes())
    (tmp_path / "a.txt").write_text(f"{one}\n{two}\n")
    (tmp_path / "b.txt").write_text(f"{two}\n{one}\n")
    runs = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        proc = snakemake(work, "source=urls", f"input=../{name}.txt")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append({e["url"]: e["network_id"] for e in manifest(work)["extractions"]})
    assert runs[0] == runs[1]
    ids = sorted(runs[0].values())
    assert len(ids) == 2 and all(
        i.startswith("rates-") and len(i) == len("rates-") + 8 for i in ids
    )


def test_workflow_rerun_does_nothing_and_redoes_only_deleted(
    served: dict[str, Any], tmp_path: Path
) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert snakemake(tmp_path, *args).returncode == 0
    again = snakemake(tmp_path, *args)
    assert again.returncode == 0 and finished(again) == []
    assert "mrfbatch: nothing to do, 2 files done before: 2 success" in again.stderr
    # How patiently files are fetched, and the size limit, change no finished table.
    patient = ("attempts=9", "retry_seconds=5", "timeout=60", "max_value_mb=4096")
    again = snakemake(tmp_path, *args, *patient)
    assert again.returncode == 0 and finished(again) == [], again.stderr[-3000:]
    assert "nothing to do, 2 files done before" in again.stderr
    (tmp_path / "results" / "beta" / "providers.parquet").unlink()
    third = snakemake(tmp_path, *args)
    assert third.returncode == 0, third.stderr[-3000:]
    assert finished(third) == ["beta"]
    assert manifest(tmp_path)["summary"]["successful"] == 2


def test_workflow_finished_files_older_than_the_scripts_stay_done(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """Marks older than scripts/extract.py (a git pull or a new clone makes the scripts new)
    redo nothing: Snakemake's `code` trigger would redo them all, so the profile leaves it out.
    A rerun forced by hand is told as what it is, not as "nothing to do"."""
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert snakemake(tmp_path, *args).returncode == 0
    marks = list((tmp_path / "results").glob("*/.done"))
    assert len(marks) == 2 and (ROOT / "scripts" / "extract.py").stat().st_mtime > 1e9
    for mark in marks:
        os.utime(mark, (1e9, 1e9))  # 2001
    again = snakemake(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert finished(again) == []
    assert "mrfbatch: nothing to do, 2 files done before: 2 success" in again.stderr

    forced = subprocess.run(
        [*snakemake_command(2), "--forcerun", "extract", "--config", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert finished(forced) == ["alpha", "beta"]
    assert re.search(r"^mrfbatch: 2 files in [0-9.]+ s: 2 success$", forced.stderr, re.M)
    assert "nothing to do" not in forced.stderr


def test_workflow_failed_task_is_recorded_and_retried_alone(
    served: dict[str, Any], tmp_path: Path
) -> None:
    server, urls = served["server"], served["urls"]
    payload = containers.pack(synth_file(5).to_bytes(), "gz")
    broken = server.add("/mrf/gamma.json.gz", payload, status=404)
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n{broken}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt", "retries=0")
    proc = snakemake(tmp_path, *args)
    assert proc.returncode != 0
    m = manifest(tmp_path)
    by_id = {e["network_id"]: e for e in m["extractions"]}
    assert m["summary"] == {**m["summary"], "successful": 2, "failed": 1}
    assert by_id["gamma"]["status"] == "failed"
    assert "HTTP 404" in by_id["gamma"]["error"] and "127.0.0.1" in by_id["gamma"]["error"]
    assert not (tmp_path / "results" / "gamma" / "rates.parquet").exists()

    server.add("/mrf/gamma.json.gz", payload)  # the server is fixed
    proc = snakemake(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == ["gamma"]
    assert manifest(tmp_path)["summary"]["successful"] == 3


def test_workflow_run_files_of_another_run_or_deleted_are_written_again(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """A failed run's end writes the manifest outside its rule; Snakemake's record of the rule
    is then an older run's. A run of that older source, all done, must still rewrite it; and
    so must a run after the manifest and the database were deleted."""
    server, urls = served["server"], served["urls"]
    gone = server.add("/mrf/gone.json.gz", b"", status=404)
    (tmp_path / "good.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    (tmp_path / "bad.txt").write_text(f"{gone}\n")
    good = ("source=urls", "input=good.txt", "cpt_whitelist=codes.txt", "retries=0")
    assert snakemake(tmp_path, *good).returncode == 0
    bad = ("source=urls", "input=bad.txt", "cpt_whitelist=codes.txt", "retries=0")
    assert snakemake(tmp_path, *bad).returncode == 1
    assert manifest(tmp_path)["source_input"] == "bad.txt"

    proc = snakemake(tmp_path, *good)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == []  # both files done before
    m = manifest(tmp_path)
    assert (m["source_input"], m["total_tasks"], m["summary"]["successful"]) == ("good.txt", 2, 2)
    assert "mrfbatch: nothing to do, 2 files done before: 2 success" in proc.stderr
    with duckdb.connect(str(tmp_path / "results" / "mrfbatch.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM files").fetchall() == [(2,)]

    # Snakemake finds nothing to do when the report is up to date: the run writes them again
    for name in ("manifest.json", "mrfbatch.duckdb"):
        (tmp_path / "results" / name).unlink()
    proc = snakemake(tmp_path, *good)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mrfbatch: nothing to do, 2 files done before: 2 success" in proc.stderr
    assert manifest(tmp_path)["source_input"] == "good.txt"
    with duckdb.connect(str(tmp_path / "results" / "mrfbatch.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM files").fetchall() == [(2,)]


def blocked_opening_fifo(pid: int) -> bool:
    """Whether the process's main thread waits in open(2) of a FIFO for a reader."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
    except OSError:
        return False


def test_workflow_resumes_after_sigkill(http_server: FileServer, tmp_path: Path) -> None:
    """Snakemake is killed while one extraction is writing its tables (the other is done);
    the rerun redoes that one only, and its tables equal a clean run's."""
    files = {
        "fast": synth_file(6),
        "slow": synth.generate(synth.SynthConfig(seed=7, items=2000, references=50)),
    }
    payloads = {name: containers.pack(sf.to_bytes(), "gz") for name, sf in files.items()}
    fast = http_server.add("/mrf/fast.json.gz", payloads["fast"])
    slow = http_server.add("/mrf/slow.json.gz", payloads["slow"], rate=20_000)
    for folder in ("killed", "clean"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "list.txt").write_text(f"{fast}\n{slow}\n")
    args = ["source=urls", "input=list.txt", "rate_batch_size=500"]
    killed = tmp_path / "killed"
    folder = killed / "results" / "slow"
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2"]
    proc = subprocess.Popen(
        [*command, "--config", *args],
        cwd=killed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob(".providers-*.spill")):
            assert time.monotonic() < deadline, "the slow extraction never started"
            time.sleep(0.05)
        # Its providers table's temporary name made a FIFO: the job stops where it opens it,
        # with the rates table's row groups written and the file not closed.
        pid = int(next(folder.glob(".providers-*.spill")).name.split("-")[1].split(".")[0])
        os.mkfifo(folder / f".providers.parquet.tmp-{pid}")
        http_server.route(slow).rate = 0
        while not (
            (killed / "results" / "fast" / "status.json").exists() and blocked_opening_fifo(pid)
        ):
            assert time.monotonic() < deadline, "the jobs never got where they are killed"
            time.sleep(0.05)
        assert (folder / f".rates.parquet.tmp-{pid}").stat().st_size > 10_000
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (killed / "results" / "manifest.json").exists()
    assert not {"rates.parquet", "providers.parquet", "status.json"} & {
        p.name for p in folder.iterdir()
    }

    rerun = snakemake(killed, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert finished(rerun) == ["slow"]
    clean = snakemake(tmp_path / "clean", *args)
    assert clean.returncode == 0, clean.stderr[-3000:]
    for name, sf in files.items():
        for kind in ("rates", "providers"):
            a = table(killed / "results" / name / f"{kind}.parquet")
            b = table(tmp_path / "clean" / "results" / name / f"{kind}.parquet")
            assert a == b and len(a) > 0
        assert len(table(killed / "results" / name / "rates.parquet")) == len(
            sf.expected(name).rates
        )
        leftovers = [
            p.name for p in (killed / "results" / name).iterdir() if p.name.startswith(".")
        ]
        assert leftovers == [".done"]  # the task's mark; no temporary file
    assert manifest(killed)["summary"]["successful"] == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            ["source=bogus", "input=x"],
            "config key 'source' is 'bogus'; allowed values: csv, index, urls, url",
        ),
        (["source=csv", "input=nope.csv"], "config key 'input': csv file nope.csv does not exist"),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "rate_batch_size=many"],
            "config key 'rate_batch_size' is 'many'; allowed values: integers >= 1",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "cpt_whitelist=gone.txt"],
            "config key 'cpt_whitelist': file gone.txt does not exist",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "retry_seconds=-1"],
            "config key 'retry_seconds' is -1; allowed values: numbers >= 0",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "max_value_mb=0"],
            "config key 'max_value_mb' is 0; allowed values: integers >= 1",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "cpt_whitelst=codes.txt"],
            "unknown config key 'cpt_whitelst'; did you mean 'cpt_whitelist'?",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "outputdir=elsewhere"],
            "unknown config key 'outputdir'; did you mean 'output_dir'?",
        ),
        (
            ["source=url", "input=https://127.0.0.1:9/a.json", "output_dir=codes.txt"],
            "cannot use output_dir codes.txt: File exists; choose a folder you can write to "
            "(config key output_dir)",
        ),
        (
            ["source=cvs", "input=https://127.0.0.1:9/a.json"],
            "config key 'source' is 'cvs'; allowed values: csv, index, urls, url "
            "(did you mean 'csv'?)",
        ),
    ],
)
def test_workflow_bad_config_stops_before_any_job(
    tmp_path: Path, config: list[str], message: str
) -> None:
    (tmp_path / "codes.txt").write_text("27447\n")
    proc = snakemake(tmp_path, *config)
    assert proc.returncode == 1
    assert f"error: {message}\n" in proc.stderr
    # Stopped before any job, and before the output folder was even made.
    assert not (tmp_path / "results").exists() and not (tmp_path / "elsewhere").exists()
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr
    assert len(proc.stderr.splitlines()) <= 2, proc.stderr  # Snakemake's profile line, ours


def test_workflow_config_file_yaml_cannot_read_names_file_and_line(tmp_path: Path) -> None:
    """Snakemake's own message ('Config file is not valid JSON or YAML') names neither."""
    (tmp_path / "run.yaml").write_text("source: csv\ninput: plans.csv\n  cpt_whitelist: c.txt\n")
    proc = subprocess.run(
        [*snakemake_command(), "--configfile", "run.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 1
    assert (
        "error: config file run.yaml is not valid YAML at line 3, column 16: mapping values "
        "are not allowed here\n"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr


BAD_WHITELISTS = {  # content: what the one line says (after "error: whitelist file codes.txt")
    "empty": ("", "lists no billing codes: the file is empty"),
    "commas on one line": (
        "27447,99213,99214\n",
        "line 1: 3 values separated by commas ('27447,99213,99214')",
    ),
    "spaces": ("# knee\n27447\n99213 99214\n", "line 3: 2 values separated by spaces"),
    "csv header without billing_code": (
        "code,description\n27447,Knee replacement\n",
        "line 1 looks like a CSV header but has no billing_code column (found columns "
        "'code', 'description'); name the column of codes billing_code",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WHITELISTS))
def test_workflow_bad_whitelist_stops_before_any_job(tmp_path: Path, case: str) -> None:
    content, message = BAD_WHITELISTS[case]
    (tmp_path / "codes.txt").write_text(content)
    (tmp_path / "list.txt").write_text("https://127.0.0.1:9/a.json\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith(f"error: whitelist file codes.txt {message}"), proc.stderr
    assert len(lines) == 2, proc.stderr  # Snakemake's profile line, and this one
    assert not (tmp_path / "results").exists()  # no checkpoint, no extraction


def test_workflow_says_when_every_code_has_decimals(
    http_server: FileServer, tmp_path: Path
) -> None:
    """Codes a program wrote from numbers: the run goes on (a payer may publish 27447.0), with
    a note under the codes' line, before the source's."""
    url = http_server.add("/mrf/a.json.gz", containers.pack(synth_file(39).to_bytes(), "gz"))
    (tmp_path / "codes.txt").write_text("billing_code\n27447.0\n99213.0\n")
    (tmp_path / "list.txt").write_text(f"{url}\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    at = lines.index("billing codes: 2 from codes.txt (27447.0, 99213.0)")
    assert lines[at + 1] == (
        "note: every billing code is a whole number written with decimals ('27447.0', "
        "'99213.0'): each matches only a code published so, not '27447'; if a program wrote "
        "them from numbers (pandas does, for a column with an empty cell), write them as text"
    )
    assert lines[at + 2].startswith("urls source list.txt: 1 file;"), proc.stderr


def test_workflow_bad_source_file_names_lines(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(
        "https://127.0.0.1:9/a.json\nnot a url\n# fine\nftp://x/y.json\n"
    )
    proc = snakemake(tmp_path, "source=urls", "input=list.txt")
    assert proc.returncode != 0
    message = (
        "list.txt has 2 lines that are neither an http(s)/file URL nor an existing file: "
        "line 2: 'not a url' is neither an http(s)/file URL nor an existing file; "
        "line 4: 'ftp://x/y.json' has the unsupported scheme 'ftp'"
    )
    assert f"error: the urls source is unusable: {message}" in proc.stderr
    assert message in (tmp_path / "results" / "logs" / "tasks.log").read_text()
    assert "Traceback" not in proc.stderr
    m = manifest(tmp_path)
    assert m["total_tasks"] == 0 and "could not be turned into tasks" in m["error"]


def test_workflow_edited_tasks_file_with_unsafe_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text("https://127.0.0.1:9/a.json\n")
    (tmp_path / "results").mkdir()
    time.sleep(0.05)  # newer than the source: Snakemake keeps it instead of remaking it
    (tmp_path / "results" / "tasks.tsv").write_text(
        "network_id\turl\toutput_prefix\tplan_metadata\textra_args\n"
        "../evil\thttps://127.0.0.1:9/a.json\tresults/../evil\t[]\t{}\n"
    )
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", "attempts=1")
    assert proc.returncode != 0
    assert (
        "SourceError: results/tasks.tsv line 2: network id '../evil' is not a safe folder name"
        in proc.stderr
    ), proc.stderr[-3000:]
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "results" / "logs" / "extract").exists()


def test_workflow_one_core_echoes_progress(served: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(f"{served['urls']['alpha']}\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", cores=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "INFO extracting" in proc.stderr  # the extractor's own log lines
    log = (tmp_path / "results" / "logs" / "extract" / "alpha.log").read_text()
    assert "INFO extracting" in log and "alpha: success" in log

    many = tmp_path / "many"
    many.mkdir()
    (many / "list.txt").write_text(f"{served['urls']['alpha']}\n")
    proc = snakemake(many, "source=urls", "input=list.txt", cores=2)
    assert "INFO extracting" not in proc.stderr
    assert "[1/1] alpha: success" in proc.stderr

    # The echo is no param of the job: another --cores redoes nothing.
    proc = snakemake(many, "source=urls", "input=list.txt", cores=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "nothing to do, 1 file done before" in proc.stderr, proc.stderr[-3000:]


def serve_with_remote_refs(http_server: FileServer, seed: int) -> tuple[synth.SynthFile, str]:
    """A generated file served at /mrf/remote.json.gz whose 4 provider references point to 3
    remote files under /refs/, which are not served (404) until the test adds them; the file,
    and its URL."""
    sf = synth.generate(
        synth.SynthConfig(
            seed=seed, items=10, references=4, remote_base_url=http_server.base_url + "/refs",
            remote_refs=4, remote_locations=3,
        )
    )  # fmt: skip
    return sf, http_server.add("/mrf/remote.json.gz", containers.pack(sf.to_bytes(), "gz"))


def test_workflow_incomplete_task_keeps_its_tables_and_is_redone(
    http_server: FileServer, tmp_path: Path
) -> None:
    """A file whose remote provider-reference files all fail ends `incomplete`: its tables are
    kept and the run exits 1; once the server serves them, a rerun redoes it alone."""
    sf, remote = serve_with_remote_refs(http_server, seed=33)
    fine = http_server.add("/mrf/fine.json.gz", containers.pack(synth_file(34).to_bytes(), "gz"))
    (tmp_path / "list.txt").write_text(f"{remote}\n{fine}\n")
    # The refs are not served yet: every location answers 404.
    proc = snakemake(tmp_path, "source=urls", "input=list.txt")
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if "] remote: " in x)
    assert re.match(
        r"\[\d/2\] remote: INCOMPLETE: 3 of 3 remote provider-reference files could not be "
        r"fetched; their groups have no provider rows \(first: HTTP 404 Not Found",
        line,
    ), line
    m = manifest(tmp_path)
    assert (m["summary"]["successful"], m["summary"]["incomplete"]) == (1, 1)
    entry = next(e for e in m["extractions"] if e["network_id"] == "remote")
    assert entry["status"] == "incomplete" and entry["remote_references_failed"] == 3
    incomplete = sf.expected("remote", failed_locations=set(sf.remote_files))
    assert entry["rate_rows"] == len(incomplete.rates) > 0
    folder = tmp_path / "results" / "remote"
    assert len(table(folder / "rates.parquet")) == len(incomplete.rates)
    assert json.loads((folder / "status.json").read_text())["status"] == "incomplete"
    assert not (folder / ".done").exists()
    assert "incomplete: remote: 3 of 3 remote provider-reference files" in proc.stderr

    for url, data in sf.remote_bytes().items():  # the server is fixed
        http_server.add(url, data)
    rerun = snakemake(tmp_path, "source=urls", "input=list.txt")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert finished(rerun) == ["remote"]
    entry = next(e for e in manifest(tmp_path)["extractions"] if e["network_id"] == "remote")
    complete = sf.expected("remote")
    assert (entry["status"], entry["provider_rows"]) == ("success", len(complete.providers))
    assert len(table(folder / "providers.parquet")) == len(complete.providers)


@pytest.mark.parametrize("retries", [0, 2])
def test_workflow_404_is_requested_once(
    http_server: FileServer, tmp_path: Path, retries: int
) -> None:
    """No Snakemake retry for a failure no retry can cure, whatever `retries` says."""
    gone = http_server.add("/mrf/gone.json.gz", b"", status=404)
    flaky = http_server.add(
        "/mrf/flaky.json.gz", containers.pack(synth_file(35).to_bytes(), "gz"), status=503
    )
    (tmp_path / "list.txt").write_text(f"{gone}\n{flaky}\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", f"retries={retries}", "attempts=1")
    assert proc.returncode == 1
    assert http_server.hits("/mrf/gone.json.gz") == 1
    # A 503 may pass: each Snakemake attempt asks again (attempts=1 request each).
    assert http_server.hits("/mrf/flaky.json.gz") == 1 + retries
    statuses = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    assert statuses["gone"]["retryable"] is False and statuses["flaky"]["retryable"] is True
    assert proc.stderr.count("] gone: FAILED: HTTP 404 Not Found") == 1
    assert proc.stderr.count("] flaky: FAILED: HTTP 503") == 1
    assert proc.stderr.count("flaky: attempt ") == retries  # "attempt 1 ended: ...; retrying"


@pytest.mark.parametrize("retries", [0, 2])
def test_workflow_incomplete_for_good_is_read_once(
    http_server: FileServer, tmp_path: Path, retries: int
) -> None:
    """A file whose remote provider-reference files all answer 404 is incomplete for reasons
    no retry cures: a Snakemake retry does not read it again, and the summary says that a
    rerun will leave it incomplete as well."""
    _, remote = serve_with_remote_refs(http_server, seed=38)
    (tmp_path / "list.txt").write_text(f"{remote}\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", f"retries={retries}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert http_server.hits("/mrf/remote.json.gz") == 1
    entry = manifest(tmp_path)["extractions"][0]
    assert (entry["status"], entry["retryable"]) == ("incomplete", False)
    assert "remote: attempt " not in proc.stderr  # no "attempt 1 ended: ...; retrying"
    assert (
        "(it will be incomplete again as it stands, for the reason above: the remote "
        "provider-reference files it lacks are the payer's; its tables have every rate)"
    ) in proc.stderr, proc.stderr[-3000:]


def test_workflow_two_runs_into_two_folders_at_once_keep_their_own_logs(
    http_server: FileServer, tmp_path: Path
) -> None:
    urls = {
        name: http_server.add(
            f"/{name}/rates.json.gz",
            containers.pack(synth_file(seed).to_bytes(), "gz"),
            rate=200_000,
        )
        for name, seed in (("east", 36), ("west", 37))
    }
    (tmp_path / "east.txt").write_text(urls["east"] + "\n")
    (tmp_path / "west.txt").write_text(urls["west"] + "\n")
    runs = [
        subprocess.Popen(
            [
                *snakemake_command(),
                "--config",
                "source=urls",
                f"input={name}.txt",
                f"output_dir={name}",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in urls
    ]
    outputs = [run.communicate(timeout=240)[1] for run in runs]
    for run, name, stderr in zip(runs, urls, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
        m = manifest(tmp_path, name)
        (entry,) = m["extractions"]
        assert entry["url"] == urls[name] and entry["status"] == "success"
        assert entry["log_file"] == f"{name}/logs/extract/rates.log"
        log = (tmp_path / entry["log_file"]).read_text()
        assert f"extracting {urls[name]} into {name}/rates" in log
        assert "rates: success" in log
        other = "west" if name == "east" else "east"
        assert urls[other] not in log
        assert f"logs:       {name}/logs/extract/<network_id>.log" in stderr
    assert not (tmp_path / "logs").exists()  # no log folder shared by both runs


def test_workflow_csv_paths_are_relative_to_the_csv(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "files").mkdir(parents=True)
    (data / "files" / "a.json").write_bytes(synth_file(38).to_bytes())
    (data / "plans.csv").write_text("file_url,plan_name\nfiles/a.json,Plan A\n")
    proc = snakemake(tmp_path, "source=csv", "input=data/plans.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (entry,) = manifest(tmp_path)["extractions"]
    assert (entry["network_id"], entry["url"], entry["status"]) == (
        "a",
        "data/files/a.json",
        "success",
    )


def test_workflow_new_whitelist_redoes_finished_tasks(
    served: dict[str, Any], tmp_path: Path
) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert snakemake(tmp_path, *args).returncode == 0
    results = tmp_path / "results"
    tables = {p: p.stat().st_mtime_ns for p in results.glob("*/*.parquet")}
    assert len(tables) == 4
    redone = (
        "urls source list.txt: 2 files; 0 already done, 2 to extract (2 finished before with "
        "other codes), 2 at a time"
    )

    # What another list would do, asked of a dry run, undoes nothing of the work done ...
    (tmp_path / "other.txt").write_text("99213\n")
    proc = snakemake(tmp_path, *args[:2], "cpt_whitelist=other.txt", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert redone in proc.stdout.splitlines()  # a dry run's plan goes to stdout
    assert sorted(p.name for p in results.glob("*/.done*")) == [".done.set-aside"] * 2
    # ... so the first list back finds both files done, their tables untouched.
    proc = snakemake(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "urls source list.txt: 2 files; 2 already done, 0 to extract" in proc.stderr
    assert finished(proc) == []
    assert {p: p.stat().st_mtime_ns for p in results.glob("*/*.parquet")} == tables
    assert sorted(p.name for p in results.glob("*/.done*")) == [".done"] * 2

    (tmp_path / "codes.txt").write_text("99213\n")  # another list of codes: other tables
    proc = snakemake(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert redone in proc.stderr.splitlines()
    assert finished(proc) == ["alpha", "beta"]
    assert sorted(p.name for p in results.glob("*/.done*")) == [".done"] * 2
    by_id = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    expected = served["files"]["alpha"].expected("alpha", {"99213"})
    assert by_id["alpha"]["rate_rows"] == len(expected.rates)


def test_workflow_new_plans_redo_no_file_and_reach_the_manifest(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """Plans make no row of a file's tables: a column added to the CSV and a plan renamed
    redo nothing, and the manifest and plans.parquet show the new plans. A mark written when
    the recipe still listed the plans counts as well."""
    urls = served["urls"]
    plans = tmp_path / "plans.csv"
    plans.write_text(f"file_url,plan_name\n{urls['alpha']},Gold\n{urls['beta']},Silver\n")
    args = ("source=csv", "input=plans.csv", "cpt_whitelist=codes.txt")
    assert snakemake(tmp_path, *args).returncode == 0
    results = tmp_path / "results"
    status = json.loads((results / "alpha" / "status.json").read_text())
    assert status["status"] == "success" and status["plan_metadata"] is None
    mark = json.loads((results / "beta" / ".done").read_text())
    assert "plans" not in mark
    (results / "beta" / ".done").write_text(json.dumps({**mark, "plans": [{"plan_name": "S"}]}))
    tables = {p: p.stat().st_mtime_ns for p in results.glob("*/*.parquet")}
    assert len(tables) == 4

    plans.write_text(
        f"file_url,plan_name,analyst_note\n{urls['alpha']},Gold PPO,A\n{urls['beta']},Silver,B\n"
    )
    proc = snakemake(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "csv source plans.csv: 2 files; 2 already done, 0 to extract" in proc.stderr
    assert finished(proc) == []
    assert {p: p.stat().st_mtime_ns for p in results.glob("*/*.parquet")} == tables
    by_id = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    assert by_id["alpha"]["plan_metadata"] == [{"plan_name": "Gold PPO", "analyst_note": "A"}]
    assert by_id["beta"]["plan_metadata"] == [{"plan_name": "Silver", "analyst_note": "B"}]
    rows = table(results / "plans.parquet")
    assert sorted((r["network_id"], r["plan_name"], r["analyst_note"]) for r in rows) == [
        ("alpha", "Gold PPO", "A"),
        ("beta", "Silver", "B"),
    ]


def assert_only_tables_of(folder: Path, fmt: str, entry: dict[str, Any]) -> None:
    """The task's folder holds its tables in `fmt` only, and the manifest lists them."""
    assert sorted(p.name for p in folder.iterdir()) == [
        ".done",
        f"providers.{fmt}",
        f"rates.{fmt}",
        "status.json",
    ]
    assert entry["output_files"] == {
        "rates": f"results/{folder.name}/rates.{fmt}",
        "providers": f"results/{folder.name}/providers.{fmt}",
    }


def test_workflow_csv_format_then_parquet_redoes_and_keeps_one_format(
    served: dict[str, Any], tmp_path: Path
) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    proc = snakemake(tmp_path, *args, "format=csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == ["alpha", "beta"]
    assert "  tables:     results/<network_id>/rates.csv, providers.csv" in proc.stderr
    by_id = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    for name, sf in served["files"].items():
        folder = tmp_path / "results" / name
        assert_only_tables_of(folder, "csv", by_id[name])
        expected = sf.expected(name, set(WHITELIST))
        rates = csv_table(folder / "rates.csv", RATES_SCHEMA)
        providers = csv_table(folder / "providers.csv", PROVIDERS_SCHEMA)
        assert (len(rates), len(providers)) == (len(expected.rates), len(expected.providers))
        assert by_id[name]["rate_rows"] == len(expected.rates) > 0
        assert canonical(rates, providers) == canonical(expected.rates, expected.providers)

    proc = snakemake(tmp_path, *args, "format=csv")  # the same format: nothing to redo
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished(proc) == []

    proc = snakemake(tmp_path, *args)  # format: parquet, the default
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "urls source list.txt: 2 files; 0 already done, 2 to extract (2 finished before in "
        "another format), 2 at a time"
    ) in proc.stderr.splitlines()
    assert finished(proc) == ["alpha", "beta"]
    by_id = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    for name, sf in served["files"].items():
        folder = tmp_path / "results" / name
        assert_only_tables_of(folder, "parquet", by_id[name])
        assert len(table(folder / "rates.parquet")) == expected_rows(sf, name)[0]


def test_workflow_redoes_tasks_finished_with_tables_of_version_1(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """A mark without the tables' version holds version 1 tables (bundled_codes as texts):
    the task is redone, so the run's rates view never mixes list<string> and list<struct>."""
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt")
    assert snakemake(tmp_path, *args).returncode == 0
    folder = tmp_path / "results" / "alpha"
    mark = json.loads((folder / ".done").read_text())
    assert mark["tables"] == 2
    # alpha as a run of version 1 left it: its mark without the key, its lists of codes texts
    del mark["tables"]
    (folder / ".done").write_text(json.dumps(mark))
    old = pq.read_table(folder / "rates.parquet")
    for name in ("bundled_codes", "covered_services"):
        at = old.schema.get_field_index(name)
        old = old.set_column(at, name, pa.nulls(len(old), pa.list_(pa.string())))
    pq.write_table(old, folder / "rates.parquet")

    proc = snakemake(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "urls source list.txt: 2 files; 1 already done, 1 to extract (1 finished before by an "
        "earlier mrfbatch)"
    ) in proc.stderr.splitlines()
    assert finished(proc) == ["alpha"]
    assert pq.read_schema(folder / "rates.parquet").equals(RATES_SCHEMA)
    assert json.loads((folder / ".done").read_text())["tables"] == 2
    with duckdb.connect(str(tmp_path / "results" / "mrfbatch.duckdb"), read_only=True) as con:
        (count,) = con.execute("SELECT count(*) FROM rates").fetchone() or (None,)
    assert count == sum(expected_rows(sf, name)[0] for name, sf in served["files"].items())


def test_workflow_whitelist_that_matches_nothing_is_said(
    served: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "list.txt").write_text(f"{served['urls']['alpha']}\n")
    (tmp_path / "none.txt").write_text("00000\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", "cpt_whitelist=none.txt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "  note:       no item of the 1 file read has a billing code listed in none.txt"
        in proc.stderr
    )


def test_find_task_unknown_network_id_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    path.write_text(
        "network_id\turl\toutput_prefix\tplan_metadata\textra_args\n"
        "alpha\thttps://h.example/alpha.json\tresults/alpha\t[]\t{}\n"
    )
    assert workflow.find_task(str(path), "alpha").url == "https://h.example/alpha.json"
    with pytest.raises(UsageError, match=r"network id 'beta' is not in .*tasks\.tsv"):
        workflow.find_task(str(path), "beta")


RECIPE_SETTINGS = {
    "output_dir": "results",
    "log_dir": None,
    "cpt_whitelist": None,
    "provider_batch_size": 50000,
    "rate_batch_size": 100000,
    "engine": "fast",
    "format": "parquet",
}


def test_recipe_leaves_out_plans_and_extra_args() -> None:
    """Other plans, or a new description or header in an index, redo no finished task."""
    run = workflow.Run.from_config(RECIPE_SETTINGS)
    task = Task("a", "https://h.example/a.json?sig=1", ({"plan_name": "Gold"},))
    described = Task(task.network_id, task.url, ({"plan_id": "1"},), {"file_description": "x"})
    assert run.recipe(described) == run.recipe(task)


def test_recipe_holds_the_format_unless_parquet() -> None:
    """Marks written before the format key made Parquet tables: a Parquet run keeps them."""
    task = Task("a", "https://h.example/a.json", ({"plan_name": "Gold"},))
    parquet = workflow.Run.from_config(RECIPE_SETTINGS).recipe(task)
    csv = workflow.Run.from_config({**RECIPE_SETTINGS, "format": "csv"}).recipe(task)
    assert parquet == {
        "url": "https://h.example/a.json",
        "whitelist": None,
        "provider_batch_size": 50000,
        "rate_batch_size": 100000,
        "engine": "fast",
        "tables": 2,  # bundled_codes and covered_services as lists of structs
    }
    assert csv == {**parquet, "format": "csv"}


@pytest.mark.parametrize(
    ("before", "today", "why"),
    [
        ({"cpt_whitelist": "a.txt"}, {"cpt_whitelist": "b.txt"}, "with other codes"),
        ({}, {"cpt_whitelist": "a.txt"}, "without a codes list"),
        ({"cpt_whitelist": "a.txt"}, {}, "with a codes list, unlike this run"),
        ({"format": "csv"}, {}, "in another format"),
        ({"engine": "reference"}, {}, "with another engine"),
        ({"rate_batch_size": 10}, {}, "with other batch sizes"),
        ({"provider_batch_size": 10}, {}, "with other batch sizes"),
        ({}, {}, None),  # the same settings: done
    ],
)
def test_not_done_why_names_what_changed_since_the_mark(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before: dict[str, Any],
    today: dict[str, Any],
    why: str | None,
) -> None:
    """The words the console gives for a task finished before that a run redoes."""
    monkeypatch.chdir(tmp_path)
    Path("a.txt").write_text("27447\n")
    Path("b.txt").write_text("99213\n")
    task = Task("alpha", "https://h.example/alpha.json", ())
    earlier = workflow.Run.from_config({**RECIPE_SETTINGS, **before})
    folder = Path("results", "alpha")
    folder.mkdir(parents=True)
    (folder / "rates.parquet").write_bytes(b"")
    status = {"status": "success", "output_files": {"rates": "results/alpha/rates.parquet"}}
    (folder / "status.json").write_text(json.dumps(status))
    (folder / ".done").write_text(json.dumps(earlier.recipe(task)))
    run = workflow.Run.from_config({**RECIPE_SETTINGS, **today})
    assert workflow.not_done_why(run, task, str(folder / ".done")) == why


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("no mark", ""),
        ("mark", "whose mark is unreadable"),
        ("table", "whose status or tables are gone"),
        ("status", "whose status or tables are gone"),
        ("url", "from another URL"),
        ("tables version", "by an earlier mrfbatch"),
    ],
)
def test_not_done_why_of_a_mark_that_does_not_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, why: str
) -> None:
    monkeypatch.chdir(tmp_path)
    task = Task("alpha", "https://h.example/alpha.json", ())
    run = workflow.Run.from_config(RECIPE_SETTINGS)
    folder = Path("results", "alpha")
    folder.mkdir(parents=True)
    (folder / "rates.parquet").write_bytes(b"")
    status = {"status": "success", "output_files": {"rates": "results/alpha/rates.parquet"}}
    (folder / "status.json").write_text(json.dumps(status))
    mark = {
        **run.recipe(task),
        **({"url": "https://h.example/v2/alpha.json"} if damage == "url" else {}),
    }
    if damage == "tables version":
        del mark["tables"]  # a mark of version 1 tables
    (folder / ".done").write_text("{" if damage == "mark" else json.dumps(mark))
    if damage == "no mark":
        (folder / ".done").unlink()
    elif damage == "table":
        (folder / "rates.parquet").unlink()
    elif damage == "status":
        (folder / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    assert workflow.not_done_why(run, task, str(folder / ".done")) == why


@pytest.mark.parametrize(
    ("marks", "why"),
    [
        ({".done": "today"}, None),
        ({".done.set-aside": "today"}, None),  # the run puts it back: done
        ({".done.set-aside": "other codes"}, "with other codes"),
        ({".done": "other codes", ".done.set-aside": "today"}, "with other codes"),
        ({}, ""),
    ],
)
def test_why_not_done_counts_a_mark_set_aside_that_holds_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marks: dict[str, str], why: str | None
) -> None:
    """What a run will find, asked without changing anything (the batch command's dry run)."""
    monkeypatch.chdir(tmp_path)
    Path("a.txt").write_text("27447\n")
    task = Task("alpha", "https://h.example/alpha.json", ())
    run = workflow.Run.from_config({**RECIPE_SETTINGS, "cpt_whitelist": "a.txt"})
    recipes = {
        "today": run.recipe(task),
        "other codes": {**run.recipe(task), "whitelist": "0" * 64},
    }
    folder = Path("results", "alpha")
    folder.mkdir(parents=True)
    (folder / "rates.parquet").write_bytes(b"")
    status = {"status": "success", "output_files": {"rates": "results/alpha/rates.parquet"}}
    (folder / "status.json").write_text(json.dumps(status))
    for name, recipe in marks.items():
        (folder / name).write_text(json.dumps(recipes[recipe]))
    assert workflow.why_not_done(run, task) == why
    assert sorted(p.name for p in folder.glob(".done*")) == sorted(marks)  # nothing moved
