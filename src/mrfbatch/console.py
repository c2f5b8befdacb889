"""What a person sees while the workflow runs: a line per file, live progress, a summary.

Snakemake's own output (job blocks, step counters, error blocks with temporary script paths)
is replaced by this console through a Snakemake logger plugin
(`snakemake_logger_plugin_mrfbatch`, set in the profiles): every log record of the run reaches
`Console.handle`, in order, in one thread. From Snakemake's records it learns which job runs
which file; the files' own status.json say what happened. A run prints:

    billing codes: 3 from codes.txt (27447, 99213, J1885)
    csv source plans.csv: 5 files; 0 already done, 5 to extract, 2 at a time
    [1/5] alpha: success, 21 of 40 items, 76 rate rows, 46 provider rows, 12.1 kB in 0.1 s
    [2/5] gone: FAILED: HTTP 404 Not Found from host 127.0.0.1 for http://...
    ...
    (then the summary block: counts, rows, where things are, what to do next)

While files download, a line shows each one's progress (on a terminal one line that updates,
otherwise a plain line every 10 s), and `{output_dir}/progress.json` says how far the run is.
The Snakefile's side (mrfbatch.workflow) calls the module functions below; they log through
Snakemake's logger, so the lines stay in order with the jobs' records, and without the plugin
Snakemake's default handler still prints them.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from mrfbatch.jsonfile import read_json_object, write_json
from mrfbatch.layout import RunLayout
from mrfbatch.manifest import read_manifest_without_plans
from mrfbatch.progress import read_snapshot, run_state
from mrfbatch.summary import concise_error, files, rerun_command, summary_text, task_line

TERMINAL_SECONDS = 1.0  # how often the one updating progress line is redrawn on a terminal
PLAIN_SECONDS = 10.0  # how often a progress line is printed when the console is no terminal
PROGRESS_FILE_SECONDS = 2.0  # how often progress.json is rewritten, at most

# Snakemake messages that say nothing the console does not say better: a job's non-zero exit
# is reported from its status.json (or as a job that ended without one).
_NOISE = (
    "Exiting because a job execution failed",
    "At least one job did not complete successfully",
    "returned non-zero exit status",
)
_NOTHING_TO_DO = "Nothing to be done"
# Snakemake's messages a person must see although they are only informational (said once).
# (Ctrl-C, SIGTERM): the run is being stopped, so a job that dies by a signal is no news.
_SHOWN = ("Terminating processes on user request", "Will exit after finishing currently running")
_KILLED = "died with <Signals."


@dataclass
class Plan:
    """The run's tasks: `total`, of which `done` were finished before it; in words, what the
    source skipped and why tasks finished before are redone (mrfbatch.summary)."""

    total: int
    done: int
    skipped: str = ""
    redone: str = ""


@dataclass
class RunInfo:
    """What the Snakefile's side knows of the run before it starts."""

    layout: RunLayout
    mode: str = "normal"
    retries: int = 0
    echo: bool = False
    run_started: str = ""
    source: str = ""
    cores: int | None = None
    whitelist: str | None = None
    started: float = field(default_factory=time.monotonic)


class Console:
    """Renders a workflow run from log records; see the module docstring."""

    def __init__(
        self,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        fallback: Callable[[logging.LogRecord], None] | None = None,
        verbose: bool = False,
        quiet: bool = False,
        dryrun: bool = False,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.fallback = fallback  # Snakemake's own rendering, for --verbose runs
        self.forced_mode = "verbose" if verbose else "quiet" if quiet else None
        self.dryrun = dryrun
        self.attached = False  # True once a Snakemake run's records come here
        self.run: RunInfo | None = None
        self.planned: Plan | None = None
        self._lock = threading.RLock()
        self._jobs: dict[int, str] = {}  # Snakemake job id -> network id
        self._attempts: Counter[str] = Counter()
        self._running: dict[str, float] = {}  # network id -> when its job started
        self._finished: Counter[str] = Counter()  # status -> tasks finished in this run
        self._problems: dict[str, str] = {}  # network id -> status, for progress.json
        # network id -> why, for jobs of this run that ended without writing their status
        self.unrecorded: dict[str, str] = {}
        self.idle_end: Callable[[], Mapping[str, Any]] | None = None  # see on_idle
        self._header_shown = False
        self._said: set[str] = set()  # Snakemake's words that the run is stopping, once said
        self._status_line = ""  # the progress line on the terminal, to clear before a line
        self._ticker: threading.Thread | None = None
        self._source_job: int | None = None  # the job reading the source, while it runs
        self._stop = threading.Event()
        self._progress_written = 0.0

    # -- what the Snakefile's side tells it ------------------------------------------------

    @property
    def mode(self) -> str:
        return self.forced_mode or (self.run.mode if self.run else "normal")

    def configure(self, info: RunInfo) -> None:
        with self._lock:
            self.run = info

    def plan(self, total: int, done: int, skipped: str = "", redone: str = "") -> None:
        with self._lock:
            self.planned = Plan(total, done, skipped, redone)

    # -- records ---------------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> None:
        """One log record of the run (called in order, from one thread)."""
        with self._lock:
            kind = getattr(record, "mrfbatch", None)
            if kind is not None:
                self._own(kind, record)
                return
            verbose = self.mode == "verbose" and self.fallback is not None
            if verbose:
                self.fallback(record)  # type: ignore[misc]
            event = str(getattr(record, "event", None) or "")
            handler = getattr(self, f"_on_{event}", None) if event else None
            if handler is not None:
                handler(record)
            elif not verbose:
                self._on_other(record)

    def _own(self, kind: str, record: logging.LogRecord) -> None:
        if kind in ("summary", "stopped"):
            self._end(record.getMessage(), header=kind == "summary")
        elif self.mode != "quiet":
            self._say(record.getMessage())

    def _end(self, summary: str, header: bool = True) -> None:
        if header:  # not when the source could not be read: the plan is an earlier one's
            self._show_header()
        self.stop()
        self._write_progress(final=True)
        self._say(summary)

    def _on_job_info(self, record: logging.LogRecord) -> None:
        if getattr(record, "rule_name", "") == "tasks":  # the source is read: how far, shown
            self._source_job = int(getattr(record, "jobid", -1))
            self._start_ticker()
        if getattr(record, "rule_name", "") != "extract":
            return
        network_id = str((getattr(record, "wildcards", None) or {}).get("network_id", ""))
        self._jobs[int(getattr(record, "jobid", -1))] = network_id
        self._attempts[network_id] += 1
        self._running[network_id] = time.time()
        self._show_header()
        self._start_ticker()

    def _on_job_finished(self, record: logging.LogRecord) -> None:
        if int(getattr(record, "job_id", -1)) == self._source_job:
            self._source_job = None
        network_id = self._jobs.pop(int(getattr(record, "job_id", -1)), None)
        if network_id is not None:
            self._task_ended(network_id)

    def _on_job_error(self, record: logging.LogRecord) -> None:
        rule = getattr(record, "rule_name", "")
        if rule == "manifest" and self.run is not None:
            log = self.run.layout.manifest_log
            self._say(f"error: manifest.json could not be written; see {log}")
        if rule == "report" and self.run is not None:
            log = self.run.layout.report_log
            self._say(f"error: report.html could not be written; see {log}")
        if rule == "tasks":
            self._source_job = None
        if rule != "extract":
            return  # the tasks job says itself why the source is unusable
        network_id = self._jobs.pop(int(getattr(record, "jobid", -1)), None)
        if network_id is None:
            return
        retries = self.run.retries if self.run else 0
        if self._attempts[network_id] <= retries:
            self._running.pop(network_id, None)
            status = self._fresh_status(network_id)
            if status is not None and status.get("retryable") is False:
                return  # the next attempt only says so again, without fetching anything
            why = (status or {}).get("error") or (status or {}).get("status") or "no status"
            if self.mode != "quiet":
                attempt = self._attempts[network_id]
                self._say(f"      {network_id}: attempt {attempt} ended: {why}; retrying")
            return
        self._task_ended(network_id)

    def _on_run_info(self, record: logging.LogRecord) -> None:
        if not self.dryrun or self._header_shown:  # Snakemake says it twice in a dry run
            return
        stats = getattr(record, "stats", None) or {}
        self._show_header()
        if self.planned is None:
            self._header_shown = True
            self._say(
                "dry run: the source is read first (tasks.tsv is missing or older than the "
                "source); then every file not yet done is extracted"
            )
        else:
            todo = int(stats.get("extract", 0))
            self._say(
                f"dry run: {todo:,} of {files(self.planned.total)} would be extracted, "
                f"{self.planned.done:,} are done"
            )

    def _on_error(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if self._noise(text) or self.mode == "verbose":
            return
        self._say(f"error: {concise_error(text)}")

    def _on_other(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith(_NOTHING_TO_DO) and self.run is not None:
            idle = None if self.dryrun else self.idle_end
            manifest = idle() if idle else read_manifest_without_plans(self.run.layout.manifest)
            if manifest is not None:
                self._end(self._summary(manifest))
            return
        shown = next((said for said in _SHOWN if text.startswith(said)), None)
        if shown is not None:
            if shown not in self._said:
                self._said.add(shown)
                self._say(text.strip())
            return
        if record.levelno < logging.WARNING or self._noise(text):
            return
        if record.levelno >= logging.ERROR:
            self._say(f"error: {concise_error(text)}")
        else:  # whole: a warning's detail is its point (snakemake --lint's, say)
            self._say(f"warning: {text.strip()}")

    def _noise(self, text: str) -> bool:
        return any(noise in text for noise in _NOISE) or (bool(self._said) and _KILLED in text)

    # -- tasks -----------------------------------------------------------------------------

    def _task_ended(self, network_id: str) -> None:
        self._running.pop(network_id, None)
        status = self._fresh_status(network_id)
        kind = (status or {}).get("status", "failed")
        self._finished[kind] += 1
        if kind != "success":
            self._problems[network_id] = kind
        if status is None:
            log = self.run.layout.task_log(network_id) if self.run else "its log"
            self.unrecorded[network_id] = (
                f"the job ended without a status (killed, out of memory, or a full disk?); "
                f"see {log}"
            )
        if self.mode != "quiet":
            why = self.unrecorded.get(network_id)
            line = task_line(status) if status else f"{network_id}: FAILED: {why}"
            self._say(f"[{sum(self._finished.values())}/{self._to_do()}] {line}")
        self._write_progress()

    def _fresh_status(self, network_id: str) -> dict[str, Any] | None:
        """The task's status.json if this run wrote it (not one an earlier run left)."""
        if self.run is None:
            return None
        status = read_json_object(self.run.layout.status(network_id))
        if status is None or str(status.get("started_at", "")) < self.run.run_started:
            return None
        return status

    def _to_do(self) -> int:
        if self.planned is None:
            return max(len(self._jobs) + sum(self._finished.values()), 1)
        return max(self.planned.total - self.planned.done, sum(self._finished.values()))

    def _show_header(self) -> None:
        if self._header_shown or self.run is None or self.planned is None:
            return
        self._header_shown = True
        if self.mode == "quiet":
            return
        plan = self.planned
        todo = plan.total - plan.done
        line = f"{self.run.source}: {files(plan.total)}{plan.skipped}; {plan.done:,} already done, "
        line += f"{todo:,} to extract{plan.redone}"
        if self.run.cores and self.run.cores > 1 and todo > 1:
            line += f", {min(self.run.cores, todo)} at a time"
        self._say(line)

    # -- progress --------------------------------------------------------------------------

    def _start_ticker(self) -> None:
        if self._ticker is not None or self.dryrun or self.run is None:
            return
        if self.mode == "quiet" or (self.run.echo and self._source_job is None):
            return  # with one job at a time, its own log shows its progress
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="mrfbatch-progress")
        self._ticker.daemon = True
        self._ticker.start()

    def _tick_loop(self) -> None:
        period = TERMINAL_SECONDS if self.terminal else PLAIN_SECONDS
        deadline = time.monotonic() + period
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            deadline += period
            self.tick()

    def tick(self) -> None:
        """Show the running files' progress now (the ticker calls it every period)."""
        with self._lock:
            if self._stop.is_set():  # stopped while this tick waited for the lock
                return
            self._write_progress()
            text = self._progress_text()
            if self.terminal:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self._draw(text[:width] if text else "")
            elif text:
                self._write(f"{text}\n")

    def _progress_text(self) -> str:
        if self.run is None:
            return ""
        if self._source_job is not None:
            snap = read_snapshot(self.run.layout.source_progress)
            if snap is None:
                return ""
            structures = f"{snap.items_seen:,} reporting structures"
            return f"  reading the source: {snap.describe()}; {structures}"  # numbers first
        parts = []
        for network_id in sorted(self._running, key=self._running.__getitem__):
            if self.run.echo:
                break  # its own log shows it
            snap = read_snapshot(self.run.layout.task_progress(network_id))
            if snap is not None:
                parts.append(f"{network_id} {snap.describe()}")
        if not parts:
            return ""
        done = sum(self._finished.values())
        return f"  [{done}/{self._to_do()} done] running: " + "; ".join(parts)

    def _write_progress(self, final: bool = False) -> None:
        """Rewrite progress.json (at most every PROGRESS_FILE_SECONDS, except the last time)."""
        if self.run is None or self.dryrun:
            return
        now = time.monotonic()
        if not final and now - self._progress_written < PROGRESS_FILE_SECONDS:
            return
        self._progress_written = now
        layout = self.run.layout
        running = {n: read_snapshot(layout.task_progress(n)) for n in sorted(self._running)}
        total, done = (self.planned.total, self.planned.done) if self.planned else (None, None)
        state = run_state(total, done, self._finished, running, self._problems, final)
        with contextlib.suppress(OSError):  # the folder may be gone (the run failed early)
            write_json(layout.progress, state, indent=1)

    def stop(self) -> None:
        """Stop the progress ticker (it ends at its next wake-up) and clear its line."""
        with self._lock:
            self._stop.set()
            self._ticker = None
            self._draw("")

    def _summary(self, manifest: Mapping[str, Any]) -> str:
        assert self.run is not None
        planned, ran = self.planned, sum(self._finished.values())  # ran: forced (-R), say
        return summary_text(
            manifest,
            self.run.layout,
            time.monotonic() - self.run.started,
            rerun_command(),
            done_before=None if planned is None else min(planned.done, planned.total - ran),
            whitelist=self.run.whitelist,
            interrupted=bool(self._said),
        )

    # -- output ----------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        """Lines of text, each whole, above the progress line (redrawn after them)."""
        shown = bool(self._status_line)
        self._draw("")
        self._write(text + "\n")
        if shown:  # without the files that just ended
            self._draw(self._progress_text())

    def _draw(self, text: str) -> None:
        if not self.terminal or text == self._status_line:
            return
        self._write("\r\033[K" + text)
        self._status_line = text

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing to show any more
            pass


# -- the module's console: one per process, shared by the logger plugin and the Snakefile ------

_current: Console | None = None
_current_lock = threading.Lock()


def attach(console: Console) -> Console:
    """Make `console` the one this process's workflow run talks to (the plugin calls it)."""
    global _current
    with _current_lock:
        console.attached = True
        _current = console
    return console


def current() -> Console:
    """This process's console (a detached one when no plugin attached one)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Console()
        return _current


def configure(
    layout: RunLayout,
    mode: str = "normal",
    retries: int = 0,
    echo: bool = False,
    run_started: str = "",
    source: str = "",
    cores: int | None = None,
    whitelist: str | None = None,
) -> Console:
    """Tell the console about the run (the Snakefile's main process, before any job)."""
    view = current()
    info = RunInfo(layout, mode, retries, echo, run_started, source, cores, whitelist)
    view.configure(info)
    return view


def plan(total: int, done: int, skipped: str = "", redone: str = "") -> None:
    """The run's tasks (see Plan)."""
    current().plan(total, done, skipped, redone)


def announce(text: str) -> None:
    """A line for the console, in order with the run's other lines."""
    _snakemake_logger().info(text, extra={"mrfbatch": "info"})


def unrecorded() -> dict[str, str]:
    """Why each job of this run that ended without writing its status ended so, by network id
    (what the console said of it)."""
    return dict(current().unrecorded)


def on_idle(end: Callable[[], Mapping[str, Any]]) -> None:
    """What gives the summary's manifest when Snakemake has nothing to do: `end`, which writes
    again the run's files that are gone (mrfbatch.finish.finish_idle_run)."""
    current().idle_end = end


def finish(manifest: Mapping[str, Any]) -> None:
    """The run's summary (Snakemake's onsuccess and onerror handlers)."""
    view = current()
    if view.run is None:
        return
    text = view._summary(manifest)
    kind = "stopped" if manifest.get("error") else "summary"
    _snakemake_logger().info(text, extra={"mrfbatch": kind})


def _snakemake_logger() -> logging.Logger:
    return logging.getLogger("snakemake.logging")  # snakemake.logging.logger
