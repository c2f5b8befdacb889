"""How one file is extracted: every setting and its default, written once.

The command line, the workflow and execute_batch each build one `ExtractionOptions` and pass it
whole to `run_extraction`. The workflow's config keys of the same names (config/schema.yaml)
default to the same values; a test holds the two equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mrfbatch.engines import DEFAULT_MAX_VALUE_MB, ENGINES, VALIDATIONS, Engine
from mrfbatch.errors import UsageError
from mrfbatch.layout import FORMATS
from mrfbatch.transport import TransportSettings


@dataclass(frozen=True)
class ExtractionOptions:
    """Batch sizes, output format, engine, threads, the value limit and the transport's
    patience; invalid values raise UsageError when the options are made."""

    provider_batch_size: int = 50_000  # rows per row group of providers.parquet
    rate_batch_size: int = 100_000  # rows per row group of rates.parquet
    output_format: str = "parquet"  # or "csv"
    engine: str | Engine = "fast"  # "fast", "reference", or an engine object (tests)
    threads: int = 1  # 2: the fast engine inflates gzip in a second thread
    # The fast engine checks only the structure of what it skips unread ("structural"), or
    # every byte ("full"); tables are the same either way on valid JSON.
    validate: str = "structural"
    # The largest in_network item or provider reference read (MB of 2**20 bytes): a larger one
    # fails the extraction; a larger remote provider-reference file is skipped. An engine
    # object's own limit counts instead.
    max_value_mb: int = DEFAULT_MAX_VALUE_MB
    transport: TransportSettings = field(default_factory=TransportSettings)

    def __post_init__(self) -> None:
        for name in ("provider_batch_size", "rate_batch_size", "threads", "max_value_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.output_format not in FORMATS:
            raise UsageError(
                f"output format {self.output_format!r} is not one of: {', '.join(FORMATS)}"
            )
        if isinstance(self.engine, str) and self.engine not in ENGINES:
            raise UsageError(f"engine {self.engine!r} is not one of: {', '.join(ENGINES)}")
        if self.validate not in VALIDATIONS:
            raise UsageError(f"validate {self.validate!r} is not one of: {', '.join(VALIDATIONS)}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], threads: int = 1) -> ExtractionOptions:
        """The options a workflow config (checked against config/schema.yaml) asks for."""
        return cls(
            provider_batch_size=config["provider_batch_size"],
            rate_batch_size=config["rate_batch_size"],
            output_format=config["format"],
            engine=config["engine"],
            threads=threads,
            validate=config["validate"],
            max_value_mb=config["max_value_mb"],
            transport=TransportSettings(
                attempts=config["attempts"],
                retry_seconds=config["retry_seconds"],
                read_timeout=config["timeout"],
            ),
        )

    def replace(self, **changes: Any) -> ExtractionOptions:
        """These options with some changed (checked again)."""
        return dataclasses.replace(self, **changes)
