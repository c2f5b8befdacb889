"""The workflow's configuration: checked against config/schema.yaml before any job runs.

The schema is the one place for every key's type, range and default. This module adds what
a schema cannot say: a "did you mean" for a misspelled key or value, files that must exist,
finite numbers, and secrets that must not be given on Snakemake's command line.

    schema = load_schema()
    settings = check_config({"input": "plans.csv", "cpt_whitelst": "codes.txt"}, schema)
    # ConfigError: unknown config key 'cpt_whitelst'; did you mean 'cpt_whitelist'?
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mrfbatch.errors import UsageError
from mrfbatch.redact import redact_url

FILE_SOURCES = ("csv", "urls")  # sources whose input must be a local file

# Words people reach for that are no key's misspelling: where the setting really is.
_ALIASES = {
    "verbose": "console=verbose",
    "quiet": "console=quiet",
    "codes": "cpt_whitelist",
    "billing_codes": "cpt_whitelist",
    "whitelist": "cpt_whitelist",
    "cores": "snakemake's --cores N",
    "workers": "snakemake's --cores N",
    "jobs": "snakemake's --cores N",
    "threads": "threads_per_job",
}


class ConfigError(UsageError):
    """A workflow config key is unknown, or its value is missing or not allowed."""


def workflow_root() -> Path:
    """The folder holding the Snakefile: $MRFBATCH_WORKFLOW, or this checkout's root."""
    configured = os.environ.get("MRFBATCH_WORKFLOW")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2]
    if not (root / "Snakefile").is_file():
        raise UsageError(
            f"no Snakefile in {root}: run from a checkout of mrfbatch (pip install -e .) or set "
            "MRFBATCH_WORKFLOW to the folder that holds the Snakefile"
        )
    return root


def load_schema(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The config schema (default: config/schema.yaml beside the Snakefile)."""
    import yaml

    with open(path or workflow_root() / "config" / "schema.yaml", encoding="utf-8") as f:
        schema: dict[str, Any] = yaml.safe_load(f)
    return schema


# Snakemake's words for a config file it cannot parse: they name neither the file nor the line.
_UNPARSED = "Config file is not valid JSON or YAML"


def config_file_problem(message: str, argv: Sequence[str] | None = None) -> str | None:
    """For Snakemake's error about a config file it cannot parse: which file (one given with
    --configfile in `argv`, default sys.argv, or config/config.yaml beside the Snakefile) and
    where YAML stops reading it. None for any other message, or when no file fails so."""
    if _UNPARSED not in message:
        return None
    import yaml

    given = [Path(f) for f in _config_files(sys.argv[1:] if argv is None else argv)]
    for path in [*given, workflow_root() / "config" / "config.yaml"]:
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return f"config file {path} is not valid YAML{where}: {what}"
    return None


def _config_files(argv: Sequence[str]) -> list[str]:
    """The files given to --configfile or --configfiles (several may follow one flag)."""
    files: list[str] = []
    taking = False
    for arg in argv:
        flag, equals, value = arg.partition("=")
        if flag in ("--configfile", "--configfiles"):
            taking = not equals
            files += [value] if equals else []
        elif arg.startswith("-"):
            taking = False
        elif taking:
            files.append(arg)
    return files


def check_config(
    config: Mapping[str, Any],
    schema: Mapping[str, Any],
    command_line: Mapping[str, Any] | None = None,
    check_files: bool = True,
) -> dict[str, Any]:
    """`config` with the schema's defaults filled in, or ConfigError naming the key and the fix.

    `command_line` holds the values given with Snakemake's `--config`, which Snakemake writes
    into its log (.snakemake/log): a URL with a query string, user name or fragment is refused
    there. `check_files=False` leaves out the required `input` and the files' existence (for a
    caller that writes the input itself).
    """
    properties: Mapping[str, Any] = schema["properties"]
    _check_keys(config, properties)
    given = str((command_line or {}).get("input", ""))
    # redact_url also lower-cases the scheme, which is no secret: HTTPS://host/file is fine.
    if "://" in given and redact_url(given).lower() != given.lower():
        raise ConfigError(
            "config key 'input': the URL has a query string, user name or fragment (a "
            "signature?) and was given with --config, which Snakemake writes into its log "
            "(.snakemake/log); put 'input: <URL>' in a YAML file and give it with "
            "--configfile FILE instead"
        )
    settings = {key: value for key, value in config.items() if value is not None}  # null: default
    for key in schema.get("required", ()) if check_files else ():
        if settings.get(key) in (None, ""):
            raise ConfigError(
                f"config key {key!r} is missing: give the source file or URL, "
                "e.g. --config source=csv input=plans.csv"
            )
    for key, rules in properties.items():
        if key not in settings:
            settings[key] = rules.get("default")
            continue
        settings[key] = _checked_value(key, settings[key], rules)
    if check_files:
        _check_files(settings)
    return settings


def _check_keys(config: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    unknown = [key for key in config if key not in properties]
    if not unknown:
        return
    described = []
    for key in unknown:
        guess = _ALIASES.get(str(key).lower()) or _closest(str(key), properties)
        described.append((key, f"did you mean {guess!r}?" if guess else ""))
    if len(described) == 1:
        key, hint = described[0]
        if hint:
            raise ConfigError(f"unknown config key {key!r}; {hint}")
        raise ConfigError(
            f"unknown config key {key!r}; the keys are (see config/config.yaml): "
            f"{', '.join(properties)}"
        )
    listed = ", ".join(f"{key!r} ({hint})" if hint else repr(key) for key, hint in described)
    raise ConfigError(
        f"unknown config keys {listed}; the keys are (see config/config.yaml): "
        f"{', '.join(properties)}"
    )


def _closest(word: str, choices: Mapping[str, Any] | list[str]) -> str | None:
    by_folded = {str(choice).lower(): str(choice) for choice in choices}
    found = difflib.get_close_matches(word.lower(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[found[0]] if found else None


def _checked_value(key: str, value: Any, rules: Mapping[str, Any]) -> Any:
    """The value (an integral float as int where the schema says integer), or ConfigError."""
    from jsonschema import Draft202012Validator

    wrong = not Draft202012Validator(rules).is_valid(value)
    # JSON has no infinity or NaN, so no schema refuses them; YAML and --config can give them.
    if wrong or (isinstance(value, float) and not math.isfinite(value)):
        allowed = describe(rules)
        hint = ""
        if "enum" in rules and isinstance(value, str):
            guess = _closest(value, [str(choice) for choice in rules["enum"]])
            hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ConfigError(f"config key {key!r} is {value!r}; allowed values: {allowed}{hint}")
    if rules.get("type") == "integer" and isinstance(value, float):
        return int(value)
    return value


def describe(rules: Mapping[str, Any]) -> str:
    """The values a schema property allows, in words: `integers >= 1`, `csv, index, urls, url`."""
    if "enum" in rules:
        return ", ".join(str(choice) for choice in rules["enum"])
    types = rules.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    words = []
    for kind in types:
        if kind == "null":
            continue
        if kind in ("integer", "number"):
            words.append(f"{kind}s{_bounds(rules)}")
        elif kind == "string":
            text = "non-empty text" if rules.get("minLength") else "text"
            words.append(f"{text} on one line" if "pattern" in rules else text)
        else:
            words.append(kind)
    if "null" in types:
        words.append("null")
    return " or ".join(words)


def _bounds(rules: Mapping[str, Any]) -> str:
    low, high = rules.get("minimum"), rules.get("maximum")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if "exclusiveMinimum" in rules:
        return f" > {rules['exclusiveMinimum']}"
    if high is not None:
        return f" <= {high}"
    return ""


def _check_files(settings: Mapping[str, Any]) -> None:
    """What the schema cannot know: the source and whitelist files exist."""
    source, text = settings["source"], str(settings["input"])
    if source in FILE_SOURCES and not Path(text).is_file():
        raise ConfigError(f"config key 'input': {source} file {text} does not exist")
    if source in ("index", "url") and "://" not in text and not Path(text).is_file():
        raise ConfigError(
            f"config key 'input': {text!r} is neither an http(s)/file URL nor an existing file"
        )
    whitelist = settings.get("cpt_whitelist")
    if whitelist not in (None, "") and not Path(str(whitelist)).is_file():
        raise ConfigError(f"config key 'cpt_whitelist': file {whitelist} does not exist")
