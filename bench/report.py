"""bench/run.py's report: the files, the results table, the summary, the notes, the goals."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from generate import MB
from measure import code_fingerprint
from peer import PEER
from targets import PEER_LABEL, Row, goal_table, goals
from vocabulary import WHITELIST

if TYPE_CHECKING:
    from run import Bench  # the report reads the Bench that run.py filled

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RSS_RATIO_TARGET = 1.2
RSS_LIMIT_MB = 400.0
EXTRACT_ALL = {"X": "main shape", "Y": "small-items shape"}  # the extract-all files


def print_report(bench: Bench, started: float) -> None:
    a = bench.args
    print()
    print("== mrfbatch benchmark ==")
    print(f"machine: {_machine()}")
    print(f"code:    {_code_version()}, mrfbatch sources {code_fingerprint()}")
    load = ", ".join(f"{x:.2f}" for x in bench.load_before)
    print(f"load:    {load} before the run (1/5/15 min; other work on the machine skews times)")
    print(f"command: {shlex.join([short(sys.executable), *sys.argv])}")
    via = f"make, BENCH_MB={os.environ.get('BENCH_MB')}" if os.environ.get("MAKELEVEL") else ""
    took = f"{time.monotonic() - started:.0f} s in all, generation included"
    print(f"         ({via + '; ' if via else ''}{took})")
    style = "compact" if a.indent == 0 else f"indent {a.indent}{', CRLF' if a.crlf else ''}"
    print(
        f"files:   {short(str(bench.data))}/, {style} JSON, provider_references {a.refs} "
        f"in_network; whitelist {short(str(bench.whitelist))} ({len(WHITELIST)} codes); "
        "MB = 10^6 bytes of uncompressed JSON"
    )
    seen: set[Path] = set()
    for g in bench.files.values():
        if g.path in seen:
            continue
        aliases = "=".join(x for x, h in bench.files.items() if h.path == g.path)
        seen.add(g.path)
        e = g.expected
        print(
            f"  {aliases:<5} {g.path.name}: {e.json_bytes / MB:,.1f} MB JSON, "
            f"{e.gzip_bytes / MB:,.1f} MB gzip ({e.json_bytes / e.gzip_bytes:.1f}x), "
            f"{e.items:,} items ({e.bundle_items} bundle, {e.capitation_items} capitation), "
            f"{e.items_matched} matching, {e.rate_rows:,} rate rows, "
            f"{e.provider_rows:,} provider rows expected; largest item "
            f"{e.largest_item_bytes / MB:.1f} MB, largest matching "
            f"{e.largest_matched_item_bytes / MB:.2f} MB"
            + (
                f"; extracted whole: {e.all_rate_rows:,} rate rows, "
                f"{e.all_provider_rows:,} provider rows expected"
                if aliases in EXTRACT_ALL
                else ""
            )
        )
    if bench.reference_mb != a.mb:
        print(
            f"  the reference engine is timed on R ({bench.reference_mb:g} MB, same shape), "
            "not on A: it is too slow for A; ratios compare MB/s"
        )
    print()
    _table(bench)
    print(
        "CPU s: user+system seconds of the measured work (all its threads); other CPU s: "
        "what the rest of the machine used meanwhile (contention when it is not ~0)"
    )
    print()
    for line in _summary(bench):
        print(line)
    codes: dict[str, list[str]] = {}
    for row in bench.rows:
        for r in row.result.get("each", [row.result]):
            if r.get("code"):
                codes.setdefault(r["code"], []).append(f"{row.label} on {row.file}")
    if len(codes) > 1:
        ran = "; ".join(f"{code}: {', '.join(rows)}" for code, rows in codes.items())
        print(
            "CODE CHANGED: src/mrfbatch changed during the run, so its rows are not "
            f"comparable ({ran}); run again"
        )
    busy = [
        f"{row.label} on {row.file} ({other:.2f} CPU s in {row.result['seconds']:.2f} s)"
        for row in bench.rows
        if (other := row.result["machine_cpu_seconds"] - row.result["cpu_seconds"])
        > max(0.1 * row.result["seconds"], 0.25)  # ignore background noise
    ]
    if busy:
        print(
            "CONTENTION: other processes were busy during " + "; ".join(busy) + ": those "
            f"rows are slower than on an idle machine (nproc {_usable_cpus()})"
        )
    if bench.peer_missing:
        bench.notes.append(f"{PEER_LABEL}: not measured: {bench.peer_missing}")
    for note in bench.notes:
        print(f"note: {note}")
    print()
    print(f"issue #18's targets (2-core machine; {short(str(BENCH / 'targets.py'))}):")
    shapes = {x: f"{name} ({x})" for x, name in EXTRACT_ALL.items()}
    startup = min(bench.startup_runs, default=None)
    for line in goal_table(goals(bench.rows, bench.limit, shapes, startup, bench.peer_missing)):
        print(line)
    if bench.problems:
        print()
        for problem in bench.problems:
            print(problem)
    else:
        print(
            "checks: every extraction succeeded; items_seen, items_matched, rate_rows, "
            "provider_rows and rate rows per code (with no whitelist on X and Y: the totals, "
            "all_rate_rows and all_provider_rows) equal the generator's expectation; "
            "tables of different engines on the same file are identical (SHA-256 of sorted "
            "rows)"
        )


def _table(bench: Bench) -> None:
    head = ("", "file", "JSON MB", "seconds", "CPU s", "other CPU s", "MB/s", "x limit",
            "rate_rows", "provider_rows", "matched", "peak RSS MB")  # fmt: skip
    lines = [head]
    for row in bench.rows:
        r = row.result
        extraction = r.get("kind") not in ("isal", "scan") and r.get("engine") != PEER
        lines.append(
            (
                row.label,
                row.file,
                f"{r['json_bytes'] / MB:,.1f}",
                f"{r['seconds']:.2f}",
                f"{r['cpu_seconds']:.2f}",
                f"{max(0.0, r['machine_cpu_seconds'] - r['cpu_seconds']):.1f}",
                f"{row.mbps:,.1f}",
                f"{row.mbps / limit:.2f}" if (limit := bench.limit(row)) else "-",
                _num(r["rate_rows"]) if extraction else "-",
                _num(r["provider_rows"]) if extraction else "-",
                _num(r["items_matched"]) if extraction else "-",
                _num(r["peak_rss_mb"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(line[2:], widths[2:], strict=True)]
        print("  ".join(cells).rstrip())


def _find(bench: Bench, label_prefix: str, letter: str) -> Row | None:
    return next(
        (r for r in bench.rows if r.label.startswith(label_prefix) and r.file == letter), None
    )


def _summary(bench: Bench) -> list[str]:
    out = []
    inflating = [r for r in bench.rows if r.result.get("kind") == "isal"]
    for letter in dict.fromkeys(r.file for r in inflating):
        runs = [r.mbps for r in inflating if r.file == letter]
        if len(runs) > 1:
            out.append(
                f"limit on {letter}: ISA-L ran at {' then '.join(f'{x:,.1f}' for x in runs)} "
                "MB/s, before and after the engines; every x limit uses the faster"
            )
    ref = _find(bench, "(b)", "R")
    fast_r = _find(bench, "(c)", "R") or (
        _find(bench, "(c)", "A") if bench.same("A", "R") else None
    )
    fast_a = _find(bench, "(c)", "A")
    if ref and fast_r:
        out.append(
            f"fast / reference: {fast_r.mbps / ref.mbps:.1f}x "
            f"({fast_r.mbps:,.1f} vs {ref.mbps:,.1f} MB/s, both on R)"
        )
    full = next((r for r in bench.rows if r.label.startswith("(c) fast engine, --validate")), None)
    if full and fast_a:
        out.append(
            f"validate=full / the default: {full.mbps / fast_a.mbps:.2f}x ({full.mbps:,.1f} vs "
            f"{fast_a.mbps:,.1f} MB/s on A): what the default validation saves"
        )
    threads = _find(bench, "(d)", "A")
    if threads and fast_a:
        out.append(
            f"threads=2 / threads=1: {threads.mbps / fast_a.mbps:.2f}x "
            f"({threads.mbps:,.1f} vs {fast_a.mbps:,.1f} MB/s on A)"
        )
    pair = next((r for r in bench.rows if r.label.startswith("(e)")), None)
    if pair and fast_a:
        each = ", ".join(
            f"{x} {r['json_bytes'] / MB / (r['finished'] - r['started']):,.1f} MB/s"
            for x, r in zip(pair.file.split("+"), pair.result["each"], strict=True)
        )
        out.append(
            f"two processes at once: {pair.mbps:,.1f} MB/s combined = "
            f"{pair.mbps / fast_a.mbps:.2f}x one process ({fast_a.mbps:,.1f} MB/s on A); "
            f"each: {each}"
        )
    bound = _find(bench, "(f)", "A")
    limit = bench.limit(bound) if bound else None
    if bound and limit and fast_a:
        out.append(
            f"no rows built (the floor under the fast engine): {bound.mbps:,.1f} MB/s = "
            f"{bound.mbps / limit:.2f}x the limit; making and writing the rows takes the "
            f"fast engine on A from there to {fast_a.mbps / limit:.2f}x"
        )
    out.append(_rss_line(bench, fast_a))
    if bench.startup_runs:
        passes = ", ".join(f"{x:.3f}" for x in bench.startup_runs)
        out.append(
            f"start-up: python -m mrfbatch.run_extraction on the bundled example took {passes} s "
            f"(whole process, wall); the best counts"
        )
    return out


def _rss_line(bench: Bench, fast_a: Row | None) -> str:
    if fast_a is None:
        return "RSS check: n/a (no fast-engine measurement)"
    peak_a = fast_a.result["peak_rss_mb"]
    base = fast_a.result["baseline_rss_mb"]
    limit = "ok" if peak_a <= RSS_LIMIT_MB else "ABOVE TARGET"
    absolute = (
        f"peak {peak_a:.0f} MB on A (target <= {RSS_LIMIT_MB:.0f} MB: {limit}; "
        f"{base:.0f} MB of it before the extraction, after imports and the warm-up)"
    )
    if "S" not in bench.files:
        return (
            f"RSS check: {absolute}; the {bench.args.rss_mb:g} MB vs main-size ratio needs "
            f"--mb above {bench.args.rss_mb:g}"
        )
    small = _find(bench, "(c)", "S") or next(
        (r for r in bench.rows if r.label.startswith("(c)") and bench.same(r.file, "S")), None
    )
    if small is None:
        return f"RSS check: {absolute}; no fast-engine run on S"
    ratio = peak_a / small.result["peak_rss_mb"]
    verdict = "ok" if ratio <= RSS_RATIO_TARGET else "ABOVE TARGET"
    return (
        f"RSS check: fast engine peak RSS {small.result['peak_rss_mb']:.0f} MB on "
        f"{bench.files['S'].shape.mb:g} MB vs {peak_a:.0f} MB on {bench.args.mb:g} MB: "
        f"{ratio:.2f}x (target <= {RSS_RATIO_TARGET}x: {verdict}); {absolute}"
    )


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def short(path: str) -> str:
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = _usable_cpus()
    versions = []
    for package in ("isal", "msgspec", "ijson", "pyarrow"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} missing")
    return (
        f"nproc {usable} ({model or 'unknown CPU'}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {', '.join(versions)}"
    )


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0


def _code_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"git {commit}" + (" + uncommitted changes under src/" if dirty else "")
