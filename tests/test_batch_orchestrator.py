"""The older batch command and execute_batch() (mrfbatch.batch_orchestrator, mrfbatch.cli),
run for real: they start the Snakemake workflow in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrfbatch.batch_orchestrator import execute_batch
from mrfbatch.cli import batch_main as orchestrator_main
from mrfbatch.config import ConfigError
from support import containers, synth
from support.workflows import manifest, synth_file

pytestmark = pytest.mark.workflow


HOSTILE_CSVS = {  # content: what the message says
    "semicolons": (
        b"file_url;plan_name\nhttps://h.example/a.json;Gold\n",
        "plans.csv has no 'file_url' column in its header (line 1); found columns: "
        "'file_url;plan_name' (the header holds semicolons: the file looks "
        "semicolon-separated, expected commas)",
    ),
    "unclosed quote": (
        b'file_url,plan_name\nhttps://h.example/a.json,"Gold\nhttps://h.example/b.json,x\n',
        "plans.csv is not a readable CSV at line 2: unexpected end of data (a quote opened "
        "in the row that starts on line 2 is never closed)",
    ),
    "utf-16": (
        "file_url\nhttps://h.example/a.json\n".encode("utf-16"),
        "source file plans.csv starts with a UTF-16 byte order mark; save it as UTF-8",
    ),
    "binary": (
        b"file_url\nhttps://h.example/a.json\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        r"source file plans.csv is not UTF-8 text: byte 34 (line 3) is b'\x89'; save it as UTF-8",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CSVS))
def test_batch_orchestrator_hostile_csv_ends_with_the_reason(tmp_path: Path, case: str) -> None:
    content, message = HOSTILE_CSVS[case]
    (tmp_path / "plans.csv").write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "mrfbatch.batch_orchestrator", "--source", "csv"]
        + ["--input", "plans.csv", "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 1
    assert f"error: the csv source is unusable: {message}\n" in proc.stderr
    assert (
        "stopped in" in proc.stderr
        and ": the csv source could not be turned into tasks; see results/logs/tasks.log\n"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert "0 successful, 0 incomplete, 0 failed, 0 not run" in proc.stdout
    assert not (tmp_path / "results" / "tasks.tsv").exists()


def test_batch_orchestrator_checks_the_config_before_snakemake(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mrfbatch.batch_orchestrator", "--source", "csv"]
        + ["--input", "nope.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: config key 'input': csv file nope.csv does not exist\n"
    assert list(tmp_path.iterdir()) == []


def test_batch_orchestrator_max_value_mb_fails_only_the_file_with_a_larger_item(
    served: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = synth.generate(synth.SynthConfig(seed=8, items=9, references=5, large_item_rates=4000))
    url = served["server"].add("/mrf/big.json.gz", containers.pack(big.to_bytes(), "gz"))
    (tmp_path / "list.txt").write_text(f"{served['urls']['alpha']}\n{url}\n")
    monkeypatch.chdir(tmp_path)
    args = ["--source", "urls", "--input", "list.txt", "--workers", "2", "--retries", "0"]
    code = orchestrator_main([*args, "--max-value-mb", "1"])
    assert code != 0
    assert "1 successful, 0 incomplete, 1 failed, 0 not run" in capsys.readouterr().out
    by_id = {e["network_id"]: e for e in manifest(tmp_path)["extractions"]}
    assert by_id["alpha"]["status"] == "success"
    assert by_id["big"]["status"] == "failed"
    assert "an in_network item in " in by_id["big"]["error"]
    assert "is larger than the limit of 1 MB (max_value_mb)" in by_id["big"]["error"]
    assert not (tmp_path / "results" / "big" / "rates.parquet").exists()

    # A higher limit redoes the failed file only.
    assert orchestrator_main([*args, "--max-value-mb", "2"]) == 0
    assert "2 successful, 0 incomplete, 0 failed, 0 not run" in capsys.readouterr().out
    assert (tmp_path / "results" / "big" / "rates.parquet").exists()


def test_batch_orchestrator_command_and_execute_batch(
    served: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    monkeypatch.chdir(tmp_path)
    code = orchestrator_main(
        [
            "--source",
            "urls",
            "--input",
            "list.txt",
            "--workers",
            "2",
            "--cpt-whitelist",
            "codes.txt",
            "--attempts",
            "3",
            "--retry-seconds",
            "60",
            "--timeout",
            "30",
            "--format",
            "csv",
        ]
    )
    assert code == 0
    assert "2 successful, 0 incomplete, 0 failed, 0 not run" in capsys.readouterr().out
    assert manifest(tmp_path)["total_tasks"] == 2
    assert sorted(p.name for p in (tmp_path / "results" / "alpha").iterdir()) == [
        ".done",
        "providers.csv",
        "rates.csv",
        "status.json",
    ]

    # A relative path is relative to the working directory, not to the folder of the CSV
    # execute_batch writes.
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "gamma.json").write_bytes(synth_file(3).to_bytes())
    result = execute_batch(
        [urls["alpha"], {"url": urls["beta"], "plan_name": "Plan Z"}, "local/gamma.json"],
        tmp_path / "batch",
        workers=2,
        cpt_whitelist=tmp_path / "codes.txt",
        format="csv",
    )
    assert result["summary"]["successful"] == 3
    assert {e["network_id"]: e["output_files"]["rates"] for e in result["extractions"]} == {
        name: f"{tmp_path}/batch/{name}/rates.csv" for name in ("alpha", "beta", "gamma")
    }
    plans = {e["network_id"]: e["plan_metadata"] for e in result["extractions"]}
    assert plans["beta"] == [{"plan_name": "Plan Z"}]
    by_id = {e["network_id"]: e["url"] for e in result["extractions"]}
    assert by_id["gamma"] == f"{tmp_path}/local/gamma.json"


def test_execute_batch_refuses_a_misspelled_key_before_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown config key 'rate_batch'; did you mean"):
        execute_batch(["https://127.0.0.1:9/a.json"], tmp_path / "out", rate_batch=10)
    assert not (tmp_path / "out").exists()


def test_execute_batch_quiet_shows_only_the_summary(
    served: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = execute_batch(list(served["urls"].values()), tmp_path / "out", 2, quiet=True)
    assert result["summary"]["successful"] == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("Using workflow")]
    assert lines[0].startswith("mrfbatch: 2 files in "), err
    assert not any(re.match(r"\[\d", line) for line in lines), err
    # the summary block: counts, rows, tables, query, report, manifest, logs
    assert len(lines) == 7, err
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "rows",
        "tables",
        "query",
        "report",
        "manifest",
        "logs",
    ], err


def test_batch_orchestrator_dry_run_counts_what_would_run(
    served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = served["urls"]
    (tmp_path / "list.txt").write_text(f"{urls['alpha']}\n{urls['beta']}\n")
    monkeypatch.chdir(tmp_path)
    args = ["--source", "urls", "--input", "list.txt", "--workers", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "mrfbatch.batch_orchestrator", *args, "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "dry run: urls source list.txt: 2 files; 0 already done, 2 would be extracted: "
        "alpha, beta\n"
    )
    assert not (tmp_path / "results").exists()
    assert orchestrator_main([*args, "--quiet"]) == 0
    (tmp_path / "results" / "beta" / "rates.parquet").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "mrfbatch.batch_orchestrator", *args, "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == (
        "dry run: urls source list.txt: 2 files; 1 already done, 1 would be extracted (1 "
        "finished before whose status or tables are gone): beta\n"
    )
