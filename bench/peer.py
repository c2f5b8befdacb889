"""cms-mrf-extractor, the PyPI peer the extract-all rows are compared with, in its own venv.

It is installed once into ``bench/data/peer-venv`` (git-ignored), never into the project's
environment: ``python -m venv`` then ``pip install 'cms-mrf-extractor==0.1.2'``, and reused
while that version is installed there. Where it cannot be installed (no network, no index),
:func:`ensure_peer` says why and the benchmark prints that instead of the peer's rows.

How it runs (read from its 0.1.2 wheel): ``mrf-extract SOURCE_DIR -o OUT --json`` extracts every
``.json``/``.gz``/``.zip`` file of a folder, all of every file (it has no whitelist), into
Parquet under ``OUT/pr/`` (one row per ``provider_references`` entry) and ``OUT/nr/`` (one row
per ``in_network`` item, its rates and prices kept nested). It splits the arrays into byte
blobs and parses them with ``pyarrow.json``; with one file and 2 CPUs it decodes in the main
process (``MAX_WORKERS - 2`` blob workers, at least 1) and forks processes only on more cores
or files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEER = "cms-mrf-extractor"
PEER_VERSION = "0.1.2"


def peer_installed(venv: Path) -> bool:
    """Whether `venv` holds cms-mrf-extractor at PEER_VERSION and its command."""
    wanted = f"cms_mrf_extractor-{PEER_VERSION}.dist-info"
    return (venv / "bin" / "mrf-extract").exists() and any(
        venv.glob(f"lib/python*/site-packages/{wanted}")
    )


def ensure_peer(venv: Path, timeout: float = 600) -> str | None:
    """Install the peer into `venv` unless it is there; None when ready, else why not."""
    if peer_installed(venv):
        return None
    wanted = f"{PEER}=={PEER_VERSION}"
    steps = [
        (f"python -m venv {venv}", [sys.executable, "-m", "venv", "--clear", str(venv)]),
        (f"pip install {wanted}",
         [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", wanted]),
    ]  # fmt: skip
    for what, cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what}: {exc}"
        if done.returncode != 0:
            lines = [x for x in done.stderr.strip().splitlines() if "WARNING" not in x]
            return f"{what} exited {done.returncode}: " + (lines[-1] if lines else "no message")
    if not peer_installed(venv):
        return f"pip reported success but {venv} has no {PEER} {PEER_VERSION}"
    return None
