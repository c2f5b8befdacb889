"""The C extension; everything else about the package is declared in pyproject.toml."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        # C for speed: scanning the JSON is the only per-byte work of the fast engine besides
        # inflating gzip (src/mrfbatch/_jsonscan.c). Optional: without a C compiler the install
        # still works and the engine uses msgspec, slower; the tests fail without it.
        Extension(
            "mrfbatch._jsonscan",
            ["src/mrfbatch/_jsonscan.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
        # The provider rows of referenced groups, gathered as Arrow buffers without a Python
        # object per group (src/mrfbatch/_provider_rows.c). Optional too: without it the same
        # rows are made in Python, slower.
        Extension(
            "mrfbatch._provider_rows",
            ["src/mrfbatch/_provider_rows.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
    ]
)
