"""Running the real workflow in tests: Snakemake in a subprocess, and reading what it left."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import synth

ROOT = Path(__file__).resolve().parents[2]
WHITELIST = ["99213", "27447", "J1885"]
TASK_LINE = re.compile(r"\[(\d+)/(\d+)\] ([^:]+): ")


def snakemake_command(cores: int = 2) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(cores)]


def snakemake(
    workdir: Path, *config: str, cores: int = 2, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """A workflow run with `--config *config`, to its end."""
    return subprocess.run(
        [*snakemake_command(cores), "--config", *config],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def finished(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Network ids whose extraction ran in this run (the console's `[k/N] id: ...` lines)."""
    return sorted(
        match.group(3) for line in proc.stderr.splitlines() if (match := TASK_LINE.match(line))
    )


def manifest(workdir: Path, output_dir: str = "results") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / output_dir / "manifest.json").read_text())
    return data


def table(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def csv_table(path: Path, schema: pa.Schema) -> list[dict[str, Any]]:
    """The rows of a CSV table (format=csv) typed as `table` gives a Parquet one's: lists from
    their JSON arrays, numbers from their text, an empty field null. The header must be the
    schema's columns, in order."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == schema.names, reader.fieldnames
    return [{field.name: _typed(row[field.name], field.type) for field in schema} for row in rows]


def _typed(text: str, kind: pa.DataType) -> Any:
    if text == "":
        return None
    if pa.types.is_list(kind):
        return json.loads(text)
    if pa.types.is_integer(kind):
        return int(text)
    if pa.types.is_floating(kind):
        return float(text)
    return text


def synth_file(seed: int, **knobs: Any) -> synth.SynthFile:
    return synth.generate(synth.SynthConfig(seed=seed, items=12, references=5, **knobs))


class TimedLines:
    """A running command whose standard error is read line by line, each with its arrival time
    (seconds since the start)."""

    def __init__(self, command: list[str], cwd: Path):
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)
