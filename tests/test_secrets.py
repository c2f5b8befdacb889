"""Secrets in URLs (query strings, user:password@, fragments) never leave the task list.

The single-file command, the older batch command and the Snakemake workflow run for real on
signed URLs served by the local HTTP server: a file that is fine, one that answers 404, one
that redirects to another signed URL, one that redirects to a signed URL answering 404, one
that is not JSON, and one on a port where nothing listens. Afterwards the bytes of every file
in the work folder (results, logs, .snakemake) and the captured console are searched for every
secret; only tasks.tsv and the source the user wrote may hold them.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from mrfbatch.options import ExtractionOptions
from mrfbatch.redact import RedactingFormatter, redact_text, redact_url, url_secrets
from mrfbatch.run_extraction import run_extraction
from mrfbatch.transport import TransportSettings
from support import containers, synth
from support.httpserver import FileServer

ROOT = Path(__file__).resolve().parents[1]

# Each secret once per place it can hide in a URL; all distinct, all unlikely by chance.
SECRETS = {
    "user": "usrQ7Zk2",
    "password": "pwdV9xW4Lm",
    "signature": "SigA1b2C3d4E5f6G7h8",
    "key_pair": "KpiJ9k8L7m6N5",
    "amz_signature": "AmzS1gP0q9R8s7",
    "amz_credential": "AmzCrT6u5V4w3",
    "token": "TokX2y3Z4a5B6",
    "fragment": "FragC7d8E9f0",
    "redirect_signature": "RdrSig1H2i3J4k5",
    "index_signature": "IdxSig6L7m8N9o0",
}


IN_TASK_URLS = [name for name in SECRETS if name not in ("redirect_signature", "index_signature")]


def signed(url: str, *, userinfo: bool = True, signature: str = SECRETS["signature"]) -> str:
    """`url` with a user name and password, a CloudFront/S3-style query and a fragment."""
    scheme, rest = url.split("://", 1)
    auth = f"{SECRETS['user']}:{SECRETS['password']}@" if userinfo else ""
    query = (
        f"Expires=1700000000&Signature={signature}&Key-Pair-Id={SECRETS['key_pair']}"
        f"&X-Amz-Signature={SECRETS['amz_signature']}"
        f"&X-Amz-Credential={SECRETS['amz_credential']}%2F20240101%2Fus-east-1"
        f"&token={SECRETS['token']}"
    )
    return f"{scheme}://{auth}{rest}?{query}#{SECRETS['fragment']}"


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def synth_bytes(seed: int) -> bytes:
    sf = synth.generate(synth.SynthConfig(seed=seed, items=6, references=3))
    return containers.pack(sf.to_bytes(), "gz")


@pytest.fixture
def files(http_server: FileServer) -> dict[str, str]:
    """Signed URLs by what they do; the server answers each in its own way."""
    server = http_server
    server.add("/mrf/good.json.gz", synth_bytes(1))
    server.add("/mrf/moved-target.json.gz", synth_bytes(2))
    server.add(
        "/mrf/moved.json.gz",
        b"",
        location=signed(
            server.base_url + "/mrf/moved-target.json.gz",
            userinfo=False,
            signature=SECRETS["redirect_signature"],
        ),
    )
    server.add(
        "/mrf/gone.json.gz",
        b"",
        location=signed(
            server.base_url + "/mrf/gone-target.json.gz",  # not served: 404
            userinfo=False,
            signature=SECRETS["redirect_signature"],
        ),
    )
    server.add("/mrf/invalid.json.gz", b"<html><body>Access denied</body></html>\n")
    return {
        "good": signed(server.base_url + "/mrf/good.json.gz"),
        "missing": signed(server.base_url + "/mrf/missing.json.gz"),
        "moved": signed(server.base_url + "/mrf/moved.json.gz"),
        "gone": signed(server.base_url + "/mrf/gone.json.gz"),
        "invalid": signed(server.base_url + "/mrf/invalid.json.gz"),
        "unreachable": signed(f"http://127.0.0.1:{free_port()}/mrf/unreachable.json.gz"),
    }


OUTCOMES = {  # network id: (status, words of the error)
    "good": ("success", None),
    "missing": ("failed", "HTTP 404 Not Found from host 127.0.0.1 for http://127.0.0.1:"),
    "moved": ("success", None),
    "gone": ("failed", "/mrf/gone-target.json.gz"),  # the redirect's target, redacted
    "invalid": ("failed", "/mrf/invalid.json.gz (host 127.0.0.1): the file is an HTML page"),
    "unreachable": ("failed", "connection to host 127.0.0.1 failed"),
}


def assert_no_secrets(work: Path, console: Iterable[str], allowed: Iterable[str] = ()) -> int:
    """No secret in the console text or in any file under `work` but the `allowed` names.

    Returns the number of files searched, so a caller can tell the search was not empty.
    """
    text = "\n".join(console)
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} secret is on the console"
    searched = 0
    for path in sorted(work.rglob("*")):
        if not path.is_file() or path.name in set(allowed):
            continue
        data = path.read_bytes()
        searched += 1
        for name, secret in SECRETS.items():
            assert secret.encode() not in data, f"the {name} secret is in {path}"
    return searched


def assert_outcomes(statuses: dict[str, dict[str, Any]]) -> None:
    assert sorted(statuses) == sorted(OUTCOMES)
    for network_id, (status, words) in OUTCOMES.items():
        entry = statuses[network_id]
        assert entry["status"] == status, (network_id, entry["error"])
        if words:
            assert words in entry["error"], (network_id, entry["error"])
        assert entry["url"].startswith("http://127.0.0.1:"), entry["url"]
        assert not set("?@#") & set(entry["url"]), entry["url"]


def test_single_file_command_keeps_secrets_out(files: dict[str, str], tmp_path: Path) -> None:
    console: list[str] = []
    statuses = {}
    for network_id, url in files.items():
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mrfbatch.run_extraction",
                "--url",
                url,
                "--output-dir",
                str(tmp_path / "results"),
                "--attempts",
                "1",
                "--timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == (0 if OUTCOMES[network_id][0] == "success" else 1), proc.stderr
        assert "Traceback" not in proc.stderr
        console += [proc.stdout, proc.stderr]
        statuses[network_id] = json.loads(
            (tmp_path / "results" / network_id / "status.json").read_text()
        )
    assert_outcomes(statuses)
    assert any("INFO extracting http://127.0.0.1:" in text for text in console)  # it logs URLs
    assert assert_no_secrets(tmp_path, console) >= 10


def test_batch_command_keeps_secrets_out(
    files: dict[str, str], http_server: FileServer, tmp_path: Path
) -> None:
    (tmp_path / "list.txt").write_text("\n".join(files.values()) + "\n")
    proc = batch(tmp_path, "--source", "urls", "--input", "list.txt", "--workers", "2")
    assert proc.returncode == 1  # some extractions failed
    assert "2 successful, 0 incomplete, 4 failed, 0 not run" in proc.stdout
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert_outcomes({e["network_id"]: e for e in manifest["extractions"]})
    tasks = (tmp_path / "results" / "tasks.tsv").read_text()  # jobs need the signed URLs
    assert all(SECRETS[name] in tasks for name in IN_TASK_URLS)
    assert "Signature=" + SECRETS["signature"] in http_server.route(files["good"]).requests[0]
    searched = assert_no_secrets(
        tmp_path, [proc.stdout, proc.stderr], allowed=["tasks.tsv", "list.txt"]
    )
    assert searched >= 20  # statuses, status copies, logs, tables, .snakemake metadata and log

    # A signed URL on the command line reaches Snakemake in a config file, not in its log.
    single = tmp_path / "single"
    single.mkdir()
    proc = batch(single, "--source", "url", "--input", files["good"], "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 successful, 0 incomplete, 0 failed, 0 not run" in proc.stdout
    assert assert_no_secrets(single, [proc.stdout, proc.stderr], allowed=["tasks.tsv"]) >= 5
    assert not list((single / "results").glob(".batch-config-*"))  # removed after the run


def test_batch_command_signed_index_keeps_secrets_out(
    files: dict[str, str], http_server: FileServer, tmp_path: Path
) -> None:
    index = {
        "reporting_entity_name": "Synthetic Health Plan",
        "reporting_structure": [
            {
                "reporting_plans": [{"plan_name": "P1", "plan_id": "1", "plan_id_type": "ein"}],
                "in_network_files": [
                    {"description": name, "location": files[name]}
                    for name in ("good", "missing", "gone")
                ],
            }
        ],
    }
    url = http_server.add("/toc/index.json", json.dumps(index).encode())
    index_url = signed(url, signature=SECRETS["index_signature"])
    proc = batch(tmp_path, "--source", "index", "--input", index_url)
    assert proc.returncode == 1
    assert "1 successful, 0 incomplete, 2 failed, 0 not run" in proc.stdout
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert manifest["source_input"] == url
    assert assert_no_secrets(tmp_path, [proc.stdout, proc.stderr], allowed=["tasks.tsv"]) >= 10


def batch(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mrfbatch.batch_orchestrator", *args, "--retries", "0"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snakemake(work: Path, *args: str, cores: int = 1) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
    return subprocess.run(
        [*command, "--cores", str(cores), *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_workflow_keeps_secrets_out(files: dict[str, str], tmp_path: Path) -> None:
    plans = ["file_url,plan_name"] + [f"{url},Plan {name}" for name, url in files.items()]
    (tmp_path / "plans.csv").write_text("\n".join(plans) + "\n")
    # --cores 1: the extractor's own log lines are echoed on the console too
    proc = snakemake(
        tmp_path, "--config", "source=csv", "input=plans.csv", "retries=0", "attempts=1"
    )
    assert proc.returncode == 1
    assert "INFO extracting http://127.0.0.1:" in proc.stderr
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert_outcomes({e["network_id"]: e for e in manifest["extractions"]})
    assert (tmp_path / ".snakemake" / "metadata").is_dir()
    searched = assert_no_secrets(
        tmp_path, [proc.stdout, proc.stderr], allowed=["tasks.tsv", "plans.csv"]
    )
    assert searched >= 20


def test_workflow_signed_url_from_a_config_file(files: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(f"source: url\ninput: '{files['gone']}'\nattempts: 1\n")
    proc = snakemake(tmp_path, "--configfile", "run.yaml")
    assert proc.returncode == 1
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert [(e["network_id"], e["status"]) for e in manifest["extractions"]] == [("gone", "failed")]
    allowed = ["tasks.tsv", "run.yaml"]
    assert assert_no_secrets(tmp_path, [proc.stdout, proc.stderr], allowed=allowed) >= 5


def test_workflow_refuses_a_signed_url_given_with_config(
    files: dict[str, str], tmp_path: Path
) -> None:
    proc = snakemake(tmp_path, "--config", "source=url", f"input={files['good']}")
    assert proc.returncode == 1
    assert (
        "config key 'input': the URL has a query string, user name or fragment (a signature?) "
        "and was given with --config" in proc.stderr
    )
    assert "--configfile FILE" in proc.stderr
    assert not (tmp_path / "results").exists()
    assert_no_secrets(tmp_path, [proc.stdout, proc.stderr])


def test_workflow_unusable_source_shows_no_secret_and_no_traceback(tmp_path: Path) -> None:
    url = signed("https://127.0.0.1:9/a b.json")  # a space: not a URL http.client can send
    (tmp_path / "plans.csv").write_text(f"file_url\n{url}\nftp://{url.split('://', 1)[1]}\n")
    proc = snakemake(tmp_path, "--config", "source=csv", "input=plans.csv")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert (
        "error: the csv source is unusable: plans.csv has 2 unusable rows: "
        "line 2: 'https://127.0.0.1:9/a b.json' contains a space (encode it as %20); "
        "line 3: 'ftp://127.0.0.1:9/a b.json' has the unsupported scheme 'ftp'"
    ) in proc.stderr
    assert assert_no_secrets(tmp_path, [proc.stdout, proc.stderr], allowed=["plans.csv"]) >= 3


# In-process: the failures a subprocess cannot reach from here, and the redaction helpers.


def test_run_extraction_name_resolution_failure_keeps_secrets_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # tests/conftest.py: any host but 127.0.0.1 fails name resolution, without a query
    url = signed("http://payer.example/mrf/rates.json.gz")
    result = run_extraction(
        url, tmp_path / "out", ExtractionOptions(transport=TransportSettings(attempts=1))
    )
    assert result.status == "failed"
    assert result.error is not None
    assert "connection to host payer.example failed: name resolution failed" in result.error
    assert_no_secrets(tmp_path, [result.error, caplog.text])


def test_run_extraction_request_target_in_an_error_is_redacted(
    http_server: FileServer, tmp_path: Path
) -> None:
    # http.client would refuse a target holding a space, repeating it, query and all; the
    # transport refuses it first, with the URL redacted
    url = signed(http_server.base_url + "/mrf/a b.json.gz")
    result = run_extraction(
        url, tmp_path / "out", ExtractionOptions(transport=TransportSettings(attempts=1))
    )
    assert result.status == "failed"
    assert result.error is not None and "cannot be requested" in result.error
    assert_no_secrets(tmp_path, [result.error])


def test_url_secrets_and_redact_text_cover_every_piece() -> None:
    url = signed("https://cdn.example/a/b.json.gz")
    pieces = url_secrets(url)
    for name in IN_TASK_URLS:
        assert any(SECRETS[name] in piece for piece in pieces), name
    assert redact_url(url) == "https://cdn.example/a/b.json.gz"
    target = "/a/b.json.gz?" + url.split("?", 1)[1].split("#")[0]
    message = f"GET {target!r} failed; {SECRETS['password']} {url} {SECRETS['signature']}"
    shown = redact_text(message, [url])
    assert all(secret not in shown for secret in SECRETS.values()), shown
    assert "https://cdn.example/a/b.json.gz" in shown
    # without knowing the URL, every URL and query string in a text still goes
    other = redact_text(f"see {url} and '/x.json?token={SECRETS['token']}&a=b'")
    assert all(secret not in other for secret in SECRETS.values()), other


def test_redacting_formatter_redacts_tracebacks() -> None:
    url = signed("https://cdn.example/a/b.json.gz")
    try:
        raise ValueError(f"cannot open {url}")
    except ValueError:
        record = logging.LogRecord("mrfbatch", logging.ERROR, __file__, 1, "boom", (), None)
        record.exc_info = sys.exc_info()
    line = RedactingFormatter("%(levelname)s %(message)s", [url]).format(record)
    assert "ValueError: cannot open https://cdn.example/a/b.json.gz" in line
    assert all(secret not in line for secret in SECRETS.values())
