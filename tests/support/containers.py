"""The files a serialized document is delivered in: plain JSON, with a BOM, gzip, zip (deflate or
Deflate64).

Example::

    payload = pack(sf.to_bytes(), "gz-multi")    # a .json.gz of three concatenated members
    name = "in-network" + SUFFIXES["gz-multi"]   # "in-network.json.gz"
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable
from typing import Literal, get_args

import inflate64

Container = Literal[
    "json",
    "json-bom",
    "gz",
    "gz-multi",
    "zip",
    "zip-stream",
    "zip-readme",
    "zip-two-json",
    "zip-deflate64",
    "zip-deflate64-stream",
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


def deflate64_zip(
    data: bytes,
    *,
    member: str = "in-network-rates.json",
    streamed: bool = False,
    extra_members: Iterable[tuple[str, bytes]] = (),
) -> bytes:
    """A zip whose members are compressed with Deflate64 (method 9) by inflate64's Deflater,
    extra_members first, then member holding data. Python's zipfile cannot write Deflate64, so
    the archive is laid out here (APPNOTE 4.3): local headers with sizes and CRC, or, with
    `streamed`, zeros there, flag bit 3 and a data descriptor after each member's data; then
    the central directory."""
    local = io.BytesIO()
    central = io.BytesIO()
    entries = [*extra_members, (member, data)]
    for name, payload in entries:
        deflater = inflate64.Deflater()
        packed = deflater.deflate(payload) + deflater.flush()
        crc, size, offset = zlib.crc32(payload), len(payload), local.tell()
        sizes = (0, 0, 0) if streamed else (crc, len(packed), size)
        flags = 0x08 if streamed else 0
        raw_name = name.encode()
        # version needed 2.1 (Deflate64), flags, method 9, time and date 1980-01-01 00:00
        fields = (21, flags, 9, 0, 0x21, *sizes, len(raw_name), 0)
        local.write(b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", *fields) + raw_name + packed)
        if streamed:
            local.write(b"PK\x07\x08" + struct.pack("<III", crc, len(packed), size))
        # made by 2.1 (MS-DOS), needed 2.1, the same fields, no comment, disk 0, attributes 0
        whole = (*fields[:5], crc, len(packed), size, *fields[8:])  # the sizes, even streamed
        record = struct.pack("<HHHHHHIIIHHHHHII", 21, *whole, 0, 0, 0, 0, offset)
        central.write(b"PK\x01\x02" + record + raw_name)
    directory = central.getvalue()
    count, size_cd, offset_cd = len(entries), len(directory), local.tell()
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size_cd, offset_cd, 0)
    return local.getvalue() + directory + end


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
        case "zip-deflate64":
            return deflate64_zip(data)
        case "zip-deflate64-stream":
            return deflate64_zip(data, streamed=True)
    raise ValueError(f"unknown container {container!r}")
