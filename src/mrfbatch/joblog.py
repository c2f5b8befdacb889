"""What a workflow job writes besides its outputs: its log file and its lines on the console."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from mrfbatch.redact import RedactingFormatter


def say(line: str) -> None:
    """One line to the console in a single write, so lines of jobs running at once never merge.

    `print` writes the text and its newline separately; another job's line can land between.
    """
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def log_to(path: str, echo: bool, urls: Iterable[str] = ()) -> list[logging.Handler]:
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


def stop_logging(handlers: list[logging.Handler]) -> None:
    """Stop what `log_to` started."""
    for handler in handlers:
        logging.getLogger("mrfbatch").removeHandler(handler)
        handler.close()
