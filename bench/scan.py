"""The fast engine's C scanner alone (mrfbatch._jsonscan), without rows.

    python bench/scan.py bench/data/in-network-200mb-seed1-refsbefore-compact.json.gz

Prints MB/s (10^6 bytes of JSON per second; best of --repeat) of:

- `validate`: one whole decompressed file in memory, validated as a single value by
  `scan_value`: in full (`validate: full`), and skimmed whole (`skim=1`: the structural check
  of a skipped value, _jsonscan_skim.c) by each implementation this CPU runs.
- `engine`: `FastEngine.scan` over the gzip file with a handler that does nothing but answer
  `wants` from the benchmark whitelist, per number of threads: the engine's own cost, inflating
  included, without building rows. `inflate` is ISA-L alone, the limit.

Runs are interleaved (threads=1, threads=2, threads=1, ...) so that a busy machine slows both
alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isal import igzip

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mrfbatch import _jsonscan  # noqa: E402
from mrfbatch.compression import DecodedStream  # noqa: E402
from mrfbatch.engines import Element  # noqa: E402
from mrfbatch.engines.fast import FastEngine  # noqa: E402
from mrfbatch.transport import open_source  # noqa: E402
from mrfbatch.whitelist import load_whitelist, normalize_code  # noqa: E402

MB = 1e6


class NullHandler:
    """A DocumentHandler that keeps nothing: only `wants` does work."""

    def __init__(self, whitelist: set[str]):
        self.whitelist = whitelist
        self.matched = 0

    def top_level_key(self, key: str) -> bool:
        return True

    def header(self, key: str, value: Any) -> None:
        pass

    def provider_references(self, text: bytes | bytearray, found: list[Element]) -> None:
        pass  # none kept

    def in_network_item(self, item: object) -> None:
        self.matched += 1

    def wants_all(self) -> bool:
        return False  # the skip path is what this measures

    def in_network_items(self, text: bytearray, found: list[Element]) -> None:
        self.matched += len(found)

    def wants(self, billing_code: object) -> bool:
        return billing_code is not None and normalize_code(billing_code) in self.whitelist

    def skipped_item(self) -> None:
        pass


def timed(run: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    run(*args)
    return time.perf_counter() - started


def inflate(path: Path) -> int:
    total = 0
    with igzip.open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            total += len(chunk)
    return total


def engine_run(path: Path, whitelist: set[str], threads: int) -> int:
    handler = NullHandler(whitelist)
    with open_source(str(path)) as raw:
        FastEngine(threads=threads).scan(DecodedStream(raw), handler)  # type: ignore[arg-type]
    return handler.matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a .json.gz file from bench/data")
    parser.add_argument("--whitelist", type=Path, default=ROOT / "bench/data/whitelist.txt")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = igzip.decompress(args.file.read_bytes())
    size = len(data) / MB
    times: dict[str, list[float]] = {"full scan": []}
    impls = _jsonscan.skim_implementations()
    times.update({f"skim, {impl}": [] for impl in impls})
    used = _jsonscan.use_skim(impls[-1])
    for _ in range(args.repeat):
        times["full scan"].append(timed(_jsonscan.scan_value, data, 0, True, b"billing_code"))
        for impl in impls:
            _jsonscan.use_skim(impl)
            times[f"skim, {impl}"].append(timed(_jsonscan.scan_value, data, 0, True, None, None, 1))
    _jsonscan.use_skim(used)
    print(f"validate {args.file.name} ({size:.0f} MB, in memory):")
    for label, seconds in times.items():
        print(f"  {label:14s} {size / min(seconds):7.0f} MB/s")
    data = b""

    whitelist = set(load_whitelist(str(args.whitelist)))
    limit = min(timed(inflate, args.file) for _ in range(args.repeat))
    print(f"engine, null handler ({size:.0f} MB of JSON):")
    print(f"  {'inflate':22s} {size / limit:7.0f} MB/s  (ISA-L alone: the limit)")
    runs = (1, 2)
    results: dict[int, list[float]] = {threads: [] for threads in runs}
    for _ in range(args.repeat):
        for threads in runs:
            results[threads].append(timed(engine_run, args.file, whitelist, threads))
    for threads, runs_seconds in results.items():
        mbps = size / min(runs_seconds)
        label = f"threads={threads}"
        print(f"  {label:22s} {mbps:7.0f} MB/s  {mbps * limit / size:.2f}x inflate")


if __name__ == "__main__":
    main()
