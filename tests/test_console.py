"""The workflow's console: Snakemake's log records in, a person's lines out.

Unit tests feed mrfbatch.console.Console the records Snakemake logs (as the logger plugin
does); the end-to-end tests read what real runs print.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from mrfbatch import console
from mrfbatch.console import Console
from mrfbatch.layout import RunLayout
from mrfbatch.progress import Snapshot, write_snapshot
from mrfbatch.summary import concise_error
from support import containers, synth
from support.httpserver import FileServer
from support.workflows import TASK_LINE, TimedLines, snakemake, snakemake_command, synth_file

RUN_STARTED = "2026-12-06T10:00:00+00:00"


def record(message: str = "", level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": message, "levelno": level, **extra})


def job_info(jobid: int, network_id: str, rule: str = "extract") -> logging.LogRecord:
    return record(
        f" Rule: {rule}, Jobid: {jobid}",
        event="job_info",
        jobid=jobid,
        rule_name=rule,
        wildcards={"network_id": network_id} if rule == "extract" else {},
    )


def job_finished(jobid: int) -> logging.LogRecord:
    return record(f"Finished jobid: {jobid}", event="job_finished", job_id=jobid)


def job_error(jobid: int, rule: str = "extract") -> logging.LogRecord:
    return record(
        f"Error in rule {rule}, jobid: {jobid}",
        logging.ERROR,
        event="job_error",
        jobid=jobid,
        rule_name=rule,
    )


def status(network_id: str, kind: str = "success", **fields: Any) -> dict[str, Any]:
    return {
        "network_id": network_id,
        "status": kind,
        "error": None,
        "retryable": None,
        "incomplete": [],
        "started_at": "2026-12-06T10:00:05+00:00",
        "duration_seconds": 41.2,
        "bytes_read": 2_300_000_000,
        "items_seen": 1773,
        "items_matched": 3,
        "rate_rows": 142,
        "provider_rows": 80,
        "output_files": {},
        **fields,
    }


class Run:
    """A Console configured for a run into tmp_path/results, and what it printed."""

    def __init__(self, tmp_path: Path, mode: str = "normal", retries: int = 0, **kw: Any):
        self.layout = RunLayout(str(tmp_path / "results"))
        self.out = io.StringIO()
        self.console = Console(stream=self.out, terminal=kw.pop("terminal", False), **kw)
        self.console.configure(
            console.RunInfo(
                self.layout, mode, retries, False, RUN_STARTED, "csv source plans.csv", 2
            )
        )

    def status(self, network_id: str, kind: str = "success", **fields: Any) -> None:
        path = Path(self.layout.status(network_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(status(network_id, kind, **fields)))

    def feed(self, *records: logging.LogRecord) -> None:
        for item in records:
            self.console.handle(item)

    @property
    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def test_console_task_lines_count_up_to_the_tasks_to_do(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.console.plan(total=5, done=2)
    run.status("alpha")
    run.status("gone", "failed", error="HTTP 404 Not Found from host h for https://h/gone.json")
    run.feed(job_info(7, "alpha"), job_info(8, "gone"), job_finished(7), job_error(8))
    assert run.lines == [
        "csv source plans.csv: 5 files; 2 already done, 3 to extract, 2 at a time",
        "[1/3] alpha: success, 3 of 1,773 items, 142 rate rows, 80 provider rows, 2.3 GB in 41 s",
        "[2/3] gone: FAILED: HTTP 404 Not Found from host h for https://h/gone.json",
    ]


def test_console_header_says_what_the_source_skipped(tmp_path: Path) -> None:
    run = Run(tmp_path)
    skipped = ", 1 entry skipped (reporting_structure[3].in_network_files[7]: location is missing)"
    run.console.plan(total=586, done=0, skipped=skipped)
    run.status("alpha")
    run.feed(job_info(7, "alpha"))
    assert run.lines[0] == (
        "csv source plans.csv: 586 files, 1 entry skipped (reporting_structure[3]."
        "in_network_files[7]: location is missing); 0 already done, 586 to extract, 2 at a time"
    )


def test_console_incomplete_line_says_what_is_missing(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.console.plan(total=1, done=0)
    missing = "71 of 71 remote provider-reference files could not be fetched"
    run.status("remote", "incomplete", incomplete=[missing], duration_seconds=3.0)
    run.feed(job_info(1, "remote"), job_error(1))
    assert run.lines[-1] == (
        f"[1/1] remote: INCOMPLETE: {missing}; 3 of 1,773 items, 142 rate rows, 80 provider "
        "rows, 2.3 GB in 3.0 s"
    )


def test_console_job_without_a_fresh_status_is_a_failure_pointing_at_the_log(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path)
    run.console.plan(total=1, done=0)
    run.status("old", started_at="2026-12-05T09:00:00+00:00")  # an earlier run's
    run.feed(job_info(1, "old"), job_error(1))
    log = tmp_path / "results" / "logs" / "extract" / "old.log"
    assert run.lines[-1] == (
        "[1/1] old: FAILED: the job ended without a status (killed, out of memory, or a full "
        f"disk?); see {log}"
    )


def test_console_retried_attempts_are_not_counted(tmp_path: Path) -> None:
    run = Run(tmp_path, retries=1)
    run.console.plan(total=2, done=0)
    run.status("flaky", "failed", error="HTTP 503", retryable=True)
    run.status("gone", "failed", error="HTTP 404", retryable=False)
    run.feed(job_info(1, "flaky"), job_error(1), job_info(2, "gone"), job_error(2))
    run.feed(job_info(1, "flaky"), job_error(1), job_info(2, "gone"), job_error(2))
    assert run.lines[1:] == [
        "      flaky: attempt 1 ended: HTTP 503; retrying",  # a 404 is not said twice
        "[1/2] flaky: FAILED: HTTP 503",
        "[2/2] gone: FAILED: HTTP 404",
    ]


def test_console_drops_snakemake_noise_and_shortens_errors(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.feed(
        record("Select jobs to execute..."),
        record("Job stats:\njob count", event="run_info", stats={"extract": 2}),
        record("Shell command: None", event="shellcmd"),
        record("2 of 10 steps (20%) done", event="progress", done=2, total=10),
        record(
            "RuleException:\nCalledProcessError in file /w/rules/extract.smk, line 27:\n"
            "Command 'set -euo pipefail; python /w/.snakemake/scripts/tmpab.extract.py' "
            "returned non-zero exit status 1.",
            logging.ERROR,
            event="error",
            exception="RuleException",
        ),
        record("Exiting because a job execution failed. Look above for error messages", 40),
        record(
            "WorkflowError:\nAt least one job did not complete successfully.",
            logging.ERROR,
            event="error",
            exception="WorkflowError",
        ),
        record(
            'SourceError in file "/w/rules/common.smk", line 30:\nresults/tasks.tsv line 2: '
            "network id '../evil' is not a safe folder name\n  File \"/w/Snakefile\", line 3,"
            " in <module>\n    include: x",
            logging.ERROR,
            event="error",
            exception="SourceError",
        ),
        record("Lints for rule x:\n    * a param is hardcoded", logging.WARNING),
    )
    assert run.lines == [
        "error: results/tasks.tsv line 2: network id '../evil' is not a safe folder name",
        "warning: Lints for rule x:",  # a warning is shown whole
        "    * a param is hardcoded",
    ]


def test_console_says_once_that_the_run_is_stopping(tmp_path: Path) -> None:
    run = Run(tmp_path)
    waiting = "Will exit after finishing currently running jobs (scheduler)."
    run.feed(record(waiting), record(waiting), record("Shutting down, this might take some time."))
    run.feed(record("Terminating processes on user request, this might take some time."))
    assert run.lines == [
        waiting,
        "Terminating processes on user request, this might take some time.",
    ]


def test_console_verbose_passes_every_snakemake_record_on(tmp_path: Path) -> None:
    seen: list[str] = []
    run = Run(tmp_path, mode="verbose", fallback=lambda r: seen.append(r.getMessage()))
    run.console.plan(total=1, done=0)
    run.status("alpha")
    run.feed(record("Select jobs to execute..."), job_info(1, "alpha"), job_finished(1))
    assert seen == ["Select jobs to execute...", " Rule: extract, Jobid: 1", "Finished jobid: 1"]
    assert run.lines[-1].startswith("[1/1] alpha: success")


def test_console_quiet_prints_the_summary_and_errors_only(tmp_path: Path) -> None:
    run = Run(tmp_path, mode="quiet")
    run.console.plan(total=1, done=0)
    run.status("alpha")
    run.feed(
        record("billing codes: 1 from codes.txt (27447)", mrfbatch="info"),
        job_info(1, "alpha"),
        job_finished(1),
        record("error one", logging.ERROR, event="error"),
        record("mrfbatch: 1 files in 1 s: 1 success", mrfbatch="summary"),
    )
    assert run.lines == ["error: error one", "mrfbatch: 1 files in 1 s: 1 success"]


def test_console_dry_run_says_what_would_run(tmp_path: Path) -> None:
    run = Run(tmp_path, dryrun=True)
    stats = record("Job stats", event="run_info", stats={"extract": 3, "manifest": 1})
    run.feed(stats)  # tasks.tsv is not made yet: no plan
    assert run.lines[-1].startswith("dry run: the source is read first")
    run = Run(tmp_path, dryrun=True)
    run.console.plan(total=5, done=2)
    run.feed(stats, stats)  # Snakemake says it twice
    assert run.lines == [
        "csv source plans.csv: 5 files; 2 already done, 3 to extract, 2 at a time",
        "dry run: 3 of 5 files would be extracted, 2 are done",
    ]


def test_console_terminal_progress_line_is_cleared_before_other_lines(tmp_path: Path) -> None:
    run = Run(tmp_path, terminal=True)
    run.console.plan(total=2, done=0)
    run.feed(job_info(1, "slow"))
    now = time.time()
    Path(run.layout.task_dir("slow")).mkdir(parents=True)
    write_snapshot(
        run.layout.task_progress("slow"),
        Snapshot("slow", now - 10, now, bytes_read=45_000_000, bytes_total=120_000_000),
    )
    run.console.tick()
    run.status("slow")
    run.feed(job_finished(1))
    run.console.stop()
    text = run.out.getvalue()
    progress = "  [0/2 done] running: slow 45.0 of 120.0 MB (38%), 4.5 MB/s, 17 s left"
    assert text.endswith(
        f"2 at a time\n\r\x1b[K{progress}\r\x1b[K[1/2] slow: success, 3 of 1,773 items, "
        "142 rate rows, 80 provider rows, 2.3 GB in 41 s\n"
    ), repr(text)  # cleared before the line; nothing left running to redraw


def test_console_plain_progress_line_and_progress_file(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.console.plan(total=3, done=1)
    run.feed(job_info(1, "slow"), job_info(2, "quick"))
    now = time.time()
    Path(run.layout.task_dir("slow")).mkdir(parents=True)
    write_snapshot(
        run.layout.task_progress("slow"),
        Snapshot("slow", now - 10, now, bytes_read=5_000_000, bytes_total=None),
    )
    run.console._progress_written = 0.0  # due now
    run.console.tick()
    assert run.lines[-1] == "  [0/2 done] running: slow 5.0 MB read, 500.0 kB/s"
    state = json.loads(Path(run.layout.progress).read_text())
    assert state["state"] == "running" and (state["total_tasks"], state["done_before"]) == (3, 1)
    assert state["running"] == [
        {"network_id": "quick"},
        {
            "network_id": "slow",
            "bytes_read": 5_000_000,
            "bytes_total": None,
            "percent": None,
            "phase": "reading",
        },
    ]


def test_console_shows_how_far_the_source_is_read_until_its_job_ends(tmp_path: Path) -> None:
    """An index of gigabytes takes minutes to read: the checkpoint's progress is shown, even
    with one core (whose extraction jobs show their own), and no more once it is read."""
    run = Run(tmp_path)
    assert run.console.run is not None
    run.console.run.echo = True  # --cores 1
    run.feed(job_info(3, "", rule="tasks"))
    now = time.time()
    Path(run.layout.output_dir).mkdir(parents=True)
    write_snapshot(
        run.layout.source_progress,
        Snapshot("", now - 10, now, bytes_read=45_000_000, bytes_total=120_000_000, items_seen=9),
    )
    run.console.tick()
    assert run.lines == [
        "  reading the source: 45.0 of 120.0 MB (38%), 4.5 MB/s, 17 s left; 9 reporting structures"
    ]
    run.feed(job_finished(3))
    run.console.tick()
    assert len(run.lines) == 1
    run.console.stop()


def test_concise_error_keeps_the_message_and_drops_positions() -> None:
    text = (
        "InputFunctionException in rule all in file /w/Snakefile, line 30:\nError:\n"
        "  SourceError: results/tasks.tsv line 2: unsafe\nWildcards:\n\nTraceback:\n"
        '  File "/w/rules/common.smk", line 35, in get_task_targets\n'
    )
    assert concise_error(text) == "SourceError: results/tasks.tsv line 2: unsafe"


# -- real runs --------------------------------------------------------------------------------

FORBIDDEN = ("Traceback", "RuleException", "CalledProcessError", "WorkflowError", ".snakemake/")


@pytest.mark.workflow
def test_console_of_five_files_with_one_404_is_short_and_says_each_outcome(
    http_server: FileServer, tmp_path: Path
) -> None:
    names = ["alpha", "beta", "gamma", "delta"]
    urls = [
        http_server.add(
            f"/mrf/{name}.json.gz", containers.pack(synth_file(40 + i).to_bytes(), "gz")
        )
        for i, name in enumerate(names)
    ]
    urls.append(http_server.add("/mrf/gone.json.gz", b"", status=404))
    (tmp_path / "plans.csv").write_text(
        "file_url,plan_name\n" + "".join(f"{url},Plan {i}\n" for i, url in enumerate(urls))
    )
    (tmp_path / "codes.txt").write_text("99213\n27447\n")
    proc = snakemake(tmp_path, "source=csv", "input=plans.csv", "cpt_whitelist=codes.txt")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) <= 30, proc.stderr
    for word in FORBIDDEN:
        assert word not in proc.stderr, proc.stderr
    assert "billing codes: 2 from codes.txt (27447, 99213)" in lines
    assert "csv source plans.csv: 5 files; 0 already done, 5 to extract, 2 at a time" in lines
    task_lines = [line for line in lines if TASK_LINE.match(line)]
    assert sorted(TASK_LINE.match(line).group(3) for line in task_lines) == sorted(  # type: ignore[union-attr]
        [*names, "gone"]
    )
    assert [line.split("] ")[0] for line in task_lines] == [f"[{i}/5" for i in range(1, 6)]
    assert sum(": success, " in line for line in task_lines) == 4
    assert f"] gone: FAILED: HTTP 404 Not Found from host 127.0.0.1 for {urls[-1]}" in (proc.stderr)
    summary = lines[lines.index(next(x for x in lines if x.startswith("mrfbatch: 5 files"))) :]
    assert re.match(r"mrfbatch: 5 files in [\d.]+ s+: 4 success, 1 failed$", summary[0])
    assert "  manifest:   results/manifest.json (every file's status)" in summary
    assert any(line.startswith("  failed:     gone: HTTP 404") for line in summary)
    assert summary[-3:-1] == [
        # a 404 is not cured by a rerun
        "  next:       a rerun alone would not change the 1 file not done; once its cause is "
        "dealt with, run the same command again (it keeps the others)",
        "              (it will fail again as it stands, for the reason above: fix or drop it "
        "in plans.csv)",
    ]
    assert re.match(
        r"              snakemake .*--config source=csv input=plans.csv cpt_whitelist=codes.txt$",
        summary[-1],
    ), summary[-1]


@pytest.mark.workflow
@pytest.mark.slow
def test_console_shows_download_progress_with_several_cores(
    http_server: FileServer, tmp_path: Path
) -> None:
    """A plain progress line with the percent at least every 10 s while a file downloads."""
    big = synth.generate(synth.SynthConfig(seed=45, items=1500, references=30))
    payload = containers.pack(big.to_bytes(), "gz")
    rate = len(payload) / 24  # about 24 s
    slow = http_server.add("/mrf/slow.json.gz", payload, rate=rate)
    quick = http_server.add("/mrf/quick.json.gz", containers.pack(synth_file(46).to_bytes(), "gz"))
    (tmp_path / "list.txt").write_text(f"{slow}\n{quick}\n")
    run = TimedLines([*snakemake_command(2), "--config", "source=urls", "input=list.txt"], tmp_path)
    assert run.wait(timeout=180) == 0, run.text
    progress = [
        (at, line)
        for at, line in run.lines
        if re.match(r"  \[1/2 done\] running: slow [\d.]+ of [\d.]+ kB \(\d+%\)", line)
    ]
    assert len(progress) >= 2, run.text
    started = next(at for at, line in run.lines if line.startswith("urls source"))
    ended = next(at for at, line in run.lines if "] slow: success" in line)
    times = [started] + [at for at, _ in progress] + [ended]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) <= 11.5, (gaps, run.text)  # every 10 s, give or take the pipe
    percents = [int(re.search(r"\((\d+)%\)", line).group(1)) for _, line in progress]  # type: ignore[union-attr]
    assert percents == sorted(set(percents)) and percents[-1] < 100, percents
    assert "s left" in progress[0][1]
    state = json.loads((tmp_path / "results" / "progress.json").read_text())
    assert state["state"] == "finished" and state["finished"] == {"success": 2}


@pytest.mark.workflow
@pytest.mark.slow
def test_console_with_one_core_echoes_the_extractions_progress(
    http_server: FileServer, tmp_path: Path
) -> None:
    big = synth.generate(synth.SynthConfig(seed=47, items=1500, references=30))
    payload = containers.pack(big.to_bytes(), "gz")
    slow = http_server.add("/mrf/slow.json.gz", payload, rate=len(payload) / 13)
    (tmp_path / "list.txt").write_text(f"{slow}\n")
    proc = snakemake(tmp_path, "source=urls", "input=list.txt", cores=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    echoed = [line for line in proc.stderr.splitlines() if " INFO read " in line]
    assert echoed, proc.stderr
    assert re.search(
        r"INFO read [\d.]+ of [\d.]+ kB \(\d+%\), [\d.]+ kB/s, [\d.]+ s left", echoed[0]
    )
