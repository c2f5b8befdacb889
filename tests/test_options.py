"""How one file is extracted (mrfbatch.options): checked settings, defaults written once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mrfbatch.config import load_schema
from mrfbatch.errors import UsageError
from mrfbatch.options import ExtractionOptions
from mrfbatch.transport import TransportSettings

ROOT = Path(__file__).resolve().parents[1]


def test_the_workflows_defaults_are_the_options_defaults() -> None:
    """config/schema.yaml's defaults and ExtractionOptions' must not drift apart."""
    defaults = {key: rules.get("default") for key, rules in load_schema()["properties"].items()}
    options = ExtractionOptions()
    assert ExtractionOptions.from_config({**defaults, "input": "x"}) == options
    assert (options.transport.attempts, options.transport.retry_seconds) == (
        defaults["attempts"],
        defaults["retry_seconds"],
    )
    assert options.transport.read_timeout == defaults["timeout"]


def test_from_config_takes_each_key() -> None:
    config = {
        "provider_batch_size": 7,
        "rate_batch_size": 9,
        "format": "csv",
        "engine": "reference",
        "validate": "full",
        "max_value_mb": 3,
        "attempts": 2,
        "retry_seconds": 5,
        "timeout": 11,
    }
    assert ExtractionOptions.from_config(config, threads=2) == ExtractionOptions(
        provider_batch_size=7,
        rate_batch_size=9,
        output_format="csv",
        engine="reference",
        threads=2,
        validate="full",
        max_value_mb=3,
        transport=TransportSettings(attempts=2, retry_seconds=5, read_timeout=11),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provider_batch_size": 0}, r"^provider_batch_size must be a positive integer, got 0$"),
        ({"rate_batch_size": True}, r"^rate_batch_size must be a positive integer, got True$"),
        ({"threads": 1.5}, r"^threads must be a positive integer, got 1\.5$"),
        ({"max_value_mb": 0}, r"^max_value_mb must be a positive integer, got 0$"),
        ({"output_format": "xlsx"}, r"^output format 'xlsx' is not one of: parquet, csv$"),
        ({"engine": "turbo"}, r"^engine 'turbo' is not one of: fast, reference$"),
        ({"validate": "some"}, r"^validate 'some' is not one of: structural, full$"),
    ],
)
def test_options_refuse_a_bad_value(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ExtractionOptions(**change)
    with pytest.raises(UsageError, match=message):
        ExtractionOptions().replace(**change)
