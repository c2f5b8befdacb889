"""The end of a run: the manifest, the run's tables and database, the report (mrfbatch.finish).

Whole runs, with the summary they end with, are in test_workflow.py and test_summary.py.
"""

from __future__ import annotations

from pathlib import Path

from mrfbatch.finish import report_job
from support.workflows import manifest, snakemake, synth_file


def test_report_job_failed_logs_its_traceback_and_exits_1(tmp_path: Path) -> None:
    # no manifest, no database: the report cannot be written
    settings = {"output_dir": str(tmp_path / "results"), "log_dir": None, "cpt_whitelist": None}
    log_path = tmp_path / "results" / "logs" / "report.log"
    assert report_job(settings, str(log_path)) == 1
    text = log_path.read_text()
    assert "ERROR the step failed" in text and "Traceback" in text
    assert not (tmp_path / "results" / "report.html").exists()


def test_finish_run_says_why_the_report_was_not_written(tmp_path: Path) -> None:
    """A folder where report.html goes: the report rule fails, the run still ends with its
    summary, which says why (naming the report, not a temporary file) with no traceback, and
    keeps the manifest and database the manifest rule wrote in this run."""
    (tmp_path / "a.json").write_bytes(synth_file(61).to_bytes())
    (tmp_path / "plans.csv").write_text("file_url,plan_name\na.json,Plan A\n")
    (tmp_path / "results" / "report.html").mkdir(parents=True)
    (tmp_path / "results" / "report.html" / "kept.txt").write_text("not a report")
    proc = snakemake(tmp_path, "source=csv", "input=plans.csv")
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert "error: report.html could not be written; see results/logs/report.log" in lines
    assert lines[-3:-1] == [
        "  error:      report.html could not be written: cannot write results/report.html: Is a "
        "directory",
        "  next:       run the same command again: it keeps the 1 file done and writes the rest",
    ]
    assert lines[-1].endswith(" --config source=csv input=plans.csv")  # the command given
    assert "Traceback" not in proc.stderr
    assert "  manifest:   results/manifest.json (every file's status)" in lines
    assert [e["status"] for e in manifest(tmp_path)["extractions"]] == ["success"]
    assert (tmp_path / "results" / "mrfbatch.duckdb").is_file()
    assert "Traceback" in (tmp_path / "results" / "logs" / "report.log").read_text()
