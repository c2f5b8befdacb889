"""What a workflow job writes besides its outputs (its log file, its lines on the console), and
how it ends on Ctrl-C."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec

from mrfbatch.redact import RedactingFormatter

P = ParamSpec("P")
INTERRUPTED = 130  # the exit status of a job stopped by Ctrl-C, as a shell gives it


def quiet_on_ctrl_c(job: Callable[P, int]) -> Callable[P, int]:
    """A job's body that Ctrl-C, or SIGTERM (Snakemake stopping, a scheduler's time limit),
    ends with exit status INTERRUPTED and no traceback on the console: the console says the
    run was interrupted, the job's status what it had done."""

    @functools.wraps(job)
    def body(*args: P.args, **kwargs: P.kwargs) -> int:
        main = threading.current_thread() is threading.main_thread()  # signals go there only
        previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
        try:
            return job(*args, **kwargs)
        except KeyboardInterrupt:
            return INTERRUPTED
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    return body


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # where the job is: it ends as after Ctrl-C


def say(line: str) -> None:
    """One line to the console in a single write, so lines of jobs running at once never merge.

    `print` writes the text and its newline separately; another job's line can land between.
    """
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class LogFile(logging.FileHandler):
    """A job's log file that the job outlives: when it cannot be written (a full disk), its
    lines are lost without a traceback for each on the console, and the job goes on; its
    status.json, or its console line when even that cannot be written, says what happened."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)  # a bug (a bad format string): shown as usual

    def close(self) -> None:
        with contextlib.suppress(OSError):  # its last lines could not be written
            super().close()


def log_to(path: str, echo: bool, urls: Iterable[str] = ()) -> list[logging.Handler]:
    """Send mrfbatch's log to `path` (and stderr), every URL and the secrets of `urls` redacted."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fmt = RedactingFormatter("%(asctime)s %(levelname)s %(message)s", urls)
    handlers: list[logging.Handler] = [LogFile(path, mode="w", encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    logger = logging.getLogger("mrfbatch")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return handlers


def stop_logging(handlers: list[logging.Handler]) -> None:
    """Stop what `log_to` started."""
    logger = logging.getLogger("mrfbatch")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = not logger.handlers
