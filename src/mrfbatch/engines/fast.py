"""The fast engine: one pass of C per value finds where it ends; unwanted items stay undecoded.

Each value (a header field, a provider reference, an in_network item) is validated by the C
scanner (`mrfbatch._jsonscan`, src/mrfbatch/_jsonscan*.c), which accepts what the reference
parser (yajl) accepts. An in_network item is only validated; the scanner also gives where the
item's own `billing_code` value lies, and only an item whose code is wanted reaches the
handler, as JSON text. A provider reference's `provider_group_id` is likewise read off its span.

The walk is `engines/scanner.py`; the bytes it walks come from `engines/buffer.py` and
`engines/chunks.py`, inflated in this thread or in a second one.
"""

from __future__ import annotations

import gc
import sys
from typing import BinaryIO

from mrfbatch.engines.chunks import CHUNK, Chunks
from mrfbatch.engines.protocol import DEFAULT_MAX_VALUE_MB, MB, VALIDATIONS, DocumentHandler
from mrfbatch.engines.scanner import HOLD, MAX_NESTING, Scanner

# The scanner accepts MAX_NESTING levels; msgspec, decoding a matched item, recurses once per
# level.
_DECODE_RECURSION = MAX_NESTING + 1000


class FastEngine:
    """The fast engine; `threads=2` decompresses in a second thread.

    `hold`: an unwanted in_network item longer than this is passed over as it streams, not held
    whole. `max_value`: the largest value (bytes) held. `validate`: "structural" checks only
    the structure of what is skipped unread (the arrays of unwanted items, unwanted values),
    "full" every byte; what is decoded is always checked in full.
    """

    name = "fast"

    def __init__(
        self,
        chunk_size: int = CHUNK,
        threads: int = 1,
        hold: int = HOLD,
        max_value: int = DEFAULT_MAX_VALUE_MB * MB,
        validate: str = "structural",
    ):
        if chunk_size < 1 or threads < 1 or hold < 0 or max_value < 1:
            raise ValueError("chunk_size, threads, hold and max_value must be positive")
        if validate not in VALIDATIONS:
            raise ValueError(f"validate must be one of {VALIDATIONS}, not {validate!r}")
        self.validate = validate
        self.chunk_size = chunk_size
        self.threads = threads
        self.hold = hold
        self.max_value = max_value

    def scan(self, stream: BinaryIO, handler: DocumentHandler) -> None:
        gc_was_enabled = gc.isenabled()
        gc.disable()  # decoded items hold no cycles; collections would only cost time
        switch = sys.getswitchinterval()
        recursion = sys.getrecursionlimit()
        sys.setrecursionlimit(max(recursion, _DECODE_RECURSION))
        chunks = Chunks(stream, self.chunk_size, threaded=self.threads > 1)
        if self.threads > 1:
            sys.setswitchinterval(0.0005)  # hand the GIL back to the scanner promptly
        try:
            name = getattr(stream, "description", "the file")
            scanner = Scanner(chunks, handler, name, self.hold)
            scanner.max_value = self.max_value
            scanner.structural = self.validate == "structural"
            scanner.run()
        finally:
            chunks.close()
            sys.setswitchinterval(switch)
            sys.setrecursionlimit(recursion)
            if gc_was_enabled:
                gc.enable()
