"""What a process that only extracts keeps out: numpy and pandas.

pyarrow imports both when they are installed (the workflow's install brings them, for the
report): numpy when pyarrow itself is imported (56 ms here, and a pool of BLAS threads), pandas
at its first conversion of a list, to check for pandas objects (0.15 s). An extraction builds
its tables from Python lists only, so a job or the extraction command calls `keep_out()` before
anything imports pyarrow, and starts that much sooner. Not for a process that may use pandas or
numpy later (the manifest, the report, the tests).
"""

from __future__ import annotations

import sys
from typing import Any

KEPT_OUT = ("numpy", "pandas")


def keep_out() -> None:
    """Make those of KEPT_OUT that are not imported yet unimportable in this process."""
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
