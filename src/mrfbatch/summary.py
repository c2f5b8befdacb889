"""What a run and each of its files came to, in words: the line per file, the closing block,
Snakemake's errors made short."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mrfbatch.config import config_file_problem
from mrfbatch.layout import ALLOWED_AMOUNTS, DEFAULT_OUTPUT_DIR, IN_NETWORK, KIND_TABLES, RunLayout
from mrfbatch.progress import human_bytes, human_seconds
from mrfbatch.tasks import SkippedEntry

LISTED = 5  # failures named in the summary; the manifest has them all
NAMED = 3  # failures a rerun cannot cure, named after "next:" when some others it may cure
CODES_NAMED = 5  # whitelisted codes no file read has, named in the summary
SKIPPED_LISTED = 3  # skipped source entries named on the console; more: the first is named
ERROR_LINES = 6  # lines of an unexpected Snakemake error shown
RERUN_VARIABLE = "MRFBATCH_RERUN_COMMAND"  # a front end's own command, shown to rerun


def task_line(status: Mapping[str, Any]) -> str:
    """One line for one file, from its status.json: `alpha: success, 3 of 1,773 items, ...`;
    `aa: success (allowed amounts), 3 of 3 items, 7 payment rows, ...` for an allowed-amounts
    file."""
    network_id = status.get("network_id", "?")
    kind = status.get("status")
    if kind not in ("success", "incomplete"):
        return f"{network_id}: FAILED: {status.get('error') or 'no reason given'}"
    allowed = status.get("file_kind") == ALLOWED_AMOUNTS
    rows = (
        f"{counted(status.get('allowed_amount_rows') or 0, 'payment row')}, "
        f"{counted(status.get('allowed_amount_provider_rows') or 0, 'provider row')}"
        if allowed
        else f"{counted(status.get('rate_rows') or 0, 'rate row')}, "
        f"{counted(status.get('provider_rows') or 0, 'provider row')}"
    )
    seen = counted(status.get("items_seen") or 0, "item")
    counts = (
        f"{status.get('items_matched') or 0:,} of {seen}, "
        f"{rows}, {human_bytes(status.get('bytes_read') or 0)} in "
        f"{human_seconds(status.get('duration_seconds') or 0.0)}"
    )
    if kind == "success":
        return f"{network_id}: success{' (allowed amounts)' if allowed else ''}, {counts}"
    missing = "; ".join(status.get("incomplete") or ["some data could not be read"])
    return f"{network_id}: INCOMPLETE: {missing}; {counts}"


def skipped_text(entries: Sequence[SkippedEntry], total: int, log: str) -> str:
    """What the console's line about the source says of the entries it skipped.

    Empty for none; `, 1 entry skipped (reporting_structure[3].in_network_files[7]: location is
    missing)`; for more than SKIPPED_LISTED, the count, the first one and where all are named.
    """
    total = max(total, len(entries))
    if not total:
        return ""
    counted = f"{total:,} entr{'y' if total == 1 else 'ies'} skipped"
    if total <= SKIPPED_LISTED and len(entries) == total:
        return f", {counted} ({'; '.join(str(entry) for entry in entries)})"
    first = f"first: {entries[0]}; " if entries else ""
    return f", {counted} ({first}see {log})"


def redone_text(why: Mapping[str, int]) -> str:
    """The tasks finished before that a run redoes, by why (mrfbatch.workflow.not_done_why), in
    words after "N to extract": ` (4 finished before with other codes)`; "" for none."""
    total = sum(why.values())
    if not total:
        return ""
    if len(why) == 1:
        return f" ({total:,} finished before {next(iter(why))})"
    ranked = sorted(why.items(), key=lambda item: (-item[1], item[0]))
    return f" ({total:,} finished before: {', '.join(f'{n:,} {words}' for words, n in ranked)})"


def summary_text(
    manifest: Mapping[str, Any],
    layout: RunLayout,
    seconds: float,
    rerun: str,
    done_before: int | None = None,
    whitelist: str | None = None,
    interrupted: bool = False,
) -> str:
    """The block a run ends with: counts, rows, where everything is, and what to do next.

    `seconds`: how long the run took; `done_before`: how many tasks were done before it (None:
    not known); `whitelist`: the codes file, to say when it matched nothing. The manifest's
    `unwritten`, when the run's own files could not be written (mrfbatch.finish), says why.
    `interrupted`: the run was stopped from outside (Ctrl-C, SIGTERM).
    """
    summary = manifest.get("summary", {})
    total = int(manifest.get("total_tasks") or 0)
    elapsed = human_seconds(seconds)
    lines: list[str] = []
    unwritten = manifest.get("unwritten")
    if manifest.get("error") and interrupted:  # the source was being read
        lines.append(f"mrfbatch: interrupted after {elapsed}, while the source was read")
        lines.append(f"  next:       run the same command again: {rerun}")
        return "\n".join(lines)
    if manifest.get("error"):
        lines.append(f"mrfbatch: stopped in {elapsed}: {manifest['error']}")
        if unwritten:  # the disk is full: the source may well be fine
            lines.append(f"  error:      {unwritten}")
            lines.append(f"  next:       run again: {rerun}")
        else:
            lines.append(f"  next:       fix the source, then run again: {rerun}")
        return "\n".join(lines)
    counts = ", ".join(
        f"{summary.get(key, 0):,} {word}"
        for key, word in (
            ("successful", "success"),
            ("incomplete", "incomplete"),
            ("failed", "failed"),
            ("not_run", "not run"),
        )
        if summary.get(key) or key == "successful"
    )
    if done_before == total:
        lines.append(f"mrfbatch: nothing to do, {files(total)} done before: {counts}")
    else:
        before = f" ({done_before:,} done before this run)" if done_before else ""
        stop = " (interrupted)" if interrupted else ""
        lines.append(f"mrfbatch: {files(total)} in {elapsed}{stop}: {counts}{before}")
    payments = summary.get("allowed_amount_rows") or 0
    payment_providers = summary.get("allowed_amount_provider_rows") or 0
    allowed = (
        f"{counted(payments, 'allowed-amount payment row')}, "
        f"{counted(payment_providers, 'allowed-amount provider row')}, "
        if payments or payment_providers
        else ""
    )
    lines.append(
        f"  rows:       {counted(summary.get('rate_rows') or 0, 'rate row')}, "
        f"{counted(summary.get('provider_rows') or 0, 'provider row')}, {allowed}from "
        f"{human_bytes(summary.get('bytes_read') or 0)} read"
    )
    with_tables = (summary.get("successful") or 0) + (summary.get("incomplete") or 0)
    not_found = summary.get("codes_not_found")
    if whitelist and with_tables and not summary.get("items_matched"):
        lines.append(
            f"  note:       no item of the {files(with_tables)} read has a billing code listed "
            f"in {whitelist}: check the codes (and their type: CPT, HCPCS, RC, ...)"
        )
    elif whitelist and with_tables and not_found:
        listed = int(summary.get("codes_listed") or 0)
        named = ", ".join(not_found[:CODES_NAMED])
        more = (
            f" and {len(not_found) - CODES_NAMED:,} more (manifest.json lists them)"
            if len(not_found) > CODES_NAMED
            else ""
        )
        lines.append(
            f"  codes:      {listed - len(not_found):,} of the {listed:,} codes in {whitelist} are "
            f"in the {files(with_tables)} read; not found: {named}{more}"
        )
    lines.append(f"  tables:     {layout.task_dir('<network_id>')}/{_table_names(manifest)}")
    if os.path.isfile(layout.database):
        lines.append(f"  query:      {query_command(layout)}")
    if os.path.isfile(layout.report):
        lines.append(f"  report:     {layout.report} (open it in a browser)")
    if os.path.isfile(layout.manifest):
        lines.append(f"  manifest:   {layout.manifest} (every file's status)")
    skipped = int(manifest.get("skipped_entries_total") or 0)
    if skipped:
        lines.append(
            f"  skipped:    {skipped:,} entr{'y' if skipped == 1 else 'ies'} of the source, "
            f"named in {layout.tasks_log} and the manifest"
        )
    lines.append(f"  logs:       {layout.task_log('<network_id>')}")
    problems = [
        e for e in manifest.get("extractions", []) if e.get("status") in ("failed", "incomplete")
    ]
    for entry in problems[:LISTED]:
        why = entry.get("error") or "; ".join(entry.get("incomplete") or [])
        word = "failed" if entry["status"] == "failed" else "incomplete"
        lines.append(f"  {word + ':':<11} {entry['network_id']}: {why}")
    if len(problems) > LISTED:
        lines.append(f"  ...         and {len(problems) - LISTED:,} more in the manifest")
    if unwritten:
        lines.append(f"  error:      {unwritten}")
    redo = len(problems) + int(summary.get("not_run") or 0)
    if not redo and unwritten:
        lines.append(
            f"  next:       run the same command again: it keeps the {files(total)} done "
            "and writes the rest"
        )
        lines.append(f"              {rerun}")
    if redo:
        lasting = {
            status: [
                e["network_id"]
                for e in problems
                if e["status"] == status and e.get("retryable") is False
            ]
            for status in ("failed", "incomplete")
        }
        # A rerun redoes every file not done; when none of them can come out otherwise as
        # things stand, saying "run again" first would cost a large file's download for nothing.
        if sum(map(len, lasting.values())) == redo:
            cause = "its cause is" if redo == 1 else "their causes are"
            lines.append(
                f"  next:       a rerun alone would not change the {files(redo)} not done; once "
                f"{cause} dealt with, run the same command again (it keeps the others)"
            )
        else:
            lines.append(
                f"  next:       run the same command again: it redoes the {files(redo)} not done "
                "and keeps the others"
            )
        for status, outcome in (("failed", "fail again"), ("incomplete", "be incomplete again")):
            if lasting[status]:
                one = len(lasting[status]) == 1
                lines.append(
                    f"              ({_who(lasting[status], redo)} will {outcome} as "
                    f"{'it stands' if one else 'they stand'}, for the "
                    f"{'reason' if one else 'reasons'} above: {_cure(manifest, status, one)})"
                )
        lines.append(f"              {rerun}")
    return "\n".join(lines)


def _who(lasting: Sequence[str], redo: int) -> str:
    """The tasks of `lasting` among the `redo` a rerun redoes: named when they are some of
    them and few enough to read."""
    if len(lasting) < redo:
        return _and(lasting) if len(lasting) <= NAMED else f"{len(lasting):,} of them"
    return "it" if redo == 1 else f"all {redo:,}"


def _cure(manifest: Mapping[str, Any], status: str, one: bool) -> str:
    """What the person running can do about failures no rerun cures, by the kind of source:
    fix or drop them in their own list; a payer's index they cannot edit. An incomplete
    file lacks only what its remote files hold, which are the payer's."""
    if status == "incomplete":
        return (
            f"the remote provider-reference files {'it lacks are' if one else 'they lack are'} "
            f"the payer's; {'its tables have' if one else 'their tables have'} every rate"
        )
    source = str(manifest.get("source_input") or "the source")
    kind = manifest.get("source_type")
    if kind == "index":
        return f"{'the file is' if one else 'the files are'} the payer's, listed in {source}"
    if kind == "url":
        return "check the url"
    return f"fix or drop {'it' if one else 'them'} in {source}"


def _table_names(manifest: Mapping[str, Any]) -> str:
    """`rates.parquet, providers.parquet`, or the names the files' statuses give (format=csv,
    allowed-amounts files' tables), each once; Parquet's when no file has tables."""
    names: dict[str, None] = {}
    for entry in manifest.get("extractions", []):
        for path in (entry.get("output_files") or {}).values():
            names[os.path.basename(str(path))] = None
    return ", ".join(names) or ", ".join(f"{t}.parquet" for t in KIND_TABLES[IN_NETWORK])


def query_command(
    layout: RunLayout,
    sql: str = "SELECT billing_code, count(*) AS rates, median(negotiated_rate) AS median "
    "FROM rates GROUP BY ALL ORDER BY ALL",
) -> str:
    """The command that queries the run's database (views: docs/analysis.md)."""
    words = ["mrfbatch-query"]
    if os.path.normpath(layout.output_dir) != DEFAULT_OUTPUT_DIR:
        words += ["--output-dir", layout.output_dir]
    return shlex.join([*words, sql])


def _and(names: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def files(count: int) -> str:
    """`1 file`, `1,234 files`."""
    return counted(count, "file")


def counted(count: int, noun: str) -> str:
    """`1 rate row`, `1,234 rate rows`: `noun` (singular) counted."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def rerun_command() -> str:
    """The command that started this run, to run again (a front end may set its own)."""
    given = os.environ.get(RERUN_VARIABLE)
    if given:
        return given
    return shlex.join(["snakemake", *sys.argv[1:]])


def concise_error(text: str) -> str:
    """An error of Snakemake's (or raised through it) without tracebacks or file positions."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("File ", "Traceback")) or line.startswith("    "):
            continue
        if stripped in ("Wildcards:", "Error:") or stripped.endswith(" line:"):
            continue
        if " in file " in stripped and stripped.rstrip().endswith(":") and ", line " in stripped:
            continue  # "ConfigError in file .../common.smk, line 14:"
        lines.append(stripped)
    return config_file_problem(text) or " ".join(lines[:ERROR_LINES]) or text.strip()
