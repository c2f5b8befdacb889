"""What the Snakemake workflow calls: the run's start, its task list, the extraction jobs
(the run's end is mrfbatch.finish).

The `.smk` files only map config and wildcards to paths; every decision lives here, where
pytest reaches it.

When a task is done is decided here, not by Snakemake's rerun triggers (the profiles leave out
its `code` trigger, which redoes a script rule whose output is older than the script: every
finished file after a `git pull`): a task is done when `{output_dir}/{network_id}/.done`
exists, the extract job's one declared output. The job writes it after a successful extraction
only, holding the task's recipe (URL without secrets, whitelist, batch sizes, engine, format,
the tables' version). The task's plans are not in it: they make no row of its tables, and the
manifest takes them from the tasks TSV, so another plan list redoes no file (nor must the
run's main process decode every plan, thousands per file in an index). A failed or incomplete
extraction exits non-zero, so the next run redoes it, while its status.json (and an incomplete
task's tables, which Snakemake does not know of) stay for the manifest. Before the run,
`task_targets` sets aside every mark that no longer tells the truth (another recipe, a table
deleted by hand), so Snakemake redoes exactly the tasks the console counts as not done, and
the console says why; a mark set aside comes back if the settings do before the task is redone.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mrfbatch import console
from mrfbatch.config import check_config, load_schema
from mrfbatch.errors import MrfError, UsageError
from mrfbatch.joblog import log_to, quiet_on_ctrl_c, say, stop_logging
from mrfbatch.jsonfile import read_json_object, write_json
from mrfbatch.layout import RunLayout
from mrfbatch.options import ExtractionOptions
from mrfbatch.redact import redact_text, redact_url
from mrfbatch.run_extraction import run_extraction
from mrfbatch.sources import IN_NETWORK_FILES, load_source
from mrfbatch.status import EXIT_STATUS, NO_ROOM, room_to_write, timestamp, write_failure
from mrfbatch.summary import redone_text, skipped_text, task_line
from mrfbatch.tables import TABLES_VERSION
from mrfbatch.tasks import (
    Task,
    read_skipped,
    read_task,
    read_tasks,
    write_skipped,
    write_tasks,
)
from mrfbatch.whitelist import decimals_note, load_whitelist

log = logging.getLogger("mrfbatch")

# Set by the run's main process for its jobs (which inherit it, on a cluster too): when the run
# began, to tell an earlier attempt of this run from a status left by an earlier run.
RUN_STARTED_VARIABLE = "MRFBATCH_RUN_STARTED"
_SHOWN_CODES = 5


@dataclass(frozen=True)
class Run:
    """The checked settings of a workflow run and where its files go."""

    settings: dict[str, Any]
    layout: RunLayout

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Run:
        """The run of a checked config (as jobs and handlers see it)."""
        return cls(dict(config), RunLayout(config["output_dir"], config["log_dir"]))

    def codes(self) -> frozenset[str] | None:
        """The whitelist's codes; None without one."""
        path = self.settings.get("cpt_whitelist")
        return None if not path else load_whitelist(path)

    @functools.cached_property
    def whitelist_digest(self) -> str | None:
        path = self.settings.get("cpt_whitelist")
        return None if not path else hashlib.sha256(Path(path).read_bytes()).hexdigest()

    def recipe(self, task: Task) -> dict[str, Any]:
        """What the task's tables are made of; a finished task with another recipe is redone.

        How patiently files are fetched (attempts, timeouts) and max_value_mb change no table
        of a finished task, so they are not in it, nor are the task's plans and extra_args
        (the run's manifest and plans.parquet take those from the tasks TSV). The URL has no
        query string: a new signature on the same file does not redo the work.
        """
        settings = self.settings
        recipe = {
            "url": redact_url(task.url),
            "whitelist": self.whitelist_digest,
            "provider_batch_size": settings["provider_batch_size"],
            "rate_batch_size": settings["rate_batch_size"],
            "engine": settings["engine"],
        }
        # Marks written before the format key made Parquet: they stay true for a Parquet run.
        if settings["format"] != "parquet":
            recipe["format"] = settings["format"]
        # Marks without the key hold tables of version 1 (bundled_codes as "type:code" texts):
        # a task finished so is redone, so the run's views never mix two shapes of a column.
        if TABLES_VERSION != 1:
            recipe["tables"] = TABLES_VERSION
        return recipe


def start_run(
    config: dict[str, Any],
    command_line: Mapping[str, Any],
    schema_path: str,
    main_process: bool,
    dryrun: bool = False,
    local_cores: int | None = None,
) -> Run:
    """What the Snakefile does first: check the config and the whitelist, lock `output_dir`.

    A mistake stops the run here, before any job, with one line saying what and how to fix
    it (exit status 1). `config` (Snakemake's) gets the schema's defaults. In the main process
    this also sets up the console; `local_cores` is --cores of a local run (None on a cluster).
    """
    try:
        config.update(check_config(config, load_schema(schema_path), command_line))
        run = Run.from_config(config)
        if not main_process:
            return run
        codes = run.codes()
        if not dryrun:
            lock_output_dir(run.layout)
    except MrfError as exc:
        say(f"error: {exc}")
        raise SystemExit(1) from None
    os.environ[RUN_STARTED_VARIABLE] = timestamp()
    echo = local_cores == 1  # one job at a time: its detail goes to the console
    view = console.configure(
        layout=run.layout,
        mode=config["console"],
        retries=config["retries"],
        echo=echo,
        run_started=os.environ[RUN_STARTED_VARIABLE],
        source=f"{config['source']} source {redact_url(str(config['input']))}",
        cores=local_cores,
        whitelist=config["cpt_whitelist"],
    )
    # For the jobs, which read the main process's config (a cluster job gets neither: it runs
    # elsewhere, with no console to echo to and no mrfbatch console in its Snakemake).
    config["_echo"] = echo
    config["_job_line"] = not view.attached  # without mrfbatch's console, jobs say it
    console.announce(_whitelist_line(config["cpt_whitelist"], codes))
    if codes is not None and (note := decimals_note(codes)):
        console.announce(f"note: {note}")
    return run


def _whitelist_line(path: str | None, codes: frozenset[str] | None) -> str:
    if codes is None:
        return (
            "no billing-code whitelist (cpt_whitelist): every item of every file is extracted, "
            "which can be very large"
        )
    shown = ", ".join(sorted(codes)[:_SHOWN_CODES])
    more = ", ..." if len(codes) > _SHOWN_CODES else ""
    return f"billing codes: {len(codes):,} from {path} ({shown}{more})"


_LOCK: IO[str] | None = None


def lock_output_dir(layout: RunLayout) -> None:
    """Hold an exclusive lock on the run's `output_dir` for the life of this process.

    The kernel drops it when the process dies, even by SIGKILL, so a rerun never finds a stale
    lock (Snakemake's own lock files would need `--unlock` after a kill; the profiles turn them
    off and rely on this one instead).
    """
    global _LOCK
    output_dir = layout.output_dir
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        handle = open(layout.lock, "a+", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename not in (None, output_dir) else ""
        raise UsageError(
            f"cannot use output_dir {output_dir}: {exc.strerror or exc}{where}; choose a folder "
            "you can write to (config key output_dir)"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise UsageError(
            f"another mrfbatch run (pid {holder}) is using output_dir {output_dir}; "
            "wait for it to finish or choose another output_dir"
        ) from None
    try:
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):  # closing writes what did not fit again
            handle.close()
        raise UsageError(
            f"cannot use output_dir {output_dir}: {write_failure(exc, layout.lock)}; free space "
            "there or choose another output_dir"
        ) from None
    _LOCK = handle


def make_tasks(
    source: str, source_input: str, tasks_path: str, output_dir: str, file_types: str
) -> list[Task]:
    """The checkpoint's body: normalize a source into the tasks TSV, and write the entries it
    skipped beside it (RunLayout.skipped; an empty list for a source that skipped none).

    The skipped entries are no output Snakemake knows of: a tasks TSV kept from a run of an
    earlier version (or edited by hand) is not read again because the file is missing.
    """
    layout = RunLayout(output_dir)
    skipped_path = layout.skipped
    Path(skipped_path).unlink(missing_ok=True)  # an unusable source leaves none behind
    loaded = load_source(
        source, str(source_input), file_types=file_types, progress_path=layout.source_progress
    )
    write_tasks(loaded.tasks, tasks_path, output_dir)
    write_skipped(loaded.skipped, skipped_path)
    shown = redact_url(str(source_input))
    log.info("%d tasks from %s source %s", len(loaded.tasks), source, shown)
    if loaded.skipped:
        log.warning("%d entries of %s skipped (above)", len(loaded.skipped), shown)
    if source != "index" and file_types != IN_NETWORK_FILES:
        log.info(
            "file_types %s applies to index sources only: the kind of each file of a %s source "
            "is found when it is read",
            file_types,
            source,
        )
    return loaded.tasks


@quiet_on_ctrl_c
def tasks_job(
    source: str,
    source_input: str,
    tasks_path: str,
    output_dir: str,
    log_path: str,
    file_types: str,
) -> int:
    """The checkpoint's job: make_tasks, logging to `log_path`; its exit status.

    An unusable source, or a disk too full for the task list, is exit status 1 with the
    reason in the log and one line on the console, not a traceback.
    """
    handlers = log_to(log_path, echo=False, urls=[source_input])
    try:
        make_tasks(source, source_input, tasks_path, output_dir, file_types)
    except MrfError as exc:
        message = redact_text(str(exc), [source_input])
        log.error("%s", message)
        say(f"error: the {source} source is unusable: {message}")
        return 1
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        why = write_failure(exc, exc.filename or tasks_path)
        message = f"the task list could not be written: {why}{room_to_write(exc, output_dir)}"
        log.error("%s", message)
        say(f"error: {message}")
        return 1
    finally:
        stop_logging(handlers)
    return 0


def find_task(path: str, network_id: str) -> Task:
    """The task of `network_id` in the tasks TSV, or UsageError."""
    task = read_task(path, network_id)
    if task is None:
        raise UsageError(f"network id {network_id!r} is not in {path}")
    return task


def task_targets(run: Run, tasks_path: str) -> list[str]:
    """Every task's `.done` mark, which the run requests; first, marks that lie are set aside.

    A mark lies when it holds another recipe than the task's now, or the task's status.json
    is gone or not `success`, or a table it lists is gone: it is renamed (layout's
    set_aside_done), so Snakemake sees it missing and redoes the task. A mark set aside whose
    recipe is today's again (a dry run with other codes, or a run stopped before the task's
    job began, then the first settings back) is put back, and the task is done. Tells the
    console how many tasks are done, why the others finished before are redone, and which
    entries of the source were skipped. The tasks are read without their plans (see
    read_tasks), which refuses the file when an id is not a safe folder name, e.g. after an
    edit.
    """
    key = (tasks_path, os.stat(tasks_path).st_mtime_ns)
    if _last_targets.get("key") != key:  # called for `all` and for `manifest`: once is enough
        tasks = read_tasks(tasks_path, plans=False)
        done = 0
        redone: Counter[str] = Counter()
        for task in tasks:
            why = _settle_mark(run, task)
            if why is None:
                done += 1
            elif why:
                redone[why] += 1
        skipped_words = skipped_text(*read_skipped(run.layout.skipped), run.layout.tasks_log)
        console.plan(len(tasks), done, skipped_words, redone_text(redone))
        _last_targets.update(key=key, targets=sorted(run.layout.done(t.network_id) for t in tasks))
    targets: list[str] = _last_targets["targets"]
    return targets


_last_targets: dict[str, Any] = {}


def _settle_mark(run: Run, task: Task) -> str | None:
    """Set aside the task's mark when it lies, or put back one set aside that holds again;
    why_not_done's answer."""
    mark = run.layout.done(task.network_id)
    why = why_not_done(run, task)
    if why is None and not os.path.lexists(mark):  # no job has run it since the mark was made
        os.replace(run.layout.set_aside_done(task.network_id), mark)
    elif why and os.path.lexists(mark):
        os.replace(mark, run.layout.set_aside_done(task.network_id))
    return why


def why_not_done(run: Run, task: Task) -> str | None:
    """None when the task is done, by its mark or by one set aside that holds again; else why
    not, as not_done_why says ("" when it has neither)."""
    why = not_done_why(run, task, run.layout.done(task.network_id))
    aside = run.layout.set_aside_done(task.network_id)
    return not_done_why(run, task, aside) if why == "" and os.path.exists(aside) else why


def not_done_why(run: Run, task: Task, mark: str) -> str | None:
    """None when the mark at `mark` holds the task's recipe today, its status is `success` and
    every table it lists is there; else why not, in words after "finished before" ("" when
    there is no mark)."""
    recipe = read_json_object(mark)
    if recipe is None:
        return "whose mark is unreadable" if os.path.lexists(mark) else ""
    recipe.pop("plans", None)  # a mark written before plans left the recipe
    today = run.recipe(task)
    if recipe != today:
        return _recipe_change(recipe, today)
    status = read_json_object(run.layout.status(task.network_id)) or {}
    tables = (status.get("output_files") or {}).values()
    if status.get("status") == "success" and all(Path(path).is_file() for path in tables):
        return None
    return "whose status or tables are gone"


def _recipe_change(before: Mapping[str, Any], today: Mapping[str, Any]) -> str:
    """What differs between a mark's recipe and the task's today, as the console says it."""
    was, now = before.get("whitelist"), today.get("whitelist")
    if was != now:
        if was is None:
            return "without a codes list"
        return "with a codes list, unlike this run" if now is None else "with other codes"
    for key, words in (
        ("format", "in another format"),
        ("engine", "with another engine"),
        ("rate_batch_size", "with other batch sizes"),
        ("provider_batch_size", "with other batch sizes"),
        ("tables", "by an earlier mrfbatch"),
        ("url", "from another URL"),
    ):
        if before.get(key) != today.get(key):
            return words
    return "with other settings"


@quiet_on_ctrl_c
def job_main(network_id: str, settings: Mapping[str, Any], threads: int = 1) -> int:
    """The `extract` job's process: :func:`run_task` in a process that never uses numpy or
    pandas (scripts/extract.py keeps them out before it imports this module)."""
    return run_task(network_id, settings, threads)


def run_task(network_id: str, settings: Mapping[str, Any], threads: int = 1) -> int:
    """An extraction job: run one task, logging to its log file; the job's exit status.

    0 on success (after writing the task's `.done` mark), 1 failed, 3 incomplete (see
    run_extraction). When Snakemake retries a job whose failure no retry can cure (an HTTP 404,
    invalid JSON), or that is incomplete for such reasons only, in the same run, nothing is
    fetched again: the outcome stands.
    """
    run = Run.from_config(settings)
    layout = run.layout
    task = find_task(layout.tasks, network_id)
    log_path = layout.task_log(network_id)
    settled = _settled_in_this_run(layout, task)
    if settled is not None:
        why = (
            "ERROR not retried: the failure above cannot succeed on retry"
            if settled == "failed"
            else "WARNING not retried: the remote files the tables lack (above) failed for "
            "reasons no retry cures"
        )
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"{timestamp()} {why}\n")
        return EXIT_STATUS[settled]
    for mark in (layout.done(network_id), layout.set_aside_done(network_id)):
        Path(mark).unlink(missing_ok=True)  # the tables are about to change
    handlers = log_to(log_path, settings.get("_echo", False), [task.url])
    try:
        result = run_extraction(
            task.url,
            settings["output_dir"],
            ExtractionOptions.from_config(settings, threads),
            network_id=network_id,
            cpt_whitelist=settings["cpt_whitelist"],
        )
    finally:
        stop_logging(handlers)
    line = f"[mrfbatch] {task_line(result.to_dict())}"
    status = read_json_object(layout.status(network_id))
    if status is None or status.get("started_at") != result.started_at:
        # a full disk: the console has nothing else to say what happened
        say(f"{line} (its status.json could not be written either)")
        return result.exit_status
    if result.ok:
        try:
            write_json(layout.done(network_id), run.recipe(task), indent=None)
        except OSError as exc:
            say(f"{line}, but {write_failure(exc, layout.done(network_id))}: a rerun redoes it")
            return 1
    if settings.get("_job_line", True):
        say(line)
    return result.exit_status


def _settled_in_this_run(layout: RunLayout, task: Task) -> str | None:
    """`failed` or `incomplete` when an earlier attempt in this run ended so for reasons no
    retry can cure, else None."""
    started = os.environ.get(RUN_STARTED_VARIABLE)
    status = read_json_object(layout.status(task.network_id))
    if (
        started is not None
        and status is not None
        and status.get("status") in ("failed", "incomplete")
        and status.get("retryable") is False
        and str(status.get("started_at", "")) >= started
        and status.get("url") == redact_url(task.url)
    ):
        return str(status["status"])
    return None
