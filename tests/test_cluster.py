"""The workflow on a real SLURM cluster through profiles/slurm, compared with a local run.

.ci/slurm-test starts a one-node cluster on localhost and runs the `cluster` tests with
MRFBATCH_REQUIRE_SLURM=1, which turns "no cluster" into a failure; anywhere else they are
skipped when no SLURM controller answers, or when its nodes are other machines. The
cluster has no accounting database (no sacct), so the test profile polls with squeue, and
squeue --states=all (MinJobAge=300 in the cluster's slurm.conf) is where the tests find
the jobs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from support import containers, synth
from support.httpserver import FileServer

ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
WHITELIST = ["99213", "27447", "J1885"]
# A run's Snakemake log (.snakemake/log/; mrfbatch's console shows files, not jobs) names
# every submission, with its SLURM log:
#   Job 8 has been submitted with SLURM jobid 12 (log: /w/.snakemake/slurm_logs/
#   rule_extract/alpha/12.log).   [on one line]
SUBMITTED = re.compile(
    r"Job (?P<job>\d+) has been submitted with SLURM jobid (?P<slurm>\d+) "
    r"\(log: (?P<log>\S+/rule_(?P<rule>[^/]+)/(?P<id>[^/]+)/\d+\.log)\)"
)
# Manifest keys that differ between any two runs.
VOLATILE = {"extraction_run", "duration_seconds"}


def _cluster_problem() -> str | None:
    """Why no SLURM cluster can be used from here, or None when one answers."""
    for tool in ("sbatch", "squeue", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: slurm-client)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "scontrol ping did not answer in 30 s"
    if ping.returncode != 0 or "is UP" not in ping.stdout:
        said = (ping.stdout + ping.stderr).strip().splitlines() or [f"exit {ping.returncode}"]
        return f"scontrol ping: {said[-1]}"
    # Jobs fetch from the test server on 127.0.0.1 and write to pytest's /tmp folders: every
    # node must be this machine (a real cluster's login node is not the place for these).
    hosts = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%n"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    others = set(hosts) - {"localhost", "127.0.0.1", socket.gethostname()}
    if not hosts or others:
        return f"the cluster's nodes are not only this machine: {sorted(set(hosts))}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem is None:
        return
    message = f"no SLURM cluster reachable ({problem}); .ci/slurm-test starts one"
    if os.environ.get("MRFBATCH_REQUIRE_SLURM"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def slurm_profile(cluster: None, tmp_path: Path) -> Path:
    """profiles/slurm, made to fit the one-node test cluster."""
    settings = yaml.safe_load(SLURM_PROFILE.read_text())
    settings.update(
        {
            "jobs": 2,  # two cores
            "latency-wait": 5,
            # No partition (the cluster's default) and no account: without slurmdbd the
            # plugin rejects any account it is given.
            "default-resources": {"mem_mb": 500, "runtime": 10},
            # No slurmdbd, so no sacct; squeue sees finished jobs for MinJobAge=300 s.
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 2,
            # The SLURM logs of successful jobs too: the tests read their job ids.
            "slurm-keep-successful-logs": True,
        }
    )
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder


def command(profile: Path | None) -> list[str]:
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
    # Without --workflow-profile, profiles/default (local, --cores from the command line).
    return [*base, "--workflow-profile", str(profile)] if profile else [*base, "--cores", "2"]


def snakemake(
    workdir: Path, profile: Path | None, *config: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(profile), "--config", *config],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=150,
    )


def snakemake_log(workdir: Path) -> str:
    """The log of the latest Snakemake run in `workdir` (it is written as the run goes)."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    return logs[-1].read_text() if logs else ""


def submissions(log: str) -> dict[str, list[str]]:
    """SLURM job ids of one run, by network id (rule extract) or rule name (any other)."""
    jobs: dict[str, list[str]] = {}
    for m in SUBMITTED.finditer(log):
        key = m["id"] if m["rule"] == "extract" else f"rule {m['rule']}"
        jobs.setdefault(key, []).append(m["slurm"])
    return jobs


def slurm_jobs() -> dict[str, dict[str, str]]:
    """Every job the controller still knows, finished ones included: id -> name, comment, state."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%j|%k|%T|%m|%l|%C"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    keys = ("name", "comment", "state", "memory", "time_limit", "cpus")
    return {
        fields[0]: dict(zip(keys, fields[1:], strict=True))
        for fields in (line.split("|") for line in out.splitlines() if line.strip())
    }


def manifest(workdir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / "results" / "manifest.json").read_text())
    return data


def comparable(m: dict[str, Any]) -> dict[str, Any]:
    """A manifest without the keys that change from run to run."""
    return {
        **{k: v for k, v in m.items() if k not in VOLATILE},
        "extractions": [
            {k: v for k, v in e.items() if k not in VOLATILE} for e in m["extractions"]
        ],
    }


def table(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def synth_file(seed: int, **knobs: Any) -> synth.SynthFile:
    return synth.generate(synth.SynthConfig(seed=seed, items=12, references=5, **knobs))


def work_folder(path: Path, urls: list[str]) -> Path:
    path.mkdir()
    (path / "list.txt").write_text("".join(f"{url}\n" for url in urls))
    (path / "codes.txt").write_text("\n".join(WHITELIST) + "\n")
    return path


def test_slurm_profile_has_the_cluster_settings() -> None:
    """What issue 5 asks of profiles/slurm; read as Snakemake reads it (YAML)."""
    settings = yaml.safe_load(SLURM_PROFILE.read_text())
    assert settings["executor"] == "slurm"
    assert settings["jobs"] >= 1 and settings["latency-wait"] >= 1 and settings["retries"] >= 0
    assert {"mem_mb", "runtime"} <= set(settings["default-resources"])
    # Placeholders stay comments: a value here would be wrong on every other cluster.
    text = SLURM_PROFILE.read_text()
    assert "# slurm_partition:" in text and "# slurm_account:" in text
    assert not {"slurm_partition", "slurm_account"} & set(settings["default-resources"])
    # Jobs whose inputs come from a checkpoint must not be grouped (snakemake#4202).
    assert not {"groups", "group-components"} & set(settings)
    # Same run semantics as local runs.
    default = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert {k: settings[k] for k in default} == default


@pytest.mark.cluster
def test_slurm_profile_is_accepted_by_snakemake(tmp_path: Path) -> None:
    """A dry run through profiles/slurm as shipped: Snakemake rejects any key it doesn't know."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        message = "the SLURM executor plugin is not installed: pip install -e '.[cluster]'"
        if os.environ.get("MRFBATCH_REQUIRE_SLURM"):
            pytest.fail(message)
        pytest.skip(message)
    shutil.copy(ROOT / "examples" / "in-network-sample.json.gz", tmp_path)
    proc = subprocess.run(
        [
            *command(ROOT / "profiles" / "slurm"),
            "--dry-run",
            "--config",
            "source=url",
            "input=in-network-sample.json.gz",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dry run: the source is read first" in proc.stdout + proc.stderr


@pytest.mark.cluster
def test_cluster_run_equals_local_run_and_records_failure(
    http_server: FileServer, slurm_profile: Path, tmp_path: Path
) -> None:
    files = {"alpha": synth_file(1), "beta": synth_file(2, refs_position="after")}
    urls = [
        http_server.add(f"/mrf/{name}.json.gz", containers.pack(sf.to_bytes(), "gz"))
        for name, sf in files.items()
    ]
    urls.append(http_server.add("/mrf/gamma.json.gz", b"", status=404))
    args = ("source=urls", "input=list.txt", "cpt_whitelist=codes.txt", "retries=0")
    args += ("mem_mb=700", "runtime=15")
    on_slurm = work_folder(tmp_path / "slurm", urls)
    local = work_folder(tmp_path / "local", urls)

    proc = snakemake(on_slurm, slurm_profile, *args)
    assert proc.returncode == 1, proc.stderr[-3000:]
    local_proc = snakemake(local, None, *args)
    assert local_proc.returncode == 1, local_proc.stderr[-3000:]

    # Every extraction was a SLURM job; the checkpoint and the manifest ran in Snakemake.
    jobs = submissions(snakemake_log(on_slurm))
    assert sorted(jobs) == ["alpha", "beta", "gamma"], snakemake_log(on_slurm)[-3000:]
    # The console reports files from their status on the shared file system, as locally.
    assert "urls source list.txt: 3 files; 0 already done, 3 to extract" in proc.stderr
    assert re.search(r"\[\d/3\] gamma: FAILED: HTTP 404 Not Found", proc.stderr), proc.stderr
    assert len(re.findall(r"\[\d/3\] (alpha|beta): success, ", proc.stderr)) == 2
    assert "Traceback" not in proc.stderr and "RuleException" not in proc.stderr
    assert all(len(ids) == 1 for ids in jobs.values())
    known = slurm_jobs()
    run_names = {known[ids[0]]["name"] for ids in jobs.values()}
    assert len(run_names) == 1  # the plugin names every job of a run after its run id
    for network_id, (job_id,) in jobs.items():
        log = on_slurm / ".snakemake" / "slurm_logs" / "rule_extract" / network_id
        assert (log / f"{job_id}.log").is_file()
        assert known[job_id]["comment"] == f"rule_extract_wildcards_{network_id}"
        assert known[job_id]["state"] == ("FAILED" if network_id == "gamma" else "COMPLETED")
        # The rule's resources reached SLURM: mem_mb x attempt 1, runtime, threads_per_job.
        assert (known[job_id]["memory"], known[job_id]["cpus"]) == ("700M", "1")
        assert known[job_id]["time_limit"] == "15:00"
    this_run = [job for job in known.values() if job["name"] in run_names]
    assert sorted(job["comment"] for job in this_run) == [
        f"rule_extract_wildcards_{network_id}" for network_id in ("alpha", "beta", "gamma")
    ]

    # The same manifest as the local run, the failure included; the same tables.
    m = manifest(on_slurm)
    assert comparable(m) == comparable(manifest(local))
    by_id = {e["network_id"]: e for e in m["extractions"]}
    assert m["summary"] == {**m["summary"], "successful": 2, "failed": 1, "not_run": 0}
    assert by_id["gamma"]["status"] == "failed"
    assert "HTTP 404" in by_id["gamma"]["error"] and "127.0.0.1" in by_id["gamma"]["error"]
    for name, sf in files.items():
        expected = sf.expected(name, set(WHITELIST))
        assert (by_id[name]["rate_rows"], by_id[name]["provider_rows"]) == (
            len(expected.rates),
            len(expected.providers),
        )
        for kind in ("rates", "providers"):
            rows = table(on_slurm / "results" / name / f"{kind}.parquet")
            assert rows == table(local / "results" / name / f"{kind}.parquet")
    assert len(table(on_slurm / "results" / "alpha" / "rates.parquet")) > 0


@pytest.mark.cluster
def test_cluster_run_interrupted_resumes_without_redoing_finished_jobs(
    http_server: FileServer, slurm_profile: Path, tmp_path: Path
) -> None:
    files = {name: synth_file(seed) for name, seed in (("fast", 6), ("slow", 7))}
    payloads = {name: containers.pack(sf.to_bytes(), "gz") for name, sf in files.items()}
    fast = http_server.add("/mrf/fast.json.gz", payloads["fast"])
    slow = http_server.add("/mrf/slow.json.gz", payloads["slow"], delay=60)
    work = work_folder(tmp_path / "work", [fast, slow])
    args = ["source=urls", "input=list.txt", "cpt_whitelist=codes.txt", "mem_mb=500"]

    stderr_path = tmp_path / "interrupted.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [*command(slurm_profile), "--config", *args],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        # Interrupt once Snakemake has seen the fast job finish, while the slow one runs.
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, stderr_path.read_text()[-3000:]
            assert time.monotonic() < deadline, snakemake_log(work)[-3000:]
            text = snakemake_log(work)
            numbers = {m["id"]: m["job"] for m in SUBMITTED.finditer(text)}
            fast_done = "fast" in numbers and f"Finished jobid: {numbers['fast']} " in text
            if fast_done and http_server.hits(slow) >= 1:
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: Snakemake cancels its running jobs
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    interrupted = snakemake_log(work)
    first = submissions(interrupted)
    assert sorted(first) == ["fast", "slow"]
    assert proc.returncode != 0
    # As locally: the cancelled job (SIGTERM) wrote its status, interrupted.
    status = {e["network_id"]: (e["status"], e["error"]) for e in manifest(work)["extractions"]}
    assert status == {"fast": ("success", None), "slow": ("failed", "interrupted")}
    # The slow job was cancelled, not left running.
    assert slurm_jobs()[first["slow"][0]]["state"] == "CANCELLED", interrupted[-3000:]
    fast_outputs = {p.name: p.stat().st_mtime_ns for p in (work / "results" / "fast").iterdir()}

    http_server.add("/mrf/slow.json.gz", payloads["slow"])  # no more delay
    rerun = snakemake(work, slurm_profile, *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(submissions(snakemake_log(work))) == ["slow"]  # fast was not redone
    assert "urls source list.txt: 2 files; 1 already done, 1 to extract" in rerun.stderr
    assert http_server.hits(fast) == 1
    assert {
        p.name: p.stat().st_mtime_ns for p in (work / "results" / "fast").iterdir()
    } == fast_outputs
    m = manifest(work)
    assert m["summary"]["successful"] == 2
    for e in m["extractions"]:
        expected = files[e["network_id"]].expected(e["network_id"], set(WHITELIST))
        assert (e["rate_rows"], e["provider_rows"]) == (
            len(expected.rates),
            len(expected.providers),
        )
