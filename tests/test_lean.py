"""An extraction process keeps numpy and pandas out and has Arrow allocate from the C library
(mrfbatch/lean.py), and still writes its tables in both formats."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "in-network-sample.json.gz"


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_extraction_command_imports_neither_numpy_nor_pandas(
    output_format: str, tmp_path: Path
) -> None:
    # Both are installed here (the workflow's install brings them), else this proves nothing.
    assert importlib.util.find_spec("numpy") and importlib.util.find_spec("pandas")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mrfbatch.run_extraction", "--url",
         str(EXAMPLE), "--output-dir", str(tmp_path), "--format", output_format, "-q"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.M))
    assert "pyarrow" in imported  # the listing is read right
    # The listing names a package whose import was refused, but then none of its modules.
    assert not {name for name in imported if name.startswith(("numpy.", "pandas."))}
    status = json.loads((tmp_path / "in-network-sample" / "status.json").read_text("utf-8"))
    assert status["status"] == "success" and status["rate_rows"] > 0
    assert (tmp_path / "in-network-sample" / f"rates.{output_format}").stat().st_size > 0


def test_set_up_leaves_modules_already_imported_alone() -> None:
    code = (
        "import sys, numpy\n"
        "from mrfbatch import lean\n"
        "lean.set_up()\n"
        "import numpy.linalg\n"  # a submodule of an imported package still imports
        "try:\n"
        "    import pandas\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('kept out:', exc.name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "kept out: pandas"


@pytest.mark.parametrize(("environment", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_set_up_chooses_the_c_library_allocator_unless_told(
    environment: str | None, expected: str
) -> None:
    # Parquet's writers allocate from Arrow's C++ default pool, which only the environment
    # chooses, before pyarrow is imported; a choice already made there is kept.
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if environment is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = environment
    code = (
        "from mrfbatch import lean\n"
        "lean.set_up()\n"
        "import pyarrow as pa\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
