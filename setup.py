"""The C extension; everything else about the package is declared in pyproject.toml."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        # C for speed: scanning the JSON is the only per-byte work of the fast engine besides
        # inflating gzip (src/mrfbatch/_jsonscan*.c). Optional: without a C compiler the install
        # still works and the engine uses msgspec, slower; the tests fail without it.
        Extension(
            "mrfbatch._jsonscan",
            ["src/mrfbatch/_jsonscan.c", "src/mrfbatch/_jsonscan_scan.c"],
            depends=["src/mrfbatch/_jsonscan.h"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
        # Provider and rate rows, gathered as Arrow buffers without a Python object per value
        # (src/mrfbatch/_rows*.c). Optional too: without it the same rows are made in Python,
        # slower.
        Extension(
            "mrfbatch._rows",
            [f"src/mrfbatch/_rows{part}.c" for part in ("", "_providers", "_rates", "_spill")],
            depends=[f"src/mrfbatch/_rows{part}.h" for part in ("", "_arrow", "_text")],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
    ]
)
