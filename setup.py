"""The C extensions; everything else about the package is declared in pyproject.toml.

Both are required: a failed compile stops the install with the compiler's message.
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        # C for speed: scanning the JSON is the only per-byte work of the fast engine besides
        # inflating gzip (src/mrfbatch/_jsonscan*.c).
        Extension(
            "mrfbatch._jsonscan",
            [f"src/mrfbatch/_jsonscan{part}.c" for part in ("", "_scan", "_skim", "_utf8")],
            depends=["src/mrfbatch/_jsonscan.h"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
        ),
        # Provider and rate rows, gathered as Arrow buffers without a Python object per value
        # (src/mrfbatch/_rows*.c); Python makes the rows only of what C leaves to it.
        Extension(
            "mrfbatch._rows",
            [f"src/mrfbatch/_rows{part}.c" for part in ("", "_providers", "_rates", "_spill")],
            depends=[f"src/mrfbatch/_rows{part}.h" for part in ("", "_arrow", "_text")],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
        ),
    ]
)
