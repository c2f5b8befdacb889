"""An extraction process keeps numpy and pandas out (mrfbatch/lean.py), and still writes its
tables in both formats."""

from __future__ import annotations

import importlib.util
import json
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


def test_keep_out_leaves_modules_already_imported_alone() -> None:
    code = (
        "import sys, numpy\n"
        "from mrfbatch.lean import keep_out\n"
        "keep_out()\n"
        "import numpy.linalg\n"  # a submodule of an imported package still imports
        "try:\n"
        "    import pandas\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('kept out:', exc.name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "kept out: pandas"
