"""The workflow at scale: per-task overhead, no-op rerun, dry run of a large index, start-up.

Run by ``make bench`` (issue #18's sizes) and ``make bench-smoke`` (small sizes)::

    python bench/workflow_scale.py --tasks 400 --index-files 20000

What it does, in a temporary folder (``--keep`` leaves it):

1. writes ``--tasks`` tiny in-network files (``tests/support/synth.py``, one seed each), serves
   them on 127.0.0.1 (``tests/support/httpserver.py``) and lists them in an index; runs the real
   workflow on it (``snakemake -s <checkout>/Snakefile --cores 2 --config source=index ...``)
   and times it: per-task overhead = wall x cores / tasks, beside the extraction seconds
   summed from the manifest;
2. runs the same command again, with every task done: the no-op rerun;
3. writes an index of ``--index-files`` entries (the files need not exist), runs only its
   ``tasks`` checkpoint (``snakemake results/tasks.tsv``; a dry run cannot plan the extractions
   before the checkpoint has read the index), then times ``snakemake -n`` on it;
4. times ``python -m mrfbatch.run_extraction`` on one tiny local file, best of 5.

It prints each figure beside its goal (issue #18) and whether it meets it. It never fails on a
time: it exits 1 only when something is wrong (a command failed, a task did not succeed, the
dry run did not plan every task).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # the checkout, for tests.support

from measure import compile_mrfbatch  # noqa: E402 (bench/, the script's own folder)
from tests.support.httpserver import FileServer  # noqa: E402
from tests.support.synth import SynthConfig, generate  # noqa: E402

WHITELIST = ("99213", "27447", "J1885")  # codes the synthetic files carry
OUTPUT_DIR = "results"  # config/schema.yaml's default output_dir


@dataclass
class Figure:
    """One line of the table: a measured value and its goal (at most `goal`)."""

    label: str
    value: float | None  # None: not measured (its step failed)
    goal: float
    unit: str
    how: str  # what exactly was timed


class Scale:
    """Runs the steps, collects figures and problems, prints the report."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.figures: list[Figure] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.commands: list[str] = []
        self.load_before = os.getloadavg()

    # helpers

    def snakemake(self, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
            "--cores", str(self.args.cores), *extra,
        ]  # fmt: skip

    def run(self, cmd: Sequence[str], cwd: Path, what: str) -> tuple[float, str] | None:
        """Run `cmd` in `cwd`; its wall seconds and stderr, or None (a problem noted)."""
        _progress(f"{what} ...")
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - started
        _progress(f"  {wall:.2f} s")
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            self.problems.append(
                f"FAILED (exit {done.returncode}): {what}: cd {cwd} && {shlex.join(cmd)}\n{tail}"
            )
            return None
        return wall, done.stdout + done.stderr

    # steps

    def workflow_runs(self, server: FileServer) -> None:
        """Steps 1 and 2: a first run over `--tasks` files served over HTTP, then a rerun."""
        n = self.args.tasks
        folder = self.work / "run"
        folder.mkdir()
        _write_whitelist(folder / "codes.txt")
        urls = []
        for i in range(n):
            document = generate(SynthConfig(seed=i, items=4)).to_bytes()
            urls.append(server.add(f"/files/net-{i:05d}.json.gz", gzip.compress(document)))
        _write_index(folder / "index.json", urls, self.args.plans_per_file)
        config = ["source=index", "input=index.json", "cpt_whitelist=codes.txt"]
        cmd = self.snakemake("--config", *config)
        self.commands.append(f"cd {folder} && {shlex.join(cmd)}")
        first = self.run(cmd, folder, f"first run, {n} tasks")
        if first is not None and self.args.plans_per_file > 1:
            size = (folder / "index.json").stat().st_size / 1e6
            self.notes.append(
                f"first run's index: {size:.1f} MB, {self.args.plans_per_file} plans listing "
                f"every file ({self.args.plans_per_file * n:,} plan-file pairs); output "
                f"{_size_mb(folder / OUTPUT_DIR):.1f} MB"
            )
        extraction = None
        if first is not None:
            extraction = self._check_manifest(folder / OUTPUT_DIR / "manifest.json", n)
        overhead = first[0] * self.args.cores / n if first else None
        if first and overhead is not None and extraction is not None:
            self.notes.append(
                f"first run: {first[0]:.1f} s wall for {n} tasks; extractions "
                f"{extraction:.1f} s summed from the manifest ({extraction / n:.3f} s each): "
                f"{overhead - extraction / n:.2f} core-s per task beyond extraction"
            )
        self.figures.append(
            Figure(
                "per-task overhead",
                overhead,
                0.4,
                "core-s",
                f"first run: wall x {self.args.cores} cores / {n} tasks",
            )
        )
        again = self.run(cmd, folder, "no-op rerun")
        if again is not None and (line := re.search(r"^\[\d+/\d+\] .*$", again[1], re.M)):
            self.problems.append(f"no-op rerun: an extraction ran again: {line.group(0)}")
        self.figures.append(
            Figure(
                "no-op rerun",
                again[0] if again else None,
                5.0,
                "s",
                f"the same command again, {n} tasks done: wall",
            )
        )

    def dry_run(self) -> None:
        """Step 3: `snakemake -n` on an index of `--index-files` entries."""
        m = self.args.index_files
        folder = self.work / "dry"
        folder.mkdir()
        _write_whitelist(folder / "codes.txt")
        # Never fetched: a dry run only plans.
        urls = [f"http://127.0.0.1:9/files/net-{i:05d}.json.gz" for i in range(m)]
        _write_index(folder / "index.json", urls)
        config = ["--config", "source=index", "input=index.json", "cpt_whitelist=codes.txt"]
        checkpoint = self.snakemake(f"{OUTPUT_DIR}/tasks.tsv", *config)
        dry = self.snakemake("-n", *config)
        self.commands.append(f"cd {folder} && {shlex.join(checkpoint)} && time {shlex.join(dry)}")
        if self.run(checkpoint, folder, f"tasks checkpoint, {m} entries") is None:
            self.figures.append(Figure("dry run", None, 25.0, "s", ""))
            return
        result = self.run(dry, folder, f"dry run, {m} tasks")
        if result is not None:
            planned = _planned_extractions(result[1])
            if planned != m:
                self.problems.append(
                    f"dry run: planned {planned} extract jobs, expected {m}\n"
                    + "\n".join(result[1].strip().splitlines()[-15:])
                )
        self.figures.append(
            Figure(
                "dry run",
                result[0] if result else None,
                25.0,
                "s",
                f"snakemake -n, {m}-file index, after its tasks checkpoint ran: wall",
            )
        )

    def start_up(self) -> None:
        """Step 4: one tiny extraction in a fresh process, best of 5."""
        folder = self.work / "startup"
        folder.mkdir()
        _write_whitelist(folder / "codes.txt")
        source = folder / "tiny.json.gz"
        source.write_bytes(gzip.compress(generate(SynthConfig(seed=1, items=4)).to_bytes()))
        cmd = [
            sys.executable, "-m", "mrfbatch.run_extraction", "--url", str(source),
            "--cpt-whitelist", "codes.txt", "--output-dir", "out",
        ]  # fmt: skip
        self.commands.append(f"cd {folder} && {shlex.join(cmd)}")
        best = None
        for i in range(5):
            result = self.run(cmd, folder, f"run_extraction start-up, pass {i + 1}")
            if result is None:
                break
            best = result[0] if best is None else min(best, result[0])
        self.figures.append(
            Figure("start-up", best, 0.25, "s", "python -m mrfbatch.run_extraction, best of 5")
        )

    def _check_manifest(self, path: Path, n: int) -> float | None:
        """The extraction seconds summed, once every task succeeded; else a problem."""
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            self.problems.append(f"FAILED: no readable manifest at {path}: {exc}")
            return None
        summary = manifest.get("summary", {})
        if manifest.get("total_tasks") != n or summary.get("successful") != n:
            self.problems.append(
                f"FAILED: {path}: total_tasks {manifest.get('total_tasks')}, successful "
                f"{summary.get('successful')}, expected {n} and {n}"
            )
            return None
        return float(sum(e["duration_seconds"] or 0 for e in manifest["extractions"]))

    # report

    def report(self, started: float) -> None:
        a = self.args
        before = ", ".join(f"{x:.2f}" for x in self.load_before)
        after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print()
        print(
            f"mrfbatch workflow at scale: {a.tasks} tasks, a {a.index_files}-file index, "
            f"--cores {a.cores}; {time.monotonic() - started:.0f} s in all"
        )
        print(
            f"load (1, 5, 15 min) before the run {before}, after it {after}; nproc "
            f"{os.cpu_count()}: the run itself keeps {a.cores} cores busy, so a 1-min load above "
            f"{a.cores} after it means other work shared the machine"
        )
        print()
        head = ("", "measured", "goal", "meets", "what was timed")
        lines = [head]
        for f in self.figures:
            # three decimals below 1, so that a figure shown equal to its goal meets it
            digits = 3 if f.value is not None and f.value < 1 else 2
            value = "-" if f.value is None else f"{f.value:.{digits}f} {f.unit}"
            meets = "-" if f.value is None else ("yes" if f.value <= f.goal else "no")
            lines.append((f.label, value, f"<= {f.goal:g} {f.unit}", meets, f.how))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        print()
        for note in self.notes:
            print(note)
        print("reproduce (PYTHONPATH as for this run):")
        for command in self.commands:
            print(f"  {command}")
        for problem in self.problems:
            print()
            print(problem)
        if not self.problems:
            print(f"checks: all {a.tasks} tasks succeeded; the dry run planned {a.index_files}")


def _write_whitelist(path: Path) -> None:
    path.write_text("\n".join(WHITELIST) + "\n")


def _write_index(path: Path, urls: list[str], plans: int = 1) -> None:
    """A table of contents listing every URL as an in-network file of `plans` plans: one
    reporting structure per three plans (an employer's, say), each listing every URL, as large
    payers' indexes list their network files under every plan that uses them."""
    files = [{"description": "in-network file", "location": url} for url in urls]
    structures = []
    for first in range(0, plans, 3):
        employer = [
            {
                "plan_name": f"Bench PPO {i}" if i else "Bench PPO",
                "plan_id": str(i + 1),
                "plan_id_type": "ein",
                "plan_market_type": "group",
            }
            for i in range(first, min(first + 3, plans))
        ]
        structures.append({"reporting_plans": employer, "in_network_files": files})
    document = {
        "reporting_entity_name": "Bench Health",
        "reporting_entity_type": "health insurance issuer",
        "last_updated_on": "2024-05-01",
        "version": "1.0.0",
        "reporting_structure": structures,
    }
    path.write_text(json.dumps(document))


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _planned_extractions(output: str) -> int:
    """How many extractions a dry run planned: the console's `dry run: N of M files would be
    extracted` line, or Snakemake's job table (`extract  20000`) with --config console=verbose."""
    if match := re.search(r"dry run: ([\d,]+) of [\d,]+ files? would be extracted", output):
        return int(match.group(1).replace(",", ""))
    if match := re.search(r"^extract\s+(\d+)$", output, re.MULTILINE):
        return int(match.group(1))
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=400, help="files of the timed run (400)")
    p.add_argument("--index-files", type=int, default=20_000, help="entries of the dry run's index")
    p.add_argument(
        "--plans-per-file",
        type=int,
        default=1,
        help="plans the first run's index lists every file under (1)",
    )
    p.add_argument("--cores", type=int, default=2, help="snakemake --cores (2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = p.parse_args(argv)
    if min(args.tasks, args.index_files, args.cores, args.plans_per_file) < 1:
        p.error("--tasks, --index-files, --plans-per-file and --cores must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mrfbatch-scale-"))
    scale = Scale(args, work)
    compile_mrfbatch()  # as pip does at install (bench/measure.py)
    server = FileServer().start()
    try:
        scale.workflow_runs(server)
        scale.dry_run()
        scale.start_up()
    finally:
        server.close()
        if args.keep:
            _progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    scale.report(started)
    return 1 if scale.problems else 0


if __name__ == "__main__":
    sys.exit(main())
