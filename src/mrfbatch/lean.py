"""How a process that only extracts is set up (`set_up()`, before anything imports pyarrow).

numpy and pandas are kept out. pyarrow imports both when they are installed (the workflow's
install brings them, for the report): numpy when pyarrow itself is imported (56 ms here, and a
pool of BLAS threads), pandas at its first conversion of a list, to check for pandas objects
(0.15 s). An extraction builds its tables from Python lists only, and starts that much sooner
without them. Not for a process that may use pandas or numpy later (the manifest, the report,
the tests).

Arrow's C++ code allocates from the C library (`ARROW_DEFAULT_MEMORY_POOL=system`, unless the
environment says otherwise). pyarrow's own calls already do (mrfbatch.writers), but Parquet's
column writers take the C++ default, mimalloc, whichever pool pyarrow is given; Arrow reads the
variable once, when pyarrow is imported. Measured by hand: extracting all of the small-items
bench file took 0.53 s instead of 0.60 s as a whole command (mean of 5), and peak RSS fell by
30-40 MB (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

KEPT_OUT = ("numpy", "pandas")


def set_up() -> None:
    """Set this process up to extract: KEPT_OUT kept out, Arrow's allocator the C library's."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    # Those of KEPT_OUT already imported stay usable; the rest become unimportable.
    names = frozenset(name for name in KEPT_OUT if name not in sys.modules)
    if names and not any(isinstance(f, _KeptOut) for f in sys.meta_path):
        sys.meta_path.insert(0, _KeptOut(names))


class _KeptOut:
    """Finds none of `names`: importing one raises ModuleNotFoundError, which pyarrow expects of
    an optional module. (A meta path finder needs only `find_spec`; importlib.abc's base class
    would cost 14 ms of every start, importing importlib.resources.)"""

    def __init__(self, names: frozenset[str]):
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name} is kept out of this extraction process", name=name)
