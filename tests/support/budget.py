"""How many examples a hypothesis test runs: its own number, or fewer when the environment
asks for a short run (.ci/sanitizers sets MRFBATCH_MAX_EXAMPLES; a sanitized build is slower).

Example::

    @settings(max_examples=max_examples(300), deadline=None)
"""

from __future__ import annotations

import os


def max_examples(default: int) -> int:
    """`default`, or MRFBATCH_MAX_EXAMPLES when that is set and smaller."""
    value = os.environ.get("MRFBATCH_MAX_EXAMPLES", "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MRFBATCH_MAX_EXAMPLES is {value!r}; expected a positive whole number")
    return min(default, int(value))
