"""The mrfbatch benchmark: engines against the ISA-L decompression limit, on generated files.

Run by ``make bench`` (``BENCH_MB=1000``) and ``make bench-smoke`` (``BENCH_MB=20``)::

    python bench/run.py --mb 1000 [--reference-mb 200] [--refs after] [--indent 2 --crlf]

Files come from ``bench/generate.py`` and are cached in ``bench/data/`` (reused while their
parameters and the generator version are unchanged):

- A, the main file (``--mb``); B, the same shape with another seed (two processes at once);
- R, the file the slow reference engine is timed on: A itself up to 200 MB, else a 200 MB file
  of the same shape (``--reference-mb``); the fast engine is timed on R too, so fast/reference
  compares MB/s on the same bytes;
- S, the small file of the RSS check (``--rss-mb``, 200): fast-engine peak RSS on S vs on A;
- X and Y, the extract-all files (``--extract-all-mb``, default ``--mb`` up to 200): X of A's
  shape without payer quirks and with integer provider_group_ids, Y of the ``small-items``
  shape; every item extracted by both engines, by mrfbatch's command and by cms-mrf-extractor
  (``bench/peer.py``, installed into ``bench/data/peer-venv``), which cannot read the quirks.

It also times the start-up of ``python -m mrfbatch.run_extraction`` on the bundled example and
ends with issue #18's targets, measured beside their goals (``bench/targets.py``).

Every measurement runs in a fresh process (``bench/measure.py``), which reports its time, its
peak RSS (``ru_maxrss``), the extraction's counts and a digest of the output tables. The counts
must equal what the generator wrote (and the digests must agree across engines on one file):
otherwise a ``MISMATCH`` line says what differs and the exit status is 1. Timing and RSS
targets are reported, never enforced: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from generate import Generated, Shape, ensure, write_whitelist
from measure import EXAMPLE, EXAMPLE_CODES, compile_mrfbatch
from peer import PEER, PEER_VERSION, ensure_peer
from report import EXTRACT_ALL, print_report, short
from targets import CLI_LABEL, PEER_LABEL, Row

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MEASURE = BENCH / "measure.py"


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
        self.peer_venv = self.data / "peer-venv"
        self.peer_missing: str | None = None  # why the peer cannot run here
        self.startup_runs: list[float] = []  # wall seconds of the start-up passes

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
        # what cms-mrf-extractor reads too: no numeric billing codes, no float ids
        mb = self.extract_all_mb
        self._add("X", Shape(mb, a.seed, a.refs, a.indent, a.crlf, quirks=False, float_ids=False))
        self._add("Y", Shape(mb, a.seed, a.refs, items="small-items", float_ids=False))
        _progress("mrfbatch's modules compiled to bytecode, as pip does at install ...")
        compile_mrfbatch()
        _progress(f"{PEER} {PEER_VERSION} in {short(str(self.peer_venv))} ...")
        why = ensure_peer(self.peer_venv)
        if why:
            self.peer_missing = f"{PEER} {PEER_VERSION} could not be installed: {why}"

    @property
    def extract_all_mb(self) -> float:
        a = self.args
        return float(a.extract_all_mb) if a.extract_all_mb is not None else min(a.mb, 200.0)

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
        self,
        kind: str,
        letter: str,
        engine: str | None = None,
        digest: bool = True,
        extra: tuple[str, ...] = (),
    ) -> list[str]:
        cmd = [sys.executable, str(MEASURE), kind, str(self.files[letter].path)]
        out = self.out / f"{engine}-{letter}"
        if kind == "scan":
            cmd += ["--whitelist", str(self.whitelist)]
        elif kind == "cli":
            cmd += ["--tool", str(engine), "--out", str(out), "--peer-venv", str(self.peer_venv)]
        elif engine:
            chosen = ["--all"] if "--all" in extra else ["--whitelist", str(self.whitelist)]
            cmd += ["--engine", engine, *chosen, "--out", str(out)]
            cmd += [x for x in extra if x != "--all"]
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

    def measure(
        self,
        label: str,
        kind: str,
        letter: str,
        engine: str | None = None,
        extra: tuple[str, ...] = (),
        runs: int = 1,
    ) -> None:
        """Run one measurement `--repeat` times (at least `runs`); keep the fastest (and the
        highest peak RSS)."""
        cmd = self._command(kind, letter, engine, extra=extra)
        best: dict[str, Any] | None = None
        for _ in range(max(self.args.repeat, runs)):
            _progress(f"{label} on {letter} ...")
            result = self._run(cmd)
            if result is None:
                return
            if result["skipped"]:
                self.notes.append(f"{label}: skipped: {result['skipped']}")
                return
            if engine == PEER and result["status"] != "success":
                self.notes.append(f"{label} on {letter} failed: {result['error']}; no row")
                return
            if best is None or result["seconds"] < best["seconds"]:
                peak = max(result["peak_rss_mb"], best["peak_rss_mb"] if best else 0)
                best = {**result, "peak_rss_mb": peak}
        assert best is not None
        _progress(f"  {best['seconds']:.2f} s")
        self.rows.append(Row(label, letter, best))
        if kind == "scan":
            self._check_scan(label, letter, best, cmd)
        elif engine == PEER:
            self._check_peer(label, letter, best)
        elif engine:
            self._check(label, letter, best, cmd, every_item="--all" in extra or kind == "cli")
        shutil.rmtree(self.out, ignore_errors=True)

    def start_up(self, runs: int = 3) -> None:
        """`python -m mrfbatch.run_extraction` on the bundled example: best wall of `runs`."""
        out = self.out / "start-up"
        cmd = [sys.executable, "-m", "mrfbatch.run_extraction", "--url", str(EXAMPLE),
               "--cpt-whitelist", str(EXAMPLE_CODES), "--output-dir", str(out), "-q"]  # fmt: skip
        for i in range(runs):
            _progress(f"start-up, pass {i + 1} ...")
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-15:])
                self.problems.append(f"FAILED (exit {done.returncode}): {shlex.join(cmd)}\n{tail}")
                return
            self.startup_runs.append(wall)
        _progress(f"  {min(self.startup_runs):.3f} s")
        shutil.rmtree(out, ignore_errors=True)

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
            self._check(f"{label} ({letter})", letter, r, cmd, every_item=False)
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

    def _check(
        self, label: str, letter: str, r: dict[str, Any], cmd: list[str], every_item: bool
    ) -> None:
        """Counts against the generator's expectation (`every_item`: an extraction with no
        whitelist); digests against other engines."""
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
                ("items_matched", "items_matched", exp.items if every_item else exp.items_matched),
                ("rate_rows", "rate_rows", exp.all_rate_rows if every_item else exp.rate_rows),
                (
                    "provider_rows",
                    "provider_rows",
                    exp.all_provider_rows if every_item else exp.provider_rows,
                ),
                ("bytes_decoded", "json_bytes", exp.json_bytes),
            )  # fmt: skip
            if r[key] != want
        ]
        got, want = r["rate_rows_by_code"], exp.rate_rows_by_code
        if every_item:  # the generator counts rows per code of the whitelist only
            got = want = {}
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

    def _check_peer(self, label: str, letter: str, r: dict[str, Any]) -> None:
        """The peer's rows (one per in_network item in nr, one per provider reference in pr)
        against the generator's counts: a note, never a failure of the benchmark."""
        exp = self.files[letter].expected
        got = r["tool_rows"]
        want = {"nr": exp.items, "pr": exp.provider_references}
        verdict = "as the generator wrote" if got == want else f"but the generator wrote {want}"
        self.notes.append(
            f"{label} on {letter}: {got.get('nr', 0):,} nr rows (one per in_network item, "
            f"rates and prices nested in it) and {got.get('pr', 0):,} pr rows (one per "
            f"provider_references entry), {verdict}"
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


def _generate_command(g: Generated) -> str:
    """The command that writes the file `g` again (and its whitelist)."""
    s = g.shape
    cmd = [short(sys.executable), "bench/generate.py", "--mb", f"{s.mb:g}", "--seed", str(s.seed)]
    cmd += ["--refs", s.refs, "--indent", str(s.indent)]
    cmd += ["--crlf"] * s.crlf + ["--no-quirks"] * (not s.quirks)
    cmd += [
        "--out",
        short(str(g.path)),
        "--whitelist",
        short(str(g.path.parent / "whitelist.txt")),
    ]
    return shlex.join(cmd)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


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
    p.add_argument(
        "--extract-all-mb",
        type=float,
        help="size of files X and Y, extracted whole (default: --mb up to 200, else 200)",
    )
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
    bench.measure(
        "(c) fast engine, --validate full", "extract", "A", "fast", ("--validate", "full")
    )
    bench.measure("(d) fast engine, threads=2", "extract", "A", "fast-threads2")
    if "S" in bench.files and not bench.same("S", "R"):
        bench.measure("(c) fast engine", "extract", "S", "fast")
    bench.measure_pair("(e) fast engine, 2 processes", "A", "B")
    bench.measure("(f) fast engine, no rows built", "scan", "A")
    for letter in EXTRACT_ALL:
        for engine in ("fast", "reference"):
            bench.measure(
                f"(g) extract all, {engine} engine", "extract", letter, engine, ("--all",)
            )
        # Whole processes of both tools, best of 3 each: one run of either moved by 10-15 %
        # between runs here, which decided the goal's verdict.
        bench.measure(CLI_LABEL, "cli", letter, "mrfbatch", runs=3)
        if bench.peer_missing is None:
            bench.measure(PEER_LABEL, "cli", letter, PEER, runs=3)
    bench.start_up()
    for letter in dict.fromkeys(("A", "R")):  # the limit again: the faster of the two counts
        if letter == "A" or not bench.same("A", letter):
            bench.measure("(a) isal decompression, again", "isal", letter)
    print_report(bench, started)
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
