"""The end of a run: the manifest, the run's tables and database, the report (mrfbatch.finish).

Whole runs, with the summary they end with, are in test_workflow.py and test_summary.py.
"""

from __future__ import annotations

from pathlib import Path

from mrfbatch.finish import report_job


def test_report_job_failed_logs_its_traceback_and_exits_1(tmp_path: Path) -> None:
    # no manifest, no database: the report cannot be written
    settings = {"output_dir": str(tmp_path / "results"), "log_dir": None, "cpt_whitelist": None}
    log_path = tmp_path / "results" / "logs" / "report.log"
    assert report_job(settings, str(log_path)) == 1
    text = log_path.read_text()
    assert "ERROR the step failed" in text and "Traceback" in text
    assert not (tmp_path / "results" / "report.html").exists()
