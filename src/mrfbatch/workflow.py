"""What the Snakemake workflow calls: config checks, the output-folder lock, the job bodies.

The `.smk` files only map config and wildcards to paths; every decision lives here, where
pytest reaches it.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from mrfbatch.engines import DEFAULT_MAX_VALUE_MB, ENGINES
from mrfbatch.errors import MrfError, UsageError
from mrfbatch.manifest import build_manifest, write_manifest
from mrfbatch.network_ids import RedactingFormatter, redact_text, redact_url
from mrfbatch.run_extraction import ExtractionResult, run_extraction, status_text
from mrfbatch.sources import SOURCE_TYPES, Task, load_tasks, read_tasks, write_tasks
from mrfbatch.transport import TransportSettings

log = logging.getLogger("mrfbatch")

_POSITIVE_INTS = (
    "provider_batch_size",
    "rate_batch_size",
    "mem_mb",
    "runtime",
    "attempts",
    "threads_per_job",
    "max_value_mb",
)
_NON_NEGATIVE_INTS = ("retries",)
_NON_NEGATIVE_NUMBERS = ("retry_seconds",)
_POSITIVE_NUMBERS = ("timeout",)
_FILE_SOURCES = ("csv", "urls")


class ConfigError(UsageError):
    """A workflow config value is missing or not allowed."""


def check_config(config: Mapping[str, Any], command_line: Mapping[str, Any] | None = None) -> None:
    """Stop before any job when a config value is wrong, naming the key and what is allowed.

    `command_line` holds the values given with `--config`: Snakemake writes those into its log
    (.snakemake/log), so a URL with a query string, user name or fragment is refused there.
    """
    given = str((command_line or {}).get("input", ""))
    if "://" in given and redact_url(given) != given:
        raise ConfigError(
            "config key 'input': the URL has a query string, user name or fragment (a "
            "signature?) and was given with --config, which Snakemake writes into its log "
            "(.snakemake/log); put 'input: <URL>' in a YAML file and give it with "
            "--configfile FILE instead"
        )
    source = config.get("source")
    if source not in SOURCE_TYPES:
        shown = "missing" if source is None else repr(source)
        raise ConfigError(
            f"config key 'source' is {shown}; allowed values: {', '.join(SOURCE_TYPES)} "
            "(e.g. --config source=csv input=plans.csv)"
        )
    value = config.get("input")
    if value in (None, ""):
        raise ConfigError(
            "config key 'input' is missing: give the source file or URL, "
            "e.g. --config source=csv input=plans.csv"
        )
    text = str(value)
    is_url = "://" in text
    if source in _FILE_SOURCES and not Path(text).is_file():
        raise ConfigError(f"config key 'input': {source} file {text} does not exist")
    if source in ("index", "url") and not is_url and not Path(text).is_file():
        raise ConfigError(
            f"config key 'input': {text!r} is neither an http(s)/file URL nor an existing file"
        )
    for key in _POSITIVE_INTS + _NON_NEGATIVE_INTS:
        if key not in config:
            continue
        number = config[key]
        minimum = 0 if key in _NON_NEGATIVE_INTS else 1
        if not isinstance(number, int) or isinstance(number, bool) or number < minimum:
            raise ConfigError(
                f"config key {key!r} is {number!r}; allowed values: integers >= {minimum}"
            )
    for key in _NON_NEGATIVE_NUMBERS + _POSITIVE_NUMBERS:
        if key not in config:
            continue
        number = config[key]
        positive = key in _POSITIVE_NUMBERS
        if not _is_number(number) or number < 0 or (positive and number == 0):
            raise ConfigError(
                f"config key {key!r} is {number!r}; allowed values: numbers "
                f"{'> 0' if positive else '>= 0'}"
            )
    if config.get("engine", "fast") not in ENGINES:
        raise ConfigError(
            f"config key 'engine' is {config['engine']!r}; allowed values: {', '.join(ENGINES)}"
        )
    whitelist = config.get("cpt_whitelist")
    if whitelist not in (None, "") and not Path(str(whitelist)).is_file():
        raise ConfigError(f"config key 'cpt_whitelist': file {whitelist} does not exist")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_LOCK: IO[str] | None = None


def lock_output_dir(output_dir: str) -> None:
    """Hold an exclusive lock on `output_dir` for the life of this process.

    The kernel drops it when the process dies, even by SIGKILL, so a rerun never finds a stale
    lock (Snakemake's own lock files would need `--unlock` after a kill; the profiles turn them
    off and rely on this one instead).
    """
    global _LOCK
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    handle = open(Path(output_dir) / ".mrfbatch.lock", "a+", encoding="utf-8")  # noqa: SIM115
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
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    _LOCK = handle


def make_tasks(source: str, source_input: str, tasks_path: str, output_dir: str) -> list[Task]:
    """The checkpoint's body: normalize a source into the tasks TSV."""
    tasks = load_tasks(source, str(source_input))
    write_tasks(tasks, tasks_path, output_dir)
    log.info("%d tasks from %s source %s", len(tasks), source, redact_url(str(source_input)))
    return tasks


def tasks_job(
    source: str, source_input: str, tasks_path: str, output_dir: str, log_path: str
) -> int:
    """The checkpoint's job: make_tasks, logging to `log_path`; its exit status.

    An unusable source is exit status 1 with the reason in the log and one line on the
    console, not a traceback.
    """
    handlers = _log_to(log_path, echo=False, urls=[source_input])
    try:
        make_tasks(source, source_input, tasks_path, output_dir)
    except MrfError as exc:
        message = redact_text(str(exc), [source_input])
        log.error("%s", message)
        _say(f"[mrfbatch] no tasks: the {source} source is unusable: {message}")
        return 1
    finally:
        _stop_logging(handlers)
    return 0


@functools.lru_cache(maxsize=4)
def _tasks_by_id(path: str, mtime_ns: int) -> dict[str, Task]:
    return {task.network_id: task for task in read_tasks(path)}


def tasks_by_id(path: str) -> dict[str, Task]:
    """The tasks of a tasks TSV by network id (parsed once per version of the file).

    read_tasks refuses the file when an id is not a safe folder name, e.g. after an edit.
    """
    return _tasks_by_id(path, os.stat(path).st_mtime_ns)


def find_task(path: str, network_id: str) -> Task:
    """The task of `network_id` in the tasks TSV, or UsageError."""
    task = tasks_by_id(path).get(network_id)
    if task is None:
        raise UsageError(f"network id {network_id!r} is not in {path}")
    return task


def task_fingerprint(path: str, network_id: str) -> str:
    """What makes a task's outputs stale: its URL without query string, and its plans.

    Used as a rule parameter, so a new signature on the same file does not redo the work, and
    secrets in the query string never reach Snakemake's metadata.
    """
    task = find_task(path, network_id)
    return json.dumps([redact_url(task.url), list(task.plan_metadata)], sort_keys=True)


def run_task(
    tasks_path: str,
    network_id: str,
    log_path: str,
    status_copy: str,
    output_dir: str,
    cpt_whitelist: str | None = None,
    provider_batch_size: int = 50_000,
    rate_batch_size: int = 100_000,
    attempts: int = TransportSettings.attempts,
    retry_seconds: float = TransportSettings.retry_seconds,
    timeout: float = TransportSettings.read_timeout,
    engine: str = "fast",
    threads: int = 1,
    echo: bool = False,
    max_value_mb: int = DEFAULT_MAX_VALUE_MB,
) -> ExtractionResult:
    """An extraction job: run one task, log to `log_path`, keep a copy of its status.

    The copy lives beside the log because Snakemake deletes the declared outputs (status.json
    among them) of a failed job, and the manifest still has to say why it failed. It is written
    from the result, so it exists even when a full disk kept status.json from being written.
    """
    task = find_task(tasks_path, network_id)
    handlers = _log_to(log_path, echo, [task.url])
    try:
        result = run_extraction(
            task.url,
            output_dir,
            network_id=network_id,
            cpt_whitelist=cpt_whitelist or None,
            provider_batch_size=provider_batch_size,
            rate_batch_size=rate_batch_size,
            plan_metadata=list(task.plan_metadata),
            settings=TransportSettings(
                attempts=attempts, retry_seconds=retry_seconds, read_timeout=timeout
            ),
            engine=engine,
            threads=threads,
            max_value_mb=max_value_mb,
        )
    finally:
        _stop_logging(handlers)
    tmp = Path(status_copy).with_name(Path(status_copy).name + ".tmp")
    tmp.write_text(status_text(result), encoding="utf-8")
    os.replace(tmp, status_copy)
    _say(_one_line(result))
    return result


def _say(line: str) -> None:
    """One line to the console in a single write, so lines of jobs running at once never merge.

    `print` writes the text and its newline separately; another job's line can land between.
    """
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _log_to(path: str, echo: bool, urls: Iterable[str] = ()) -> list[logging.Handler]:
    """Send mrfbatch's log to `path` (and stderr), every URL and the secrets of `urls` redacted."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fmt = RedactingFormatter("%(asctime)s %(levelname)s %(message)s", urls)
    handlers: list[logging.Handler] = [logging.FileHandler(path, mode="w", encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    logger = logging.getLogger("mrfbatch")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return handlers


def _stop_logging(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        logging.getLogger("mrfbatch").removeHandler(handler)
        handler.close()


def _one_line(result: ExtractionResult) -> str:
    if result.ok:
        return (
            f"[mrfbatch] {result.network_id}: success, {result.items_matched:,} of "
            f"{result.items_seen:,} items, {result.rate_rows:,} rate rows, "
            f"{result.provider_rows:,} provider rows in {result.duration_seconds:.1f} s"
        )
    return f"[mrfbatch] {result.network_id}: FAILED: {result.error}"


def write_run_manifest(
    tasks_path: str,
    manifest_path: str,
    output_dir: str,
    log_dir: str,
    source_type: str,
    source_input: str,
) -> dict[str, Any]:
    """Build and write manifest.json from the tasks and whatever statuses exist."""
    has_tasks = Path(tasks_path).is_file()
    tasks = read_tasks(tasks_path) if has_tasks else []
    manifest = build_manifest(tasks, output_dir, log_dir, source_type, str(source_input))
    if not has_tasks:
        manifest["error"] = (
            f"the {source_type} source could not be turned into tasks; see {log_dir}/tasks.log "
            "and the Snakemake output above"
        )
    write_manifest(manifest, manifest_path)
    summary = manifest["summary"]
    _say(
        f"[mrfbatch] manifest {manifest_path}: {summary['successful']} successful, "
        f"{summary['failed']} failed, {summary['not_run']} not run"
    )
    return manifest
