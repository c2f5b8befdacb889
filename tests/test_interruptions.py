"""Extractions and workflow runs cut short: SIGKILL at chosen moments, a full disk, a file
size limit.

Every extraction here is a real `python -m mrfbatch.run_extraction` process reading from the
local HTTP server, every workflow a real Snakemake run. A killed one is run again: the rerun's
tables must equal a clean run's and
the generator's expectation, and it must leave no temporary file behind (it removes the killed
run's). The full disk is a real one: a small tmpfs mounted in a private mount namespace
(`unshare --mount`, as root or in a user namespace), skipped with the reason where neither is
allowed; the file size limit (RLIMIT_FSIZE) works everywhere.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from support import containers, oracle, synth
from support.httpserver import FileServer
from support.workflows import finished, manifest, snakemake, snakemake_command, synth_file

NET = "net"
FINAL = {"rates.parquet", "providers.parquet", "status.json"}
RATE = 120_000  # bytes per second of a throttled download: about 3 s for the file below
BATCH = ["--rate-batch-size", "2000", "--provider-batch-size", "500"]


@dataclass
class BigFile:
    payload: bytes  # gzip of several MB of JSON
    expected: oracle.Expected  # every item (no whitelist)
    clean: Path  # the folder of a clean run's tables, which equal `expected`


def extract_command(url: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mrfbatch.run_extraction",
        "--url",
        url,
        "--output-dir",
        str(out),
        "--network-id",
        NET,
        *BATCH,
        "-q",
        *extra,
    ]


def same_tables(folder: Path, other: Path) -> bool:
    """Both tables equal, row for row (an extraction writes rows in file order)."""
    return all(
        pq.read_table(folder / name).equals(pq.read_table(other / name))
        for name in ("rates.parquet", "providers.parquet")
    )


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    """6,000 items (6.4 MB of JSON, 340 KB of gzip, 24,000 rate rows), and a clean extraction
    whose tables equal the generator's expectation."""
    sf = synth.generate(synth.SynthConfig(seed=11, items=6000, references=300))
    payload = containers.pack(sf.to_bytes(), "gz")
    folder = tmp_path_factory.mktemp("clean")
    source = folder / "big.json.gz"
    source.write_bytes(payload)
    proc = subprocess.run(
        extract_command(str(source), folder / "out"), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    expected = sf.expected(NET)
    clean = folder / "out" / NET
    rates = pq.read_table(clean / "rates.parquet").to_pylist()
    providers = pq.read_table(clean / "providers.parquet").to_pylist()
    assert len(rates) == len(expected.rates) > 20_000
    assert oracle.canonical(rates, providers) == oracle.canonical(
        expected.rates, expected.providers
    )
    return BigFile(payload, expected, clean)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def blocked_opening_fifo(pid: int) -> bool:
    """Whether the process's main thread waits in open(2) of a FIFO for a reader."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
    except OSError:
        return False


def complete_parquet(path: Path) -> bool:
    """A closed Parquet file ends with its footer's magic."""
    try:
        with path.open("rb") as f:
            f.seek(-4, os.SEEK_END)
            return f.read() == b"PAR1"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["download", "writing-tables", "before-status"])
def test_run_extraction_sigkill_then_rerun_gives_clean_tables(
    moment: str, big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    url = http_server.add("/mrf/big.json.gz", big.payload, rate=RATE)
    route = http_server.route(url)
    out = tmp_path / "out"
    folder = out / NET
    proc = subprocess.Popen(
        extract_command(url, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pid = proc.pid
    try:
        # The spill file is made once the start-up clean-up of temporary names is over.
        wait_for(lambda: (folder / f".providers-{pid}.spill").exists(), "the extraction to start")
        rates_tmp = folder / f".rates.parquet.tmp-{pid}"
        if moment == "download":
            wait_for(lambda: route.sent > len(big.payload) // 4, "a quarter of the download")
            assert route.sent < len(big.payload), "the download was over before the kill"
        else:
            # A temporary name made a FIFO: opening it blocks until a reader comes, so the
            # process stops exactly there. The providers table is opened once every rates row
            # group but the last is written (its file has no footer yet); status.json once
            # both tables are complete, before any is renamed.
            blocked = ".providers.parquet" if moment == "writing-tables" else ".status.json"
            os.mkfifo(folder / f"{blocked}.tmp-{pid}")
            route.rate = 0
            wait_for(lambda: blocked_opening_fifo(pid), f"{blocked} to be opened")
            if moment == "writing-tables":
                assert rates_tmp.stat().st_size > 100_000 and not complete_parquet(rates_tmp)
            else:
                assert complete_parquet(rates_tmp)
                assert complete_parquet(folder / f".providers.parquet.tmp-{pid}")
        assert proc.poll() is None, "the extraction ended before it was killed"
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    left = names(folder)
    assert not left & FINAL, f"final names after the kill: {sorted(left & FINAL)}"
    assert left, "the killed run left no temporary file: it was not killed mid-way"

    route.rate = 0
    rerun = subprocess.run(extract_command(url, out), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert names(folder) == FINAL  # the killed run's temporary files are gone
    assert same_tables(folder, big.clean)
    assert pq.read_metadata(folder / "rates.parquet").num_rows == len(big.expected.rates)


# ---------------------------------------------------------------------------------------------
# A full disk: a small tmpfs in a private mount namespace
# ---------------------------------------------------------------------------------------------

# Mounts a tmpfs of $2 on $1, optionally fills it up, runs the rest, then shows the outcome:
# the command's exit status, the folder's names, status.json.
_ON_TMPFS = """
set -u
dir=$1; size=$2; fill=$3; shift 3
mount -t tmpfs -o size="$size" tmpfs "$dir" || exit 97
if [ "$fill" = yes ]; then cat /dev/zero > "$dir/filler" 2>/dev/null; fi
"$@"
echo "exit=$?"
ls -A "$dir/net"
echo "--- status"
cat "$dir/net/status.json" 2>/dev/null || true
"""


def _namespace_command() -> list[str] | str:
    """The unshare command that gives a private mount namespace, or why there is none."""
    if shutil.which("unshare") is None:
        return "no unshare command (util-linux) to make a private mount namespace"
    command = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "-r", "--mount"]
    probe = subprocess.run(
        [*command, "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$1"', "sh", "/tmp"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {probe.stderr.strip()}"
    return command


@pytest.fixture(scope="module")
def namespace() -> list[str]:
    command = _namespace_command()
    if isinstance(command, str):
        pytest.skip(command)
    return command


@dataclass
class Outcome:
    exit_status: int
    names: set[str]
    status: dict[str, Any] | None
    stderr: str


def extract_on_tmpfs(
    namespace: list[str], folder: Path, size: str, url: str, fill: bool = False
) -> Outcome:
    folder.mkdir()
    proc = subprocess.run(
        [
            *namespace,
            "sh",
            "-c",
            _ON_TMPFS,
            "sh",
            str(folder),
            size,
            "yes" if fill else "no",
            *extract_command(url, folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "exit=" in proc.stdout, proc.stdout + proc.stderr
    head, status = proc.stdout.split("--- status\n")
    lines = head.splitlines()
    return Outcome(
        int(lines[0].removeprefix("exit=")),
        set(lines[1:]),
        json.loads(status) if status.strip() else None,
        proc.stderr,
    )


@pytest.mark.slow
def test_run_extraction_disk_full_fails_and_keeps_no_table(
    namespace: list[str], big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    """128 KB: the rates table (about 310 KB) cannot be written; the status (1 KB) can."""
    url = http_server.add("/mrf/big.json.gz", big.payload)
    folder = tmp_path / "tmpfs"
    outcome = extract_on_tmpfs(namespace, folder, "128k", url)
    assert outcome.exit_status == 1
    assert outcome.names == {"status.json"}  # no table, no temporary file
    assert outcome.status is not None
    assert outcome.status["status"] == "failed"
    assert outcome.status["output_files"] == {}
    error = outcome.status["error"]
    assert error.startswith("the disk is full (No space left on device) while writing ")
    assert f"{folder}/{NET}/." in error  # the temporary file that did not fit


@pytest.mark.slow
def test_run_extraction_disk_too_full_for_the_status_leaves_nothing(
    namespace: list[str], big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    url = http_server.add("/mrf/big.json.gz", big.payload)
    outcome = extract_on_tmpfs(namespace, tmp_path / "tmpfs", "128k", url, fill=True)
    assert outcome.exit_status == 1
    assert outcome.names == set()
    assert outcome.status is None
    assert "status.json could not be written either: the disk is full" in outcome.stderr
    assert "net: failed: the disk is full (No space left on device)" in outcome.stderr


def test_run_extraction_file_size_limit_fails_and_keeps_no_table(
    big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE (Python ignores SIGXFSZ, so a write past it fails with EFBIG)."""
    url = http_server.add("/mrf/big.json.gz", big.payload)
    limit = 100_000  # the rates table is about 310 KB; the status about 1 KB

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        extract_command(url, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr
    folder = tmp_path / NET
    assert names(folder) == {"status.json"}
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed"
    assert status["error"].startswith(f"{folder}/.rates.parquet.tmp-")
    assert "reached the largest file size allowed (File too large)" in status["error"]


def test_run_extraction_failed_rerun_removes_tables_of_a_killed_publish(
    big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    """Tables under final names without a status (a run killed between its renames) are not
    trusted: a rerun removes them first, whether it succeeds or not."""
    folder = tmp_path / NET
    folder.mkdir()
    for name in (
        "rates.parquet",
        "providers.parquet",
        ".rates.parquet.tmp-1",
        ".providers-1.spill",
    ):
        (folder / name).write_bytes(b"left by a killed run")
    missing = http_server.add("/mrf/gone.json.gz", b"", status=404)
    proc = subprocess.run(
        extract_command(missing, tmp_path), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert names(folder) == {"status.json"}
    assert "HTTP 404" in json.loads((folder / "status.json").read_text())["error"]


# ---------------------------------------------------------------------------------------------
# Whole workflow runs cut short by the disk: the console says what happened, and a rerun mends
# ---------------------------------------------------------------------------------------------

RUN_FILES = ("manifest.json", "plans.parquet", "files.parquet", "mrfbatch.duckdb")


def small_run(folder: Path) -> list[str]:
    """Two small local files in a CSV; the --config of a workflow run over them."""
    for name, seed in (("a", 51), ("b", 52)):
        (folder / f"{name}.json").write_bytes(synth_file(seed).to_bytes())
    (folder / "plans.csv").write_text("file_url,plan_name\na.json,Plan A\nb.json,Plan B\n")
    return ["source=csv", "input=plans.csv"]


def test_workflow_database_over_the_file_size_limit_ends_with_the_summary(
    tmp_path: Path,
) -> None:
    """Every table fits under the limit, the database (about 270 KB) does not: the summary
    still comes, says which file and why, and leaves none of the run's own files; a rerun
    writes them without extracting again."""
    config = small_run(tmp_path)
    limit = 150_000

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [*snakemake_command(), "--config", *config],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        preexec_fn=limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert finished(proc) == ["a", "b"]
    lines = proc.stderr.splitlines()
    assert "mrfbatch: 2 files in " in proc.stderr and " 2 success" in proc.stderr
    error = next(line for line in lines if line.startswith("  error:      "))
    assert error == (
        "  error:      results/mrfbatch.duckdb reached the largest file size allowed (File too "
        "large); the run's manifest.json, plans.parquet, files.parquet and mrfbatch.duckdb are "
        "not written"
    )
    assert (
        "  next:       run the same command again: it keeps the 2 files done and writes the rest"
        in (lines)
    )
    assert not any(line.startswith(("  manifest:", "  query:")) for line in lines)
    assert "Traceback" not in proc.stderr
    assert not any((tmp_path / "results" / name).exists() for name in RUN_FILES)

    rerun = snakemake(tmp_path, *config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert finished(rerun) == []  # the tables were kept
    assert all((tmp_path / "results" / name).is_file() for name in RUN_FILES)
    statuses = [e["status"] for e in manifest(tmp_path)["extractions"]]
    assert statuses == ["success", "success"]


# Mounts a tmpfs on results/ in $1 and runs the workflow there, at each step named:
#   tasks   the checkpoint only (tasks.tsv, the lock file)
#   fill    fills the disk up
#   run     the whole workflow
#   free    removes what fill wrote
_WORKFLOW_ON_TMPFS = """
set -u
cd "$1"; shift
mkdir -p results
mount -t tmpfs -o size=2m tmpfs results || exit 97
for step in "$@"; do
    echo "=== $step" >&2
    case $step in
        tasks) $SNAKEMAKE --until tasks >/dev/null 2>&1 ;;
        fill) cat /dev/zero > results/filler 2>/dev/null ;;
        free) rm results/filler ;;
        run) $SNAKEMAKE; echo "exit=$?" >&2 ;;
    esac
done
"""


def workflow_on_tmpfs(namespace: list[str], folder: Path, *steps: str) -> dict[str, str]:
    """The console of each step of _WORKFLOW_ON_TMPFS, by step (`run`, `run 2`, ...)."""
    config = small_run(folder)
    command = " ".join([*snakemake_command(), "--config", *config])
    proc = subprocess.run(
        [*namespace, "sh", "-c", _WORKFLOW_ON_TMPFS, "sh", str(folder), *steps],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "SNAKEMAKE": command},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said: dict[str, str] = {}
    for part in proc.stderr.split("=== ")[1:]:
        step, _, text = part.partition("\n")
        key = step if step not in said else f"{step} {sum(k.startswith(step) for k in said) + 1}"
        said[key] = text
    return said


@pytest.mark.slow
def test_workflow_on_a_full_disk_is_refused_before_any_job(
    namespace: list[str], tmp_path: Path
) -> None:
    said = workflow_on_tmpfs(namespace, tmp_path, "fill", "run")
    assert said["run"].splitlines()[-2:] == [
        "error: cannot use output_dir results: the disk is full (No space left on device) "
        "while writing results/.mrfbatch.lock; free space there or choose another output_dir",
        "exit=1",
    ]


@pytest.mark.slow
def test_workflow_disk_full_for_every_status_says_so_and_a_rerun_mends(
    namespace: list[str], tmp_path: Path
) -> None:
    """The tasks are listed, then the disk fills up: no job can write a table or even its
    status, nor the run its manifest. Each job says why itself, the summary says the disk is
    full, no traceback reaches the console; once there is room, a rerun does everything."""
    said = workflow_on_tmpfs(namespace, tmp_path, "tasks", "fill", "run", "free", "run")
    full = said["run"]
    assert "exit=1" in full
    assert "Traceback" not in full and "Logging error" not in full
    for name in ("a", "b"):
        job = next(line for line in full.splitlines() if line.startswith(f"[mrfbatch] {name}:"))
        assert job.startswith(f"[mrfbatch] {name}: FAILED: the disk is full (No space left on ")
        assert job.endswith("(its status.json could not be written either)")
        assert (
            f"{name}: FAILED: the job ended without a status (killed, out of memory, or a full "
            "disk?)"
        ) in full
    assert "  error:      the disk is full (No space left on device) while writing results/" in full
    assert "free space under results, then run again" in full

    mended = said["run 2"]
    assert "exit=0" in mended, mended
    assert "csv source plans.csv: 2 files; 0 already done, 2 to extract" in mended
    assert "mrfbatch: 2 files in " in mended and ": 2 success" in mended


def start_with_big(
    folder: Path, http_server: FileServer, big: BigFile, own_group: bool = False
) -> tuple[subprocess.Popen[str], Any, list[str]]:
    """A workflow run started over small_run's two files and `big`, served slowly (its route
    returned); `own_group`: in a process group of its own, to be signalled as a terminal
    does."""
    url = http_server.add("/mrf/big.json.gz", big.payload, rate=RATE)
    config = small_run(folder)
    with (folder / "plans.csv").open("a") as f:
        f.write(f"{url},Plan Big\n")
    proc = subprocess.Popen(
        [*snakemake_command(), "--config", *config],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=own_group,
    )
    return proc, http_server.route(url), config


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "said"),
    [
        (signal.SIGINT, "Terminating processes on user request"),  # Ctrl-C
        (signal.SIGTERM, "Will exit after finishing currently running jobs"),  # timeout, SLURM
    ],
)
def test_workflow_stopped_says_what_stopped_without_a_traceback(
    stop: signal.Signals, said: str, big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM to the
    group (as `timeout` and SLURM send it) while a file downloads: the console shows no
    traceback, the file ends `failed: interrupted`, the summary says so and to run again, and
    the rerun extracts only that file."""
    proc, route, config = start_with_big(tmp_path, http_server, big, own_group=True)
    try:
        wait_for(lambda: route.sent > len(big.payload) // 4, "a quarter of the download")
        os.killpg(proc.pid, stop)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, stderr[-3000:]
    assert said in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "error:" not in stderr  # Snakemake's "died with <Signals.SIGINT: 2>" among them
    lines = stderr.splitlines()
    assert any(re.match(r"mrfbatch: 3 files in .* \(interrupted\): ", line) for line in lines)
    assert any(re.fullmatch(r"\[\d/3\] big: FAILED: interrupted", line) for line in lines)
    assert "  failed:     big: interrupted" in lines
    assert "  next:       run the same command again: it redoes the 1 file not done and keeps " in (
        stderr
    )

    route.rate = 0  # unthrottled
    rerun = snakemake(tmp_path, *config)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert finished(rerun) == ["big"]


@pytest.mark.slow
def test_workflow_job_killed_alone_is_a_failure_in_the_summary_and_manifest(
    big: BigFile, http_server: FileServer, tmp_path: Path
) -> None:
    """One extraction SIGKILLed (as the kernel's out-of-memory killer does) while the run
    goes on: it can write no status, yet the console, the summary and the manifest all say
    it failed, and why it may have, rather than `not run`."""
    proc, _, _ = start_with_big(tmp_path, http_server, big)
    folder = tmp_path / "results" / "big"
    try:
        wait_for(lambda: any(folder.glob(".providers-*.spill")), "the big extraction to start")
        (spill,) = folder.glob(".providers-*.spill")
        os.kill(int(spill.name.split("-")[1].split(".")[0]), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr[-3000:]
    why = (
        "the job ended without a status (killed, out of memory, or a full disk?); see "
        "results/logs/extract/big.log"
    )
    lines = stderr.splitlines()
    assert any(re.fullmatch(rf"\[\d/3\] big: FAILED: {re.escape(why)}", line) for line in lines)
    assert any(re.match(r"mrfbatch: 3 files in .*: 2 success, 1 failed$", line) for line in lines)
    assert f"  failed:     big: {why}" in lines
    (entry,) = [e for e in manifest(tmp_path)["extractions"] if e["network_id"] == "big"]
    assert (entry["status"], entry["error"], entry["retryable"]) == ("failed", why, True)
