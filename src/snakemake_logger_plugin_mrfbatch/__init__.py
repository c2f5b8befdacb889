"""Snakemake logger plugin `mrfbatch`: the workflow's console (see mrfbatch.console).

The profiles turn it on (`logger: [mrfbatch]`). It takes the place of Snakemake's own console
output (Snakemake's full log still goes to .snakemake/log/); `--printshellcmds`, `--verbose`
or `--config console=verbose` bring Snakemake's job blocks back beside mrfbatch's lines. Its
name makes Snakemake find it: an installed package called `snakemake_logger_plugin_<name>`.
"""

from __future__ import annotations

import logging
import sys

from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter
from snakemake.settings.enums import Quietness
from snakemake_interface_logger_plugins.base import LogHandlerBase

from mrfbatch.console import Console, attach


class LogHandler(LogHandlerBase):
    """Hands every record of the run to mrfbatch's console."""

    def __post_init__(self) -> None:
        settings = self.common_settings
        stream = sys.stdout if settings.stdout else sys.stderr
        snakemakes = ColorizingTextHandler(
            nocolor=settings.nocolor,
            stream=stream,
            formatter=DefaultFormatter(settings.quiet, settings.show_failed_logs),
            filter=DefaultFilter(
                settings.quiet,
                settings.debug_dag,
                settings.verbose,
                settings.dryrun,
                settings.printshellcmds,
            ),
        )
        self.console = attach(
            Console(
                stream=stream,
                fallback=snakemakes.handle,
                verbose=bool(settings.verbose or settings.printshellcmds),
                quiet=Quietness.ALL in (settings.quiet or ()),
                dryrun=bool(settings.dryrun),
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        self.console.handle(record)

    def close(self) -> None:
        self.console.stop()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False
