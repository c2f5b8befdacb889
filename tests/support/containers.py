"""The files a serialized document is delivered in: plain JSON, with a BOM, gzip, zip.

Example::

    payload = pack(sf.to_bytes(), "gz-multi")    # a .json.gz of three concatenated members
    name = "in-network" + SUFFIXES["gz-multi"]   # "in-network.json.gz"
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterable
from typing import Literal, get_args

Container = Literal[
    "json", "json-bom", "gz", "gz-multi", "zip", "zip-stream", "zip-readme", "zip-two-json"
]
SUFFIXES: dict[str, str] = {  # container -> file name suffix
    c: {"j": ".json", "g": ".json.gz", "z": ".zip"}[c[0]] for c in get_args(Container)
}


class _Sink:
    """A write-only stream: ZipFile then writes data descriptors (sizes after the data)."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def flush(self) -> None:
        pass


def gzip_bytes(data: bytes, members: int = 1) -> bytes:
    """gzip data; with members > 1 the bytes are split into that many concatenated members."""
    step = max(1, -(-len(data) // members))
    chunks = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(gzip.compress(chunk, mtime=0) for chunk in chunks)


def zip_bytes(
    data: bytes,
    *,
    member: str = "in-network-rates.json",
    streamed: bool = False,
    extra_members: Iterable[tuple[str, bytes]] = (),
) -> bytes:
    """A deflated zip with extra_members first, then member holding data.

    streamed=False writes sizes in each local header; streamed=True writes through a
    non-seekable stream, so every entry has flag bit 3 and a data descriptor.
    """
    entries = [*extra_members, (member, data)]
    if streamed:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[call-overload]
            for name, payload in entries:
                with zf.open(name, "w") as fh:
                    fh.write(payload)
        return sink.buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in entries:
            zf.writestr(name, payload)
    return buffer.getvalue()


def pack(data: bytes, container: Container) -> bytes:
    """Wrap serialized JSON in one of the containers (file suffix: ``SUFFIXES[container]``)."""
    match container:
        case "json":
            return data
        case "json-bom":
            return b"\xef\xbb\xbf" + data
        case "gz":
            return gzip_bytes(data)
        case "gz-multi":
            return gzip_bytes(data, members=3)
        case "zip":
            return zip_bytes(data)
        case "zip-stream":
            return zip_bytes(data, streamed=True)
        case "zip-readme":
            return zip_bytes(data, extra_members=[("README.txt", b"Synthetic file.\n")])
        case "zip-two-json":
            return zip_bytes(data, member="b-rates.json", extra_members=[("a-rates.json", data)])
    raise ValueError(f"unknown container {container!r}")
