"""The mrfbatch benchmark: engines against the ISA-L decompression limit, on generated files.

Run by ``make bench`` (``BENCH_MB=1000``) and ``make bench-smoke`` (``BENCH_MB=20``)::

    python bench/run.py --mb 1000 [--reference-mb 200] [--refs after] [--indent 2 --crlf]

Files come from ``bench/generate.py`` and are cached in ``bench/data/`` (reused while their
parameters and the generator version are unchanged):

- A, the main file (``--mb``); B, the same shape with another seed (two processes at once);
- R, the file the slow reference engine is timed on: A itself up to 200 MB, else a 200 MB file
  of the same shape (``--reference-mb``); the fast engine is timed on R too, so fast/reference
  compares MB/s on the same bytes;
- S, the small file of the RSS check (``--rss-mb``, 200): fast-engine peak RSS on S vs on A.

Every measurement runs in a fresh process (``bench/measure.py``), which reports its time, its
peak RSS (``ru_maxrss``), the extraction's counts and a digest of the output tables. The counts
must equal what the generator wrote (and the digests must agree across engines on one file):
otherwise a ``MISMATCH`` line says what differs and the exit status is 1. Timing and RSS
targets are reported, never enforced: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generate import MB, Generated, Shape, ensure, write_whitelist
from measure import code_fingerprint
from vocabulary import WHITELIST

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MEASURE = BENCH / "measure.py"
RSS_RATIO_TARGET = 1.2
RSS_LIMIT_MB = 400.0


@dataclass
class Row:
    """One line of the results table."""

    label: str
    file: str  # file letter(s)
    result: dict[str, Any]  # what bench/measure.py printed (for pairs: combined)

    @property
    def letters(self) -> list[str]:
        return self.file.split("+")

    @property
    def mbps(self) -> float:
        return float(self.result["json_bytes"]) / MB / float(self.result["seconds"])


class Bench:
    """Runs the measurements, collects rows and mismatches, prints the report."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.data = Path(args.data_dir)
        self.out = self.data / "out"
        self.whitelist = self.data / "whitelist.txt"
        self.files: dict[str, Generated] = {}
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.load_before = os.getloadavg()

    # files

    def prepare(self) -> None:
        a = self.args
        shape = Shape(a.mb, a.seed, a.refs, a.indent, a.crlf)
        self.data.mkdir(parents=True, exist_ok=True)
        write_whitelist(self.whitelist)
        self._add("A", shape)
        self._add("R", self._resized(shape, self.reference_mb))
        if a.mb > a.rss_mb:
            self._add("S", self._resized(shape, a.rss_mb))
        self._add("B", Shape(a.mb, a.second_seed, a.refs, a.indent, a.crlf))

    @property
    def reference_mb(self) -> float:
        a = self.args
        if a.reference_mb is not None:
            return float(a.reference_mb)
        return a.mb if a.mb <= 200 else 200.0

    @staticmethod
    def _resized(shape: Shape, mb: float) -> Shape:
        return dataclasses.replace(shape, mb=mb)  # every other knob kept

    def _add(self, letter: str, shape: Shape) -> None:
        same = next((g for g in self.files.values() if g.shape == shape), None)
        self.files[letter] = same or ensure(shape, self.data, log=_progress)

    def same(self, x: str, y: str) -> bool:
        """Whether letters `x` and `y` name the same file."""
        return self.files[x].path == self.files[y].path

    # measurements

    def _command(
        self, kind: str, letter: str, engine: str | None = None, digest: bool = True
    ) -> list[str]:
        cmd = [sys.executable, str(MEASURE), kind, str(self.files[letter].path)]
        if kind == "scan":
            cmd += ["--whitelist", str(self.whitelist)]
        elif engine:
            out = self.out / f"{engine}-{letter}"
            cmd += ["--engine", engine, "--whitelist", str(self.whitelist), "--out", str(out)]
            if not digest:
                cmd.append("--no-digest")
        return cmd

    def _run(self, cmd: list[str]) -> dict[str, Any] | None:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        return self._parse(cmd, done.returncode, done.stdout, done.stderr)

    def _parse(self, cmd: list[str], code: int, stdout: str, stderr: str) -> dict[str, Any] | None:
        if code != 0 or not stdout.strip():
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            self.problems.append(f"FAILED (exit {code}): {shlex.join(cmd)}\n{tail}")
            return None
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
        return result

    def measure(self, label: str, kind: str, letter: str, engine: str | None = None) -> None:
        """Run one measurement `--repeat` times; keep the fastest (and the highest peak RSS)."""
        cmd = self._command(kind, letter, engine)
        best: dict[str, Any] | None = None
        for _ in range(self.args.repeat):
            _progress(f"{label} on {letter} ...")
            result = self._run(cmd)
            if result is None:
                return
            if result["skipped"]:
                self.notes.append(f"{label}: skipped: {result['skipped']}")
                return
            if best is None or result["seconds"] < best["seconds"]:
                peak = max(result["peak_rss_mb"], best["peak_rss_mb"] if best else 0)
                best = {**result, "peak_rss_mb": peak}
        assert best is not None
        _progress(f"  {best['seconds']:.2f} s")
        self.rows.append(Row(label, letter, best))
        if kind == "scan":
            self._check_scan(label, letter, best, cmd)
        elif engine:
            self._check(label, letter, best, cmd)
        shutil.rmtree(self.out, ignore_errors=True)

    def measure_pair(self, label: str, first: str, second: str) -> None:
        """The fast engine on two files at once, one process each."""
        cmds = [self._command("extract", x, "fast", digest=False) for x in (first, second)]
        _progress(f"{label} on {first} and {second} at once ...")
        procs = [
            subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            for c in cmds
        ]
        results = []
        for cmd, proc in zip(cmds, procs, strict=True):
            stdout, stderr = proc.communicate()
            results.append(self._parse(cmd, proc.returncode, stdout, stderr))
        shutil.rmtree(self.out, ignore_errors=True)
        rs = [r for r in results if r is not None]
        if len(rs) < len(results):
            return
        if any(r["skipped"] for r in rs):
            self.notes.append(f"{label}: skipped: {rs[0]['skipped']}")
            return
        for letter, cmd, r in zip((first, second), cmds, rs, strict=True):
            self._check(f"{label} ({letter})", letter, r, cmd)
        combined = {
            "json_bytes": sum(r["json_bytes"] for r in rs),
            "seconds": max(r["finished"] for r in rs) - min(r["started"] for r in rs),
            "rate_rows": "+".join(f"{r['rate_rows']:,}" for r in rs),
            "provider_rows": "+".join(f"{r['provider_rows']:,}" for r in rs),
            "items_matched": "+".join(str(r["items_matched"]) for r in rs),
            "peak_rss_mb": "/".join(f"{r['peak_rss_mb']:.0f}" for r in rs),
            "cpu_seconds": sum(r["cpu_seconds"] for r in rs),
            # both windows hold both processes; take the larger one
            "machine_cpu_seconds": max(r["machine_cpu_seconds"] for r in rs),
            "each": rs,
        }
        _progress(f"  {combined['seconds']:.2f} s")
        self.rows.append(Row(label, f"{first}+{second}", combined))

    def limit(self, row: Row) -> float | None:
        """ISA-L's MB/s on the row's (first) file: the fastest of its measurements in this run,
        before and after the engines, so that a slow moment does not flatter every ratio."""
        speeds = [
            r.mbps
            for r in self.rows
            if r.result.get("kind") == "isal" and self.same(r.file, row.letters[0])
        ]
        return max(speeds, default=None)

    # checks

    def _check(self, label: str, letter: str, r: dict[str, Any], cmd: list[str]) -> None:
        """Counts against the generator's expectation; digests against other engines."""
        where = f"{label} on {letter} ({self.files[letter].path.name})"
        repro = (
            f"  reproduce: {_generate_command(self.files[letter])}\n             {shlex.join(cmd)}"
        )
        if r["status"] != "success":
            self.problems.append(f"FAILED: {where}: {r['error']}\n{repro}")
            return
        exp = self.files[letter].expected
        wrong = [
            f"{name} {r[key]:,} but the generator wrote {want:,}"
            for name, key, want in (
                ("items_seen", "items_seen", exp.items),
                ("items_matched", "items_matched", exp.items_matched),
                ("rate_rows", "rate_rows", exp.rate_rows),
                ("provider_rows", "provider_rows", exp.provider_rows),
                ("bytes_decoded", "json_bytes", exp.json_bytes),
            )
            if r[key] != want
        ]
        got, want = r["rate_rows_by_code"], exp.rate_rows_by_code
        for code in sorted(set(got) | set(want)):
            if got.get(code, 0) != want.get(code, 0):
                wrong.append(
                    f"code {code}: {got.get(code, 0):,} rate rows, expected {want.get(code, 0):,}"
                )
        if wrong:
            lines = "\n".join(f"  {w}" for w in wrong[:20])
            self.problems.append(f"MISMATCH: {where}:\n{lines}\n{repro}")
        for row in self.rows:
            other = row.result
            if (
                other.get("digest")
                and r["digest"]
                and self.same(row.file, letter)
                and other["digest"] != r["digest"]
            ):
                self.problems.append(
                    f"MISMATCH: {where}: its tables differ from those of {row.label} on the "
                    f"same file (SHA-256 of sorted rows {r['digest'][:12]} vs "
                    f"{other['digest'][:12]})\n{repro}"
                )

    def _check_scan(self, label: str, letter: str, r: dict[str, Any], cmd: list[str]) -> None:
        """The bound's run saw every byte and handed over the items a whitelist wants."""
        exp = self.files[letter].expected
        if (r["json_bytes"], r["items_matched"]) != (exp.json_bytes, exp.items_matched):
            self.problems.append(
                f"MISMATCH: {label} on {letter}: {r['json_bytes']:,} bytes and "
                f"{r['items_matched']} matched items, but the generator wrote "
                f"{exp.json_bytes:,} and {exp.items_matched}\n  reproduce: {shlex.join(cmd)}"
            )

    # report

    def report(self, started: float) -> None:
        a = self.args
        print()
        print("== mrfbatch benchmark ==")
        print(f"machine: {_machine()}")
        print(f"code:    {_code_version()}, mrfbatch sources {code_fingerprint()}")
        load = ", ".join(f"{x:.2f}" for x in self.load_before)
        print(f"load:    {load} before the run (1/5/15 min; other work on the machine skews times)")
        print(f"command: {shlex.join([_short(sys.executable), *sys.argv])}")
        via = f"make, BENCH_MB={os.environ.get('BENCH_MB')}" if os.environ.get("MAKELEVEL") else ""
        took = f"{time.monotonic() - started:.0f} s in all, generation included"
        print(f"         ({via + '; ' if via else ''}{took})")
        style = "compact" if a.indent == 0 else f"indent {a.indent}{', CRLF' if a.crlf else ''}"
        print(
            f"files:   {_short(str(self.data))}/, {style} JSON, provider_references {a.refs} "
            f"in_network; whitelist {_short(str(self.whitelist))} ({len(WHITELIST)} codes); "
            "MB = 10^6 bytes of uncompressed JSON"
        )
        seen: set[Path] = set()
        for g in self.files.values():
            if g.path in seen:
                continue
            aliases = "=".join(x for x, h in self.files.items() if h.path == g.path)
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
            )
        if self.reference_mb != a.mb:
            print(
                f"  the reference engine is timed on R ({self.reference_mb:g} MB, same shape), "
                "not on A: it is too slow for A; ratios compare MB/s"
            )
        print()
        self._table()
        print(
            "CPU s: user+system seconds of the measured work (all its threads); other CPU s: "
            "what the rest of the machine used meanwhile (contention when it is not ~0)"
        )
        print()
        for line in self._summary():
            print(line)
        codes: dict[str, list[str]] = {}
        for row in self.rows:
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
            for row in self.rows
            if (other := row.result["machine_cpu_seconds"] - row.result["cpu_seconds"])
            > max(0.1 * row.result["seconds"], 0.25)  # ignore background noise
        ]
        if busy:
            print(
                "CONTENTION: other processes were busy during " + "; ".join(busy) + ": those "
                f"rows are slower than on an idle machine (nproc {_usable_cpus()})"
            )
        for note in self.notes:
            print(f"note: {note}")
        if self.problems:
            print()
            for problem in self.problems:
                print(problem)
        else:
            print(
                "checks: every extraction succeeded; items_seen, items_matched, rate_rows, "
                "provider_rows and rate rows per code equal the generator's expectation; "
                "tables of different engines on the same file are identical (SHA-256 of sorted "
                "rows)"
            )

    def _table(self) -> None:
        head = ("", "file", "JSON MB", "seconds", "CPU s", "other CPU s", "MB/s", "x limit",
                "rate_rows", "provider_rows", "matched", "peak RSS MB")  # fmt: skip
        lines = [head]
        for row in self.rows:
            r = row.result
            extraction = r.get("kind") not in ("isal", "scan")
            lines.append(
                (
                    row.label,
                    row.file,
                    f"{r['json_bytes'] / MB:,.1f}",
                    f"{r['seconds']:.2f}",
                    f"{r['cpu_seconds']:.2f}",
                    f"{max(0.0, r['machine_cpu_seconds'] - r['cpu_seconds']):.1f}",
                    f"{row.mbps:,.1f}",
                    f"{row.mbps / limit:.2f}" if (limit := self.limit(row)) else "-",
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

    def _find(self, label_prefix: str, letter: str) -> Row | None:
        return next(
            (r for r in self.rows if r.label.startswith(label_prefix) and r.file == letter), None
        )

    def _summary(self) -> list[str]:
        out = []
        inflating = [r for r in self.rows if r.result.get("kind") == "isal"]
        for letter in dict.fromkeys(r.file for r in inflating):
            runs = [r.mbps for r in inflating if r.file == letter]
            if len(runs) > 1:
                out.append(
                    f"limit on {letter}: ISA-L ran at {' then '.join(f'{x:,.1f}' for x in runs)} "
                    "MB/s, before and after the engines; every x limit uses the faster"
                )
        ref = self._find("(b)", "R")
        fast_r = self._find("(c)", "R") or (self._find("(c)", "A") if self.same("A", "R") else None)
        fast_a = self._find("(c)", "A")
        if ref and fast_r:
            out.append(
                f"fast / reference: {fast_r.mbps / ref.mbps:.1f}x "
                f"({fast_r.mbps:,.1f} vs {ref.mbps:,.1f} MB/s, both on R)"
            )
        threads = self._find("(d)", "A")
        if threads and fast_a:
            out.append(
                f"threads=2 / threads=1: {threads.mbps / fast_a.mbps:.2f}x "
                f"({threads.mbps:,.1f} vs {fast_a.mbps:,.1f} MB/s on A)"
            )
        pair = next((r for r in self.rows if r.label.startswith("(e)")), None)
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
        bound = self._find("(f)", "A")
        limit = self.limit(bound) if bound else None
        if bound and limit and fast_a:
            out.append(
                f"no rows built (the floor under the fast engine): {bound.mbps:,.1f} MB/s = "
                f"{bound.mbps / limit:.2f}x the limit; making and writing the rows takes the "
                f"fast engine on A from there to {fast_a.mbps / limit:.2f}x"
            )
        out.append(self._rss_line(fast_a))
        return out

    def _rss_line(self, fast_a: Row | None) -> str:
        if fast_a is None:
            return "RSS check: n/a (no fast-engine measurement)"
        peak_a = fast_a.result["peak_rss_mb"]
        base = fast_a.result["baseline_rss_mb"]
        limit = "ok" if peak_a <= RSS_LIMIT_MB else "ABOVE TARGET"
        absolute = (
            f"peak {peak_a:.0f} MB on A (target <= {RSS_LIMIT_MB:.0f} MB: {limit}; "
            f"{base:.0f} MB of it before the extraction, after imports)"
        )
        if "S" not in self.files:
            return (
                f"RSS check: {absolute}; the {self.args.rss_mb:g} MB vs main-size ratio needs "
                f"--mb above {self.args.rss_mb:g}"
            )
        small = self._find("(c)", "S") or next(
            (r for r in self.rows if r.label.startswith("(c)") and self.same(r.file, "S")), None
        )
        if small is None:
            return f"RSS check: {absolute}; no fast-engine run on S"
        ratio = peak_a / small.result["peak_rss_mb"]
        verdict = "ok" if ratio <= RSS_RATIO_TARGET else "ABOVE TARGET"
        return (
            f"RSS check: fast engine peak RSS {small.result['peak_rss_mb']:.0f} MB on "
            f"{self.files['S'].shape.mb:g} MB vs {peak_a:.0f} MB on {self.args.mb:g} MB: "
            f"{ratio:.2f}x (target <= {RSS_RATIO_TARGET}x: {verdict}); {absolute}"
        )


def _generate_command(g: Generated) -> str:
    """The command that writes the file `g` again (and its whitelist)."""
    s = g.shape
    cmd = [_short(sys.executable), "bench/generate.py", "--mb", f"{s.mb:g}", "--seed", str(s.seed)]
    cmd += ["--refs", s.refs, "--indent", str(s.indent)]
    cmd += ["--crlf"] * s.crlf + ["--no-quirks"] * (not s.quirks)
    cmd += [
        "--out",
        _short(str(g.path)),
        "--whitelist",
        _short(str(g.path.parent / "whitelist.txt")),
    ]
    return shlex.join(cmd)


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _short(path: str) -> str:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    default_mb = float(os.environ.get("BENCH_MB", 1000))
    p.add_argument("--mb", type=float, default=default_mb, help="size of file A (MB of JSON)")
    p.add_argument(
        "--reference-mb",
        type=float,
        help="size of file R, which the reference engine is timed on (default: --mb up to 200, "
        "else 200)",
    )
    p.add_argument("--rss-mb", type=float, default=200, help="small file of the RSS check")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--second-seed", type=int, default=2, help="seed of file B")
    p.add_argument("--refs", choices=("before", "after"), default="before")
    p.add_argument("--indent", type=int, default=0, help="0: compact JSON; N: pretty-printed")
    p.add_argument("--crlf", action="store_true", help="pretty-printed with CRLF line ends")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is kept)")
    p.add_argument("--data-dir", default=str(BENCH / "data"), help="cache of generated files")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.crlf and not args.indent:
        build_parser().error("--crlf needs --indent")
    started = time.monotonic()
    bench = Bench(args)
    bench.prepare()
    for letter in dict.fromkeys(("A", "R")):
        if letter == "A" or not bench.same("A", letter):
            bench.measure("(a) isal decompression (the limit)", "isal", letter)
    bench.measure("(b) reference engine", "extract", "R", "reference")
    if not bench.same("A", "R"):
        bench.measure("(c) fast engine", "extract", "R", "fast")
    bench.measure("(c) fast engine", "extract", "A", "fast")
    bench.measure("(d) fast engine, threads=2", "extract", "A", "fast-threads2")
    if "S" in bench.files and not bench.same("S", "R"):
        bench.measure("(c) fast engine", "extract", "S", "fast")
    bench.measure_pair("(e) fast engine, 2 processes", "A", "B")
    bench.measure("(f) fast engine, no rows built", "scan", "A")
    for letter in dict.fromkeys(("A", "R")):  # the limit again: the faster of the two counts
        if letter == "A" or not bench.same("A", letter):
            bench.measure("(a) isal decompression, again", "isal", letter)
    bench.report(started)
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
