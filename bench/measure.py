"""One benchmark measurement, in a fresh process so that its peak RSS is its own.

Prints one JSON object on stdout (see :class:`Measurement`). ``bench/run.py`` calls it; run it
by hand to reproduce a single row::

    python bench/measure.py isal bench/data/in-network-20mb-seed1-refsbefore-compact.json.gz
    python bench/measure.py extract FILE --engine fast --whitelist bench/data/whitelist.txt \\
        --out /tmp/bench-out
    python bench/measure.py scan FILE --whitelist bench/data/whitelist.txt
    python bench/measure.py extract FILE --engine fast --all --out /tmp/bench-out
    python bench/measure.py extract FILE --engine fast --all --validate full --out /tmp/bench-out
    python bench/measure.py cli FILE --tool mrfbatch --out /tmp/bench-cli
    python bench/measure.py cli FILE --tool cms-mrf-extractor --peer-venv bench/data/peer-venv \
        --out /tmp/bench-peer

``--all`` extracts every item (no whitelist), as a run without ``cpt_whitelist`` does.
``extract`` first runs one untimed extraction of ``examples/in-network-sample.json.gz`` with the
same engine and whitelist setting (``--no-warm-up`` skips it), so that the timed run is the
steady state: the imports a first extraction does late (pyarrow.parquet) and its first-call
set-up are not in it. ``extract`` and ``scan`` set their process up as the extraction commands
do (``mrfbatch.lean.set_up``). ``--validate full`` passes
``ExtractionOptions(validate="full")`` where that option exists, else reports ``skipped``.

``cli`` times a whole command in a child process, start-up included (wall clock, and the
child's CPU time and peak RSS from ``RUSAGE_CHILDREN``): ``python -m mrfbatch.run_extraction``
with no whitelist, or cms-mrf-extractor's ``mrf-extract`` from its own virtual environment
(``bench/peer.py``) on a folder holding only a symbolic link to FILE (it takes a folder of
``.json``/``.gz``/``.zip`` files). The JSON bytes are counted afterwards, untimed.

Engines: ``reference``, ``fast`` (names given to ``run_extraction``), and ``fast-threads2``
(``engine=FastEngine(threads=2)`` from ``mrfbatch.engines.fast``). A measurement that cannot
run in this checkout (no fast engine yet, no ``threads`` argument) reports ``skipped`` with
the reason instead of failing.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINES = ("reference", "fast", "fast-threads2")
TOOLS = ("mrfbatch", "cms-mrf-extractor")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "in-network-sample.json.gz"  # the warm-up's file
EXAMPLE_CODES = ROOT / "examples" / "codes.txt"


def compile_mrfbatch() -> None:
    """Compile mrfbatch's modules to bytecode, as pip does when it installs a package (the
    peer's were, in its venv). An editable install that may not write bytecode (the development
    machine sets PYTHONDONTWRITEBYTECODE) would compile them at every start instead: 0.03 s of
    each process, which a user's install does not pay."""
    if not compileall.compile_dir(ROOT / "src" / "mrfbatch", quiet=1):
        raise RuntimeError(f"compileall failed on {ROOT / 'src' / 'mrfbatch'}")


@dataclass
class Measurement:
    """The result of one measurement; `json_bytes` is the uncompressed JSON it went through."""

    kind: str
    engine: str | None = None
    engine_reported: str | None = None  # the engine name in the extraction's status
    skipped: str | None = None  # why it could not run here
    status: str | None = None  # the extraction's status ("success" or "failed")
    error: str | None = None
    seconds: float = 0.0
    started: float = 0.0  # wall clock (time.time()), to combine concurrent processes
    finished: float = 0.0
    json_bytes: int = 0
    items_seen: int = 0
    items_matched: int = 0
    rate_rows: int = 0
    provider_rows: int = 0
    cpu_seconds: float = 0.0  # user + system time of the measured work, all threads
    machine_cpu_seconds: float = 0.0  # busy time of all CPUs of the machine meanwhile
    baseline_rss_mb: float = 0.0  # after imports, before the measured work
    peak_rss_mb: float = 0.0  # resource.getrusage(RUSAGE_SELF).ru_maxrss
    rate_rows_by_code: dict[str, int] = field(default_factory=dict)
    digest: str | None = None  # SHA-256 over the sorted rows of both tables
    code: str | None = None  # fingerprint of the mrfbatch sources this process imported
    warm_up_seconds: float = 0.0  # the untimed first extraction of the bundled example
    validate: str | None = None  # ExtractionOptions(validate=...) when given
    tool_rows: dict[str, int] = field(default_factory=dict)  # rows per table a command reported
    command: list[str] = field(default_factory=list)  # what `cli` ran


def code_fingerprint() -> str:
    """12 hex digits of SHA-256 over the mrfbatch package's .py files, as they are now."""
    import mrfbatch

    root = Path(mrfbatch.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _rss_mb(field_name: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine since boot, from /proc/stat (0 where absent)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@contextlib.contextmanager
def _timed(m: Measurement) -> Iterator[None]:
    """Record in `m` the block's start and end, its wall, CPU and machine-CPU seconds, and the
    RSS before it and at its peak."""
    m.baseline_rss_mb = round(_rss_mb(), 1)
    m.started = time.time()
    t0 = time.perf_counter()
    cpu0, machine0 = _cpu_seconds(), _machine_cpu_seconds()
    yield
    m.seconds = time.perf_counter() - t0
    m.cpu_seconds = _cpu_seconds() - cpu0
    m.machine_cpu_seconds = _machine_cpu_seconds() - machine0
    m.finished = time.time()
    m.peak_rss_mb = round(_peak_rss_mb(), 1)


def decompress(path: Path, min_seconds: float = 1.0) -> Measurement:
    """Inflate a gzip file with ISA-L (see `_inflate`) and count the bytes: the speed limit.

    Small files are inflated again until `min_seconds` have passed; `seconds` is per pass.
    """
    m = Measurement(kind="isal")
    passes = 0
    with _timed(m):
        t0 = time.perf_counter()
        while True:
            m.json_bytes = _inflate(path)
            passes += 1
            if time.perf_counter() - t0 >= min_seconds:
                break
    m.seconds /= passes
    m.cpu_seconds /= passes
    m.machine_cpu_seconds /= passes
    return m


def _inflate(path: Path) -> int:
    """Inflate as the engines' decompression does (`mrfbatch.compression._Gunzip`): python-isal's
    gzip reader, C throughout, reading CHUNK compressed bytes at a time and inflating into one
    reused buffer of the engines' chunk size. It is the fastest way to ISA-L here: the
    decompressor object that hands out a new bytes object per call (the engines' way before)
    took 5-10 % longer on the bench's files."""
    from isal import isal_zlib

    from mrfbatch.compression import CHUNK
    from mrfbatch.engines.chunks import CHUNK as SIZE

    total = 0
    buffer = bytearray(SIZE)
    with path.open("rb", buffering=0) as f, memoryview(buffer) as view:
        reader = isal_zlib._GzipReader(f, CHUNK)
        while n := reader.readinto(view):
            total += n
    return total


def scan_bound(path: Path, whitelist: Path) -> Measurement:
    """The fast engine with a handler that builds no rows (`scan.NullHandler`): inflating and
    validating alone, the floor under any extraction with this engine's design."""
    from scan import NullHandler

    from mrfbatch.compression import DecodedStream
    from mrfbatch.engines.fast import FastEngine
    from mrfbatch.transport import open_source
    from mrfbatch.whitelist import load_whitelist

    m = Measurement(kind="scan", engine="fast", code=code_fingerprint())
    handler = NullHandler(set(load_whitelist(str(whitelist))))
    with _timed(m), open_source(str(path)) as raw:
        stream = DecodedStream(raw)
        FastEngine().scan(stream, handler)  # type: ignore[arg-type]
    m.status = "success"
    m.json_bytes = stream.bytes_decoded
    m.items_matched = handler.matched
    return m


def _engine_argument(name: str) -> tuple[Any, str | None]:
    """What to pass as run_extraction's `engine`, or (None, why not)."""
    from mrfbatch.engines import get_engine
    from mrfbatch.errors import MrfError

    if name == "reference":
        return "reference", None
    try:
        get_engine("fast")
    except (MrfError, ImportError) as exc:
        return None, f"the fast engine is not available: {exc}"
    if name == "fast":
        return "fast", None
    try:
        from mrfbatch.engines.fast import FastEngine

        return FastEngine(threads=2), None
    except (ImportError, TypeError) as exc:
        return None, f"FastEngine(threads=2) is not available: {type(exc).__name__}: {exc}"


def validate_option() -> bool:
    """Whether ExtractionOptions has the `validate` option (issue #18) in this checkout."""
    from mrfbatch.options import ExtractionOptions

    return "validate" in {f.name for f in dataclasses.fields(ExtractionOptions)}


def as_an_extraction_process() -> None:
    """Set this process up as mrfbatch's extraction commands set theirs up, before pyarrow is
    imported (mrfbatch/lean.py: numpy and pandas kept out, Arrow's allocator the C library's),
    where this checkout has that."""
    try:
        from mrfbatch import lean
    except ImportError:
        return
    set_up = getattr(lean, "set_up", None) or getattr(lean, "keep_out", None)
    if set_up is not None:
        set_up()


def _warm_up(options: Any, whitelist: Path | None, out: Path) -> float:
    """One extraction of the bundled example with `options`, untimed; its seconds."""
    from mrfbatch.run_extraction import run_extraction

    folder = out.with_name(out.name + "-warm-up")
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    run_extraction(str(EXAMPLE), folder, options, network_id="warm-up",
                   cpt_whitelist=EXAMPLE_CODES if whitelist else None)  # fmt: skip
    seconds = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def extract(
    path: Path,
    engine: str,
    whitelist: Path | None,
    out: Path,
    digest: bool,
    validate: str | None = None,
    warm_up: bool = True,
) -> Measurement:
    """Time run_extraction on `path` (every item when `whitelist` is None), after one untimed
    warm-up extraction; then (outside the timing and the RSS) digest the tables."""
    from mrfbatch.errors import UsageError
    from mrfbatch.options import ExtractionOptions
    from mrfbatch.run_extraction import run_extraction

    m = Measurement(kind="extract", engine=engine, validate=validate)
    argument, why_not = _engine_argument(engine)  # imports the engines
    m.code = code_fingerprint()
    if why_not:
        m.skipped = why_not
        return m
    extra: dict[str, Any] = {}
    if validate is not None:
        if not validate_option():
            m.skipped = "ExtractionOptions has no validate option in this checkout (yet)"
            return m
        extra["validate"] = validate
    shutil.rmtree(out, ignore_errors=True)
    try:
        options = ExtractionOptions(engine=argument, **extra)
        if warm_up:
            m.warm_up_seconds = round(_warm_up(options, whitelist, out), 3)
        with _timed(m):
            result = run_extraction(str(path), out, options, network_id="bench",
                                    cpt_whitelist=whitelist)  # fmt: skip
    except (UsageError, TypeError) as exc:
        if engine != "fast-threads2":
            raise
        m.skipped = f"run_extraction does not accept an engine object: {exc}"
        return m
    m.status, m.error = result.status, result.error
    m.engine_reported = result.engine
    threads = getattr(argument, "threads", None)
    if threads is not None:
        m.engine_reported += f" (threads={threads})"
    m.json_bytes = result.bytes_decoded
    m.items_seen, m.items_matched = result.items_seen, result.items_matched
    m.rate_rows, m.provider_rows = result.rate_rows, result.provider_rows
    if result.ok:
        m.rate_rows_by_code = _rows_by_code(out / "bench" / "rates.parquet")
        if digest:
            m.digest = _digest(out / "bench")
    return m


def _children_usage() -> tuple[float, float]:
    """CPU seconds of the waited-for children so far, and the largest one's peak RSS (MB)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def tool_command(tool: str, path: Path, out: Path, peer_venv: Path | None) -> list[str]:
    """The command `cli` times: mrfbatch's single-file command with no whitelist, or
    cms-mrf-extractor on `out`/source/, a folder holding only a link to `path`."""
    if tool == "mrfbatch":
        return [sys.executable, "-m", "mrfbatch.run_extraction", "--url", str(path),
                "--output-dir", str(out / "output"), "--network-id", "bench", "-q"]  # fmt: skip
    assert peer_venv is not None
    return [str(peer_venv / "bin" / "mrf-extract"), str(out / "source"),
            "-o", str(out / "output"), "--json", "-q"]  # fmt: skip


def run_command(path: Path, tool: str, out: Path, peer_venv: Path | None) -> Measurement:
    """Time one whole extraction command in a child process, start-up included."""
    import subprocess

    m = Measurement(kind="cli", engine=tool)
    shutil.rmtree(out, ignore_errors=True)
    (out / "source").mkdir(parents=True)
    (out / "source" / path.name).symlink_to(path.resolve())
    m.command = tool_command(tool, path, out, peer_venv)
    cpu0, _ = _children_usage()
    machine0 = _machine_cpu_seconds()
    m.started = time.time()
    t0 = time.perf_counter()
    done = subprocess.run(m.command, capture_output=True, text=True)
    m.seconds = time.perf_counter() - t0
    m.finished = time.time()
    cpu1, peak = _children_usage()
    m.cpu_seconds = cpu1 - cpu0
    m.machine_cpu_seconds = _machine_cpu_seconds() - machine0
    m.peak_rss_mb = round(peak, 1)
    m.json_bytes = _inflate(path)
    if done.returncode != 0:
        m.status = "failed"
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        m.error = f"exit {done.returncode}: {tail[0]}"
        return m
    m.status = "success"
    if tool == "mrfbatch":
        status = json.loads((out / "output" / "bench" / "status.json").read_text())
        m.status, m.error = status["status"], status["error"]
        m.items_seen, m.items_matched = status["items_seen"], status["items_matched"]
        m.rate_rows, m.provider_rows = status["rate_rows"], status["provider_rows"]
        m.code = code_fingerprint()
    else:
        summary = json.loads(done.stdout)
        for tables in summary["files"].values():
            for kind, counts in tables.items():
                m.tool_rows[kind] = m.tool_rows.get(kind, 0) + counts["rows"]
    return m


def _rows_by_code(rates: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    codes = pq.read_table(rates, columns=["billing_code"]).column(0).to_pylist()
    counts = Counter(str(c).strip().upper() for c in codes)
    return dict(sorted(counts.items()))


def _digest(folder: Path) -> str:
    """SHA-256 over the sorted canonical JSON rows of rates and providers (order-independent)."""
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for name in ("rates", "providers"):
        table = pq.read_table(folder / f"{name}.parquet")
        rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
        h.update(f"{name}:{len(rows)}\n".encode())
        for row in rows:
            h.update(row.encode() + b"\n")
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="One benchmark measurement; prints JSON.")
    sub = p.add_subparsers(dest="kind", required=True)
    sub.add_parser("isal", help="ISA-L decompression alone").add_argument("path", type=Path)
    e = sub.add_parser("extract", help="run_extraction with one engine")
    e.add_argument("path", type=Path)
    e.add_argument("--engine", choices=ENGINES, required=True)
    chosen = e.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--whitelist", type=Path)
    chosen.add_argument("--all", action="store_true", help="no whitelist: extract every item")
    e.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    e.add_argument("--no-digest", action="store_true", help="skip hashing the tables")
    e.add_argument("--validate", choices=("structural", "full"), help="ExtractionOptions(validate)")
    e.add_argument("--no-warm-up", action="store_true", help="no untimed first extraction")
    c = sub.add_parser("cli", help="a whole extraction command, start-up included")
    c.add_argument("path", type=Path)
    c.add_argument("--tool", choices=TOOLS, required=True)
    c.add_argument("--out", type=Path, required=True, help="work folder (replaced)")
    c.add_argument("--peer-venv", type=Path, help="cms-mrf-extractor's virtual environment")
    s = sub.add_parser("scan", help="the fast engine building no rows: the floor under it")
    s.add_argument("path", type=Path)
    s.add_argument("--whitelist", type=Path, required=True)
    args = p.parse_args(argv)
    if args.kind in ("extract", "scan"):
        as_an_extraction_process()
    if args.kind == "isal":
        m = decompress(args.path)
    elif args.kind == "scan":
        m = scan_bound(args.path, args.whitelist)
    elif args.kind == "cli":
        if args.tool == "cms-mrf-extractor" and args.peer_venv is None:
            p.error("--tool cms-mrf-extractor needs --peer-venv")
        m = run_command(args.path, args.tool, args.out, args.peer_venv)
    else:
        m = extract(args.path, args.engine, args.whitelist, args.out, not args.no_digest,
                    args.validate, not args.no_warm_up)  # fmt: skip
    print(json.dumps(dataclasses.asdict(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
