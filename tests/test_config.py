"""The workflow config checked against config/schema.yaml: unknown keys, values out of range,
defaults, files that must exist, signed URLs on the command line.

Expected messages are written by hand from config.py's docstrings and the schema's ranges;
configs are small dicts, checked against the schema in this checkout.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrfbatch.config import (
    ConfigError,
    check_config,
    config_file_problem,
    describe,
    load_schema,
    workflow_root,
)
from mrfbatch.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text("utf-8"))
KEYS = ", ".join(SCHEMA["properties"])  # the order the schema lists them in
DEFAULTS = {key: rules.get("default") for key, rules in SCHEMA["properties"].items()}
COMMAND_LINE_URL = (
    "config key 'input': the URL has a query string, user name or fragment (a signature?) and "
    "was given with --config, which Snakemake writes into its log (.snakemake/log); put "
    "'input: <URL>' in a YAML file and give it with --configfile FILE instead"
)


def exactly(message: str) -> str:
    """A `match=` pattern for the whole message, and nothing else."""
    return f"^{re.escape(message)}$"


# Unknown keys


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "cpt_whitelst",
            "unknown config key 'cpt_whitelst'; did you mean 'cpt_whitelist'?",
            id="misspelled",
        ),
        pytest.param(
            "outputdir",
            "unknown config key 'outputdir'; did you mean 'output_dir'?",
            id="underscore-left-out",
        ),
        pytest.param(
            "Output_Dir",
            "unknown config key 'Output_Dir'; did you mean 'output_dir'?",
            id="case",
        ),
        pytest.param(
            "RETRIES", "unknown config key 'RETRIES'; did you mean 'retries'?", id="upper-case"
        ),
        pytest.param(
            "verbose",
            "unknown config key 'verbose'; did you mean 'console=verbose'?",
            id="alias-verbose",
        ),
        pytest.param(
            "Quiet",
            "unknown config key 'Quiet'; did you mean 'console=quiet'?",
            id="alias-case",
        ),
        pytest.param(
            "workers",
            "unknown config key 'workers'; did you mean \"snakemake's --cores N\"?",
            id="alias-workers",
        ),
        pytest.param(
            "codes",
            "unknown config key 'codes'; did you mean 'cpt_whitelist'?",
            id="alias-codes",
        ),
        pytest.param(
            "threads",
            "unknown config key 'threads'; did you mean 'threads_per_job'?",
            id="alias-threads",
        ),
        pytest.param(
            "zzz",
            f"unknown config key 'zzz'; the keys are (see config/config.yaml): {KEYS}",
            id="no-close-match",
        ),
        pytest.param(
            1,
            f"unknown config key 1; the keys are (see config/config.yaml): {KEYS}",
            id="yaml-integer-key",
        ),
    ],
)
def test_check_config_refuses_an_unknown_key(key: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"input": "plans.csv", key: "x"}, SCHEMA, check_files=False)


def test_check_config_lists_every_unknown_key_in_one_message() -> None:
    config = {"cpt_whitelst": "codes.txt", "zzz": 1, "input": "plans.csv", "verbose": True}
    message = (
        "unknown config keys 'cpt_whitelst' (did you mean 'cpt_whitelist'?), 'zzz', "
        "'verbose' (did you mean 'console=verbose'?); the keys are (see config/config.yaml): "
        f"{KEYS}"
    )
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config(config, SCHEMA, check_files=False)


def test_check_config_names_an_unknown_key_before_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module docstring's example: plans.csv does not exist, the misspelling is said first."""
    monkeypatch.chdir(tmp_path)
    message = "unknown config key 'cpt_whitelst'; did you mean 'cpt_whitelist'?"
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"input": "plans.csv", "cpt_whitelst": "codes.txt"}, SCHEMA)


def test_check_config_names_an_unknown_key_before_a_missing_input() -> None:
    with pytest.raises(ConfigError, match="^unknown config key 'outputdir'"):
        check_config({"outputdir": "out"}, SCHEMA)


# Values outside the schema's ranges


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param(
            "provider_batch_size",
            0,
            "config key 'provider_batch_size' is 0; allowed values: integers >= 1",
            id="provider_batch_size-0",
        ),
        pytest.param(
            "rate_batch_size",
            -5,
            "config key 'rate_batch_size' is -5; allowed values: integers >= 1",
            id="rate_batch_size-negative",
        ),
        pytest.param(
            "max_value_mb",
            0,
            "config key 'max_value_mb' is 0; allowed values: integers >= 1",
            id="max_value_mb-0",
        ),
        pytest.param(
            "attempts",
            0,
            "config key 'attempts' is 0; allowed values: integers >= 1",
            id="attempts-0",
        ),
        pytest.param(
            "mem_mb", 0, "config key 'mem_mb' is 0; allowed values: integers >= 1", id="mem_mb-0"
        ),
        pytest.param(
            "runtime",
            0,
            "config key 'runtime' is 0; allowed values: integers >= 1",
            id="runtime-0",
        ),
        pytest.param(
            "file_types",
            "oon",
            "config key 'file_types' is 'oon'; allowed values: in_network, allowed_amounts, both",
            id="file_types-unknown",
        ),
        pytest.param(
            "retries",
            -1,
            "config key 'retries' is -1; allowed values: integers >= 0",
            id="retries-negative",
        ),
        pytest.param(
            "retry_seconds",
            -0.5,
            "config key 'retry_seconds' is -0.5; allowed values: numbers >= 0",
            id="retry_seconds-negative",
        ),
        pytest.param(
            "timeout", 0, "config key 'timeout' is 0; allowed values: numbers > 0", id="timeout-0"
        ),
        pytest.param(
            "timeout",
            -1.5,
            "config key 'timeout' is -1.5; allowed values: numbers > 0",
            id="timeout-negative",
        ),
        pytest.param(
            "threads_per_job",
            0,
            "config key 'threads_per_job' is 0; allowed values: integers from 1 to 2",
            id="threads_per_job-0",
        ),
        pytest.param(
            "threads_per_job",
            3,
            "config key 'threads_per_job' is 3; allowed values: integers from 1 to 2",
            id="threads_per_job-3",
        ),
        pytest.param(
            "mem_mb",
            2.5,
            "config key 'mem_mb' is 2.5; allowed values: integers >= 1",
            id="fraction-for-integer",
        ),
        pytest.param(
            "retries",
            True,
            "config key 'retries' is True; allowed values: integers >= 0",
            id="bool-for-integer",
        ),
        pytest.param(
            "timeout",
            True,
            "config key 'timeout' is True; allowed values: numbers > 0",
            id="bool-for-number",
        ),
        pytest.param(
            "timeout",
            "120",
            "config key 'timeout' is '120'; allowed values: numbers > 0",
            id="string-for-number",
        ),
        pytest.param(
            "mem_mb",
            "2000",
            "config key 'mem_mb' is '2000'; allowed values: integers >= 1",
            id="string-for-integer",
        ),
        pytest.param(
            "retry_seconds",
            math.inf,
            "config key 'retry_seconds' is inf; allowed values: numbers >= 0",
            id="infinity",
        ),
        pytest.param(
            "timeout",
            math.inf,
            "config key 'timeout' is inf; allowed values: numbers > 0",
            id="infinity-timeout",
        ),
        pytest.param(
            "retry_seconds",
            -math.inf,
            "config key 'retry_seconds' is -inf; allowed values: numbers >= 0",
            id="minus-infinity",
        ),
        pytest.param(
            "retry_seconds",
            math.nan,
            "config key 'retry_seconds' is nan; allowed values: numbers >= 0",
            id="nan",
        ),
        pytest.param(
            "timeout",
            math.nan,
            "config key 'timeout' is nan; allowed values: numbers > 0",
            id="nan-timeout",
        ),
        pytest.param(
            "mem_mb",
            math.inf,
            "config key 'mem_mb' is inf; allowed values: integers >= 1",
            id="infinity-for-integer",
        ),
        pytest.param(
            "source",
            "cvs",
            "config key 'source' is 'cvs'; allowed values: csv, index, urls, url "
            "(did you mean 'csv'?)",
            id="source-close",
        ),
        pytest.param(
            "source",
            "CSV",
            "config key 'source' is 'CSV'; allowed values: csv, index, urls, url "
            "(did you mean 'csv'?)",
            id="source-case",
        ),
        pytest.param(
            "source",
            "ftp",
            "config key 'source' is 'ftp'; allowed values: csv, index, urls, url",
            id="source-no-close-value",
        ),
        pytest.param(
            "engine",
            "fats",
            "config key 'engine' is 'fats'; allowed values: fast, reference (did you mean 'fast'?)",
            id="engine-close",
        ),
        pytest.param(
            "engine",
            1,
            "config key 'engine' is 1; allowed values: fast, reference",
            id="engine-not-text",
        ),
        pytest.param(
            "format",
            "xlsx",
            "config key 'format' is 'xlsx'; allowed values: parquet, csv",
            id="format-no-close-value",
        ),
        pytest.param(
            "console",
            "verbos",
            "config key 'console' is 'verbos'; allowed values: quiet, normal, verbose "
            "(did you mean 'verbose'?)",
            id="console-close",
        ),
        pytest.param(
            "console",
            "loud",
            "config key 'console' is 'loud'; allowed values: quiet, normal, verbose",
            id="console-no-close-value",
        ),
        pytest.param(
            "output_dir",
            "",
            "config key 'output_dir' is ''; allowed values: non-empty text on one line",
            id="output_dir-empty",
        ),
        pytest.param(
            "output_dir",
            "res\nults",
            "config key 'output_dir' is 'res\\nults'; allowed values: non-empty text on one line",
            id="output_dir-newline",
        ),
        pytest.param(
            "output_dir",
            "\nresults",
            "config key 'output_dir' is '\\nresults'; allowed values: non-empty text on one line",
            id="output_dir-first-newline",
        ),
        pytest.param(
            "output_dir",
            "results\n",
            "config key 'output_dir' is 'results\\n'; allowed values: non-empty text on one line",
            id="output_dir-final-newline",
        ),
        pytest.param(
            "output_dir",
            7,
            "config key 'output_dir' is 7; allowed values: non-empty text on one line",
            id="output_dir-not-text",
        ),
        pytest.param(
            "log_dir",
            "",
            "config key 'log_dir' is ''; allowed values: non-empty text on one line or null",
            id="log_dir-empty",
        ),
        pytest.param(
            "log_dir",
            "logs\n",
            "config key 'log_dir' is 'logs\\n'; allowed values: non-empty text on one line or null",
            id="log_dir-final-newline",
        ),
        pytest.param(
            "cpt_whitelist",
            5,
            "config key 'cpt_whitelist' is 5; allowed values: non-empty text or null",
            id="cpt_whitelist-not-text",
        ),
        pytest.param(
            "cpt_whitelist",
            "",
            "config key 'cpt_whitelist' is ''; allowed values: non-empty text or null",
            id="cpt_whitelist-empty",
        ),
        pytest.param(
            "output_dir",
            "results\tx",
            "config key 'output_dir' is 'results\\tx'; allowed values: non-empty text on one line",
            id="output_dir-tab",
        ),
    ],
)
def test_check_config_refuses_a_value_outside_the_schema(
    key: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"input": "plans.csv", key: value}, SCHEMA, check_files=False)


def test_check_config_refuses_an_input_that_is_not_text() -> None:
    with pytest.raises(
        ConfigError, match=exactly("config key 'input' is 5; allowed values: non-empty text")
    ):
        check_config({"input": 5}, SCHEMA, check_files=False)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retries", 0),
        ("retry_seconds", 0),
        ("retry_seconds", 0.5),
        ("timeout", 0.001),
        ("timeout", 30),
        ("threads_per_job", 1),
        ("threads_per_job", 2),
        ("attempts", 1),
        ("provider_batch_size", 1),
        ("source", "url"),
        ("engine", "reference"),
        ("format", "csv"),
        ("console", "quiet"),
        ("output_dir", "results/run 2"),
        ("log_dir", "logs"),
    ],
)
def test_check_config_keeps_a_value_at_the_edge_of_its_range(key: str, value: Any) -> None:
    settings = check_config({"input": "plans.csv", key: value}, SCHEMA, check_files=False)
    assert settings[key] == value
    assert type(settings[key]) is type(value)


# describe


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"type": "integer", "minimum": 1}, "integers >= 1"),
        ({"type": "integer", "minimum": 0}, "integers >= 0"),
        ({"type": "integer", "minimum": 1, "maximum": 2}, "integers from 1 to 2"),
        ({"type": "integer", "maximum": 10}, "integers <= 10"),
        ({"type": "integer"}, "integers"),
        ({"type": "number", "minimum": 0}, "numbers >= 0"),
        ({"type": "number", "minimum": 0.5}, "numbers >= 0.5"),
        ({"type": "number", "exclusiveMinimum": 0}, "numbers > 0"),
        ({"type": "number"}, "numbers"),
        ({"type": "string", "enum": ["csv", "index", "urls", "url"]}, "csv, index, urls, url"),
        ({"type": "integer", "enum": [1, 2, 4]}, "1, 2, 4"),
        ({"type": "string"}, "text"),
        ({"type": "string", "minLength": 1}, "non-empty text"),
        ({"type": "string", "pattern": "^[^\\n]+$"}, "text on one line"),
        ({"type": "string", "minLength": 1, "pattern": "^[^\\n]+$"}, "non-empty text on one line"),
        ({"type": ["string", "null"]}, "text or null"),
        ({"type": ["null", "string"]}, "text or null"),
        ({"type": ["integer", "null"], "minimum": 1}, "integers >= 1 or null"),
        ({"type": "boolean"}, "boolean"),
        ({"type": ["boolean", "integer"], "minimum": 0}, "boolean or integers >= 0"),
    ],
)
def test_describe_words_each_kind_of_property(rules: dict[str, Any], expected: str) -> None:
    assert describe(rules) == expected


def test_describe_words_every_property_of_the_schema() -> None:
    expected = {
        "source": "csv, index, urls, url",
        "input": "non-empty text",
        "file_types": "in_network, allowed_amounts, both",
        "output_dir": "non-empty text on one line",
        "log_dir": "non-empty text on one line or null",
        "cpt_whitelist": "non-empty text or null",
        "provider_batch_size": "integers >= 1",
        "rate_batch_size": "integers >= 1",
        "format": "parquet, csv",
        "engine": "fast, reference",
        "validate": "structural, full",
        "max_value_mb": "integers >= 1",
        "threads_per_job": "integers from 1 to 2",
        "retries": "integers >= 0",
        "attempts": "integers >= 1",
        "retry_seconds": "numbers >= 0",
        "timeout": "numbers > 0",
        "mem_mb": "integers >= 1",
        "runtime": "integers >= 1",
        "console": "quiet, normal, verbose",
    }
    described = {key: describe(rules) for key, rules in SCHEMA["properties"].items()}
    assert described == expected


# Defaults


def test_check_config_fills_in_every_default() -> None:
    settings = check_config({"input": "plans.csv"}, SCHEMA, check_files=False)
    assert settings == {**DEFAULTS, "input": "plans.csv"}
    # A few by hand, so a default dropped from the schema is noticed here too.
    assert settings["source"] == "csv"
    assert settings["output_dir"] == "results"
    assert settings["log_dir"] is None
    assert settings["cpt_whitelist"] is None
    assert settings["threads_per_job"] == 1
    assert settings["retries"] == 0
    assert settings["timeout"] == 120
    assert settings["console"] == "normal"


@pytest.mark.parametrize("key", [key for key in SCHEMA["properties"] if key != "input"])
def test_check_config_takes_none_as_the_default(key: str) -> None:
    settings = check_config({"input": "plans.csv", key: None}, SCHEMA, check_files=False)
    assert settings[key] == SCHEMA["properties"][key]["default"]


def test_check_config_keeps_the_given_values_over_the_defaults() -> None:
    config = {"input": "plans.csv", "source": "urls", "output_dir": "out", "retries": 3}
    settings = check_config(config, SCHEMA, check_files=False)
    assert settings == {**DEFAULTS, **config}


def test_check_config_does_not_change_the_given_config() -> None:
    config = {"input": "plans.csv", "mem_mb": 4000.0, "retries": None}
    check_config(config, SCHEMA, check_files=False)
    assert config == {"input": "plans.csv", "mem_mb": 4000.0, "retries": None}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("mem_mb", 4000.0, 4000), ("threads_per_job", 2.0, 2), ("retries", 0.0, 0)],
)
def test_check_config_makes_an_integral_float_an_int(key: str, value: float, expected: int) -> None:
    settings = check_config({"input": "plans.csv", key: value}, SCHEMA, check_files=False)
    assert settings[key] == expected
    assert type(settings[key]) is int


@pytest.mark.parametrize("value", [30.0, 30.5])
def test_check_config_keeps_a_float_for_a_number(value: float) -> None:
    settings = check_config({"input": "plans.csv", "timeout": value}, SCHEMA, check_files=False)
    assert settings["timeout"] == value
    assert type(settings["timeout"]) is float


# Files and the required input


@pytest.mark.parametrize("config", [{}, {"input": None}, {"input": ""}, {"source": "url"}])
def test_check_config_refuses_a_missing_input(config: dict[str, Any]) -> None:
    message = (
        "config key 'input' is missing: give the source file or URL, "
        "e.g. --config source=csv input=plans.csv"
    )
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config(config, SCHEMA)


@pytest.mark.parametrize("source", ["csv", "urls"])
def test_check_config_refuses_a_missing_input_file(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    message = f"config key 'input': {source} file plans.txt does not exist"
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"source": source, "input": "plans.txt"}, SCHEMA)


def test_check_config_refuses_a_url_for_a_csv_source() -> None:
    url = "https://cdn.example/plans.csv"
    message = f"config key 'input': csv file {url} does not exist"
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"source": "csv", "input": url}, SCHEMA)


@pytest.mark.parametrize("source", ["index", "url"])
def test_check_config_refuses_an_input_neither_url_nor_file(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    message = "config key 'input': 'toc.json' is neither an http(s)/file URL nor an existing file"
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"source": source, "input": "toc.json"}, SCHEMA)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("csv", "plans.csv"),
        ("urls", "urls.txt"),
        ("index", "toc.json"),
        ("url", "in-network.json.gz"),
        ("index", "https://cdn.example/toc.json"),
        ("url", "http://127.0.0.1:8080/in-network.json.gz"),
        ("url", "file:///data/in-network.json"),
    ],
)
def test_check_config_accepts_an_existing_file_or_a_url(
    source: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if "://" not in name:
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    settings = check_config({"source": source, "input": name}, SCHEMA)
    assert (settings["source"], settings["input"]) == (source, name)


def test_check_config_refuses_a_missing_whitelist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans.csv").write_text("file_url\n", encoding="utf-8")
    message = "config key 'cpt_whitelist': file codes.txt does not exist"
    with pytest.raises(ConfigError, match=exactly(message)):
        check_config({"input": "plans.csv", "cpt_whitelist": "codes.txt"}, SCHEMA)


def test_check_config_accepts_an_existing_whitelist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans.csv").write_text("file_url\n", encoding="utf-8")
    (tmp_path / "codes.txt").write_text("27447\n", encoding="utf-8")
    settings = check_config({"input": "plans.csv", "cpt_whitelist": "codes.txt"}, SCHEMA)
    assert settings["cpt_whitelist"] == "codes.txt"


def test_check_config_without_file_checks_needs_no_input_and_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = {"source": "csv", "cpt_whitelist": "codes.txt"}
    settings = check_config(config, SCHEMA, check_files=False)
    assert settings == {**DEFAULTS, **config, "input": None}
    settings = check_config({**config, "input": "plans.csv"}, SCHEMA, check_files=False)
    assert settings["input"] == "plans.csv"


def test_check_config_without_file_checks_still_checks_values() -> None:
    with pytest.raises(ConfigError, match=r"^config key 'retries' is -1;"):
        check_config({"retries": -1}, SCHEMA, check_files=False)


# Signed URLs on the command line

SECRET_URLS = [
    pytest.param(
        "https://cdn.example/in-network.json.gz?Expires=1700000000&Signature=abcdef",
        id="query-string",
    ),
    pytest.param("https://user:secret@cdn.example/in-network.json.gz", id="user-and-password"),
    pytest.param("https://user@cdn.example/in-network.json.gz", id="user-name"),
    pytest.param("https://cdn.example/in-network.json.gz#token=abcdef", id="fragment"),
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_check_config_refuses_a_secret_url_given_with_config(url: str) -> None:
    with pytest.raises(ConfigError, match=exactly(COMMAND_LINE_URL)):
        check_config({"source": "url", "input": url}, SCHEMA, command_line={"input": url})


@pytest.mark.parametrize("url", SECRET_URLS)
def test_check_config_refuses_a_secret_url_given_with_config_without_file_checks(
    url: str,
) -> None:
    with pytest.raises(ConfigError, match=exactly(COMMAND_LINE_URL)):
        check_config(
            {"source": "url", "input": url}, SCHEMA, command_line={"input": url}, check_files=False
        )


@pytest.mark.parametrize("url", SECRET_URLS)
def test_check_config_accepts_a_secret_url_given_with_configfile(url: str) -> None:
    settings = check_config({"source": "url", "input": url}, SCHEMA)
    assert settings["input"] == url
    other_keys = {"source": "url", "retries": 1}  # --config without input, --configfile with it
    settings = check_config({"input": url, **other_keys}, SCHEMA, command_line=other_keys)
    assert settings["input"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/in-network.json.gz",
        "http://127.0.0.1:8080/files/in%20network.json",
        "file:///data/in-network.json",
        "HTTPS://cdn.example/in-network.json.gz",  # a scheme's case is no secret
    ],
)
def test_check_config_accepts_a_plain_url_given_with_config(url: str) -> None:
    settings = check_config({"source": "url", "input": url}, SCHEMA, command_line={"input": url})
    assert settings["input"] == url


# The schema and config/config.yaml

_DOCUMENTED = re.compile(r"# ([a-z_]+): (\S.*)")


def test_schema_refuses_keys_it_does_not_list() -> None:
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["type"] == "object"


def test_schema_gives_a_default_in_range_for_every_optional_key() -> None:
    from jsonschema import Draft202012Validator

    required = set(SCHEMA["required"])
    assert required == {"input"}
    for key, rules in SCHEMA["properties"].items():
        if key in required:
            assert "default" not in rules, key
            continue
        assert "default" in rules, key
        assert Draft202012Validator(rules).is_valid(rules["default"]), key
        assert "description" in rules, key


def test_config_yaml_documents_every_schema_key_with_its_default() -> None:
    lines = (ROOT / "config" / "config.yaml").read_text("utf-8").splitlines()
    # The only active line: input is required, and has no default to show.
    assert yaml.safe_load("\n".join(lines)) == {"input": None}
    assert "input: null" in lines
    assert lines[lines.index("input: null") - 1].startswith("# ")

    documented: dict[str, Any] = {}
    for number, line in enumerate(lines):
        match = _DOCUMENTED.fullmatch(line)
        if match is None:
            continue
        key, value = match.groups()
        assert key not in documented, f"{key} documented twice"
        documented[key] = yaml.safe_load(value)
        # A comment says what the key (or the run of keys it heads) is for.
        above = number - 1
        while above >= 0 and _DOCUMENTED.fullmatch(lines[above]):
            above -= 1
        assert above >= 0, key
        assert lines[above].startswith("# "), f"{key}: no comment line above it"
    expected = {key: rules.get("default") for key, rules in SCHEMA["properties"].items()}
    del expected["input"]
    assert documented == expected


# workflow_root and load_schema


def test_workflow_root_is_the_checkout_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRFBATCH_WORKFLOW", raising=False)
    assert workflow_root() == ROOT


def test_workflow_root_ignores_an_empty_mrfbatch_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRFBATCH_WORKFLOW", "")
    assert workflow_root() == ROOT


def test_workflow_root_follows_mrfbatch_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Snakefile").write_text("", encoding="utf-8")
    monkeypatch.setenv("MRFBATCH_WORKFLOW", str(tmp_path))
    assert workflow_root() == tmp_path


@pytest.mark.parametrize("snakefile_is_folder", [False, True])
def test_workflow_root_without_a_snakefile_is_a_usage_error(
    snakefile_is_folder: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if snakefile_is_folder:
        (tmp_path / "Snakefile").mkdir()
    monkeypatch.setenv("MRFBATCH_WORKFLOW", str(tmp_path))
    message = (
        f"no Snakefile in {tmp_path}: run from a checkout of mrfbatch (pip install -e .) or set "
        "MRFBATCH_WORKFLOW to the folder that holds the Snakefile"
    )
    with pytest.raises(UsageError, match=exactly(message)):
        workflow_root()


def test_load_schema_reads_the_checkout_schema_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRFBATCH_WORKFLOW", raising=False)
    assert load_schema() == SCHEMA


def test_load_schema_follows_mrfbatch_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Snakefile").write_text("", encoding="utf-8")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "schema.yaml").write_text(
        "type: object\nproperties:\n  only: {type: integer, default: 3}\n", encoding="utf-8"
    )
    monkeypatch.setenv("MRFBATCH_WORKFLOW", str(tmp_path))
    schema = load_schema()
    assert schema == {"type": "object", "properties": {"only": {"type": "integer", "default": 3}}}
    assert check_config({}, schema, check_files=False) == {"only": 3}


def test_load_schema_without_a_snakefile_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "schema.yaml").write_text("type: object\n", encoding="utf-8")
    monkeypatch.setenv("MRFBATCH_WORKFLOW", str(tmp_path))
    with pytest.raises(UsageError, match=f"^no Snakefile in {re.escape(str(tmp_path))}: "):
        load_schema()


def test_load_schema_reads_a_given_path_wherever_the_workflow_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRFBATCH_WORKFLOW", str(tmp_path))  # no Snakefile: not looked at
    assert load_schema(ROOT / "config" / "schema.yaml") == SCHEMA
    assert load_schema(str(ROOT / "config" / "schema.yaml")) == SCHEMA


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError)


SNAKEMAKE_YAML_ERROR = (
    "WorkflowError: Config file is not valid JSON or YAML. In case of YAML, make sure to not "
    "mix whitespace and tab indentation."
)


@pytest.mark.parametrize(
    "flags",
    [
        ["--configfile", "{good}", "{bad}", "--cores", "2"],
        ["--cores", "2", "--configfiles", "{bad}"],
        ["--configfile={bad}", "--config", "source=csv"],
    ],
)
def test_config_file_problem_names_the_file_and_line(tmp_path: Path, flags: list[str]) -> None:
    """Snakemake's message names neither; the file given that YAML cannot read, and where."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("source: csv\n")
    bad.write_text("source: csv\ninput: plans.csv\n  cpt_whitelist: codes.txt\n")
    argv = [f.format(good=good, bad=bad) for f in flags]
    assert config_file_problem(SNAKEMAKE_YAML_ERROR, argv) == (
        f"config file {bad} is not valid YAML at line 3, column 16: mapping values are not "
        "allowed here"
    )


def test_config_file_problem_leaves_other_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    assert config_file_problem("MissingInputException: no file", ["--configfile", str(bad)]) is None
    # every file given parses (Snakemake failed on something else): nothing to add
    good = tmp_path / "good.yaml"
    good.write_text("source: csv\n")
    assert config_file_problem(SNAKEMAKE_YAML_ERROR, ["--configfile", str(good)]) is None
