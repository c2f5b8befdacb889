"""Decompression detected from the first bytes of a stream: gzip, zip or plain JSON.

Everything streams: gzip members are inflated as they arrive (`mrfbatch.gunzip`; several
members are concatenated, as `gzip -d` does), and a zip archive is read member by member from
its local headers, so neither needs a seekable file. Zip members may be stored, deflated or
Deflate64 (method 9, which Windows' built-in zip writes for large files). A stream that ends
before its compressed data does is an error that says where it stopped; decoded bytes that are
not JSON at all (an HTML page, an XML error, nothing) are an error that says what they are
(mrfbatch.sniff). An archive that is whole but unusable (empty, no JSON member or several, a
method not read here) fails again if read again: its error is not `retryable`; a stream cut
short or corrupt may come whole from another download, and is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Protocol

from isal import igzip_lib, isal_zlib

from mrfbatch.errors import CompressionError
from mrfbatch.gunzip import ISAL_ERROR, Gunzip
from mrfbatch.sniff import GZIP_MAGIC, ZIP_MAGIC, json_start

CHUNK = 1 << 18
# Compressed bytes per read of a gzip stream. The gzip reader inflates without the GIL but takes
# it for each read, and with a reader thread (`threads: 2`) each take may wait behind the
# scanning thread: 115 takes per GB of JSON at 1 MB, against 460 at CHUNK. By hand on the bench
# file A with threads=2 (means of 5 and 6 alternating runs): 0.734-0.738 s against 0.756-0.762 s;
# one thread unchanged (0.978 against 0.980 s). 512 KB gave half the gain; 16 MB was slower.
GZIP_IN = 1 << 20
# Decompressed bytes per call at most. Bounded output keeps a small input from becoming one
# huge allocation (deflate expands up to 1032x), and lets the allocator reuse the same memory:
# unbounded, the decompressor grows a fresh buffer per call, and mapping and clearing its pages
# cost about as much as inflating (measured with ISA-L: 245,000 page faults per GB, against
# 10,000 with this bound, and a third less CPU time).
OUT = 1 << 18
# Compressed bytes per Deflate64 call. inflate64 takes no output bound, and Deflate64 expands
# at most about 29,000x (a 65,538-byte match in 18 bits), so no call returns more than 30 MB;
# its output is then handed out in pieces of at most OUT bytes.
DEFLATE64_IN = 1 << 10
_ZIP_END_SIGNATURES = (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07")
_BOM = b"\xef\xbb\xbf"


class RawReader(Protocol):
    """What decompression needs from a byte source."""

    description: str  # the file, as messages name it
    name: str  # its path (a URL's without its query)
    bytes_read: int

    def read(self, size: int) -> bytes: ...


class DecodedStream:
    """File-like reader of the decompressed JSON bytes of `raw`.

    `compression` names what was detected; `bytes_decoded` counts bytes handed out.
    `on_read`, when given, is called after every read (progress reporting).
    """

    def __init__(self, raw: RawReader, on_read: Callable[[], None] | None = None):
        self._raw = raw
        self._on_read = on_read
        self.description = raw.description
        self.bytes_decoded = 0
        self.last_read = b""  # the last bytes read() handed out, and where they start: error
        self.last_read_start = 0  # offsets
        self.at_end = False  # a read returned nothing: the stream is exhausted
        head = _read_at_least(raw, 4)
        self.compression, pieces, self._gunzip = _detect(raw, head)
        self._chunks = _strip_bom(pieces)
        # the first chunks, read to see that they can be JSON, then the rest of _chunks
        self._held = json_start(self._chunks, raw.description, self.compression, raw.name)
        if self._gunzip is not None:
            self._gunzip.tick(on_read)
        self._buffer = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._buffer):
            self._buffer = self._held.pop(0) if self._held else next(self._chunks, b"")
            self._pos = 0
        if size < 0:
            size = len(self._buffer)
        data = self._buffer[self._pos : self._pos + size]
        self._pos += len(data)
        self._count(len(data))
        self.last_read, self.last_read_start = data, self.bytes_decoded - len(data)
        return data

    def decode_into(self, view: memoryview) -> int:
        """Decoded bytes into `view`, as many as come at once (0 only at the end); the fast
        engine's reading (`engines/chunks.py`). Not `readinto`, which ijson would call: reads
        by `read` keep `last_read`, which words the reference parser's errors.

        gzip is inflated straight into `view`, all of it in one call of C (see `Gunzip`), and
        `on_read` is called after each read of compressed bytes as well.
        """
        if self._gunzip is None or self._pos < len(self._buffer) or self._held:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        n = self._gunzip.inflate_into(view)
        self._count(n)
        return n

    def _count(self, n: int) -> None:
        self.at_end = not n
        self.bytes_decoded += n
        if self._on_read is not None:
            self._on_read()


def _read_at_least(raw: RawReader, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(max(n - len(data), CHUNK))
        if not chunk:
            break
        data += chunk
    return data


def _detect(raw: RawReader, head: bytes) -> tuple[str, Iterator[bytes], Gunzip | None]:
    """The compression, the decoded bytes, and for gzip the inflater (`Gunzip.inflate_into`)."""
    if head.startswith(GZIP_MAGIC):
        gunzip = Gunzip(raw, head, GZIP_IN, OUT)
        return "gzip", gunzip.pieces(), gunzip
    if head.startswith(ZIP_MAGIC):
        return "zip", _unzip(_Input(raw, head)), None
    if head.startswith(b"PK\x05\x06"):
        raise CompressionError(
            f"{raw.description} is an empty zip archive; expected one JSON member",
            retryable=False,
        )
    return "none", _plain(raw, head), None


def _plain(raw: RawReader, head: bytes) -> Iterator[bytes]:
    yield head
    while chunk := raw.read(CHUNK):
        yield chunk


def _strip_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= len(_BOM):
            break
    yield first[len(_BOM) :] if first.startswith(_BOM) else first
    yield from chunks


def _inflate(inflater: igzip_lib.IgzipDecompressor, data: bytes) -> Iterator[bytes]:
    """Everything `data` inflates to, in pieces of at most OUT bytes.

    The inflater keeps the input it has not used yet: asking for more output with no new input
    copies nothing, where zlib's interface hands back the unused tail as a new bytes object
    on every call (with ISA-L through that interface, inflating took 15-30 % more time here).
    """
    out = inflater.decompress(data, OUT)
    while True:
        if out:
            yield out
        if inflater.eof or inflater.needs_input:
            return
        out = inflater.decompress(b"", OUT)


class _Input:
    """Raw bytes with put-back, for walking zip local headers."""

    def __init__(self, raw: RawReader, head: bytes):
        self.raw = raw
        self.description = raw.description
        self._buf = head
        self.offset = 0  # archive offset of the first byte in _buf

    def take(self, n: int, what: str) -> bytes:
        while len(self._buf) < n:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                raise CompressionError(
                    f"zip archive {self.description} ends early at byte "
                    f"{self.offset + len(self._buf)} while reading {what}; the file is incomplete"
                )
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        self.offset += n
        return data

    def chunk(self) -> bytes:
        """Whatever is buffered, or the next raw chunk (b"" at the end)."""
        data = self._buf or self.raw.read(CHUNK)
        self._buf = b""
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._buf = data + self._buf
        self.offset -= len(data)

    def drain(self) -> None:
        while self.chunk():
            pass


def _unzip(inp: _Input) -> Iterator[bytes]:
    """Yield the decompressed bytes of the single JSON member of a zip archive."""
    seen: list[str] = []
    json_member: str | None = None
    while True:
        signature = inp.take(4, "a member header")
        if signature in _ZIP_END_SIGNATURES:
            inp.drain()
            break
        if signature != ZIP_MAGIC:
            raise CompressionError(
                f"zip archive {inp.description}: expected a member header at byte "
                f"{inp.offset - 4}, found {signature!r}"
            )
        member = _ZipMember.read_header(inp)
        seen.append(member.name)
        if member.name.endswith("/"):
            member.skip(inp)
            continue
        chunks = member.data(inp)
        first = _first_nonblank(chunks)
        if first is None or first[:1] not in (b"{", b"["):
            for _ in chunks:
                pass  # not JSON (a readme, say): inflate to find its end, then move on
            continue
        if json_member is not None:
            raise CompressionError(
                f"zip archive {inp.description} holds several JSON members: {json_member!r} and "
                f"{member.name!r}; expected exactly one",
                retryable=False,
            )
        json_member = member.name
        yield first
        yield from chunks
    if json_member is None:
        names = ", ".join(repr(n) for n in seen) or "none"
        raise CompressionError(
            f"zip archive {inp.description} holds no JSON member (members: {names})",
            retryable=False,
        )


def _first_nonblank(chunks: Iterator[bytes]) -> bytes | None:
    data = b""
    for chunk in chunks:
        data += chunk
        body = data[len(_BOM) :] if data.startswith(_BOM) else data
        if body.strip():
            return b"" + body.lstrip()  # keep the JSON text; drop BOM and leading blanks
    return None


class _ZipMember:
    def __init__(self, name: str, flags: int, method: int, crc: int, csize: int, zip64: bool):
        self.name = name
        self.flags = flags
        self.method = method
        self.crc = crc
        self.csize = csize
        self.zip64 = zip64

    @classmethod
    def read_header(cls, inp: _Input) -> _ZipMember:
        (_, flags, method, _, _, crc, csize, _, name_len, extra_len) = struct.unpack(
            "<HHHHHIIIHH", inp.take(26, "a member header")
        )
        raw_name = inp.take(name_len, "a member name")
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        extra = inp.take(extra_len, "a member's extra field")
        zip64 = _zip64_field(extra)
        if zip64 is not None and csize == 0xFFFFFFFF and len(zip64) >= 16:
            (csize,) = struct.unpack_from("<Q", zip64, 8)  # APPNOTE 4.5.3: size, then csize
        return cls(name, flags, method, crc, csize, zip64=zip64 is not None)

    def skip(self, inp: _Input) -> None:
        for _ in self.data(inp):
            pass

    def data(self, inp: _Input) -> Iterator[bytes]:
        """Yield the member's decompressed bytes, checking its CRC-32."""
        crc = 0
        if self.method == 8:
            pieces = self._inflate(inp)
        elif self.method == 9:
            pieces = self._inflate64(inp)
        elif self.method == 0 and not self.flags & 0x08:
            pieces = self._stored(inp)
        else:
            raise CompressionError(
                f"zip member {self.name!r} of {inp.description} uses compression method "
                f"{self.method}{' with a data descriptor' if self.method == 0 else ''}; "
                "only deflate (8), Deflate64 (9) and stored (0) are supported",
                retryable=False,
            )
        for out in pieces:
            crc = isal_zlib.crc32(out, crc)
            yield out
        expected = self.crc
        if self.flags & 0x08:
            expected = self._read_descriptor(inp)
        if crc != expected:
            raise CompressionError(
                f"zip member {self.name!r} of {inp.description} fails its CRC-32 check "
                f"(computed {crc:08x}, recorded {expected:08x}); the archive is corrupt"
            )

    def _stored(self, inp: _Input) -> Iterator[bytes]:
        remaining = self.csize
        while remaining:
            out = inp.take(min(remaining, CHUNK), f"member {self.name!r}")
            remaining -= len(out)
            yield out

    def _inflate(self, inp: _Input) -> Iterator[bytes]:
        inflater = igzip_lib.IgzipDecompressor(igzip_lib.DECOMP_DEFLATE)
        while not inflater.eof:
            chunk = inp.chunk()
            if not chunk:
                raise self._ends_early(inp)
            try:
                yield from _inflate(inflater, chunk)
            except ISAL_ERROR as exc:
                raise CompressionError(
                    f"corrupt deflate data in zip member {self.name!r} of "
                    f"{inp.description} near archive byte {inp.offset}: {exc}"
                ) from exc
        inp.unread(inflater.unused_data)  # the rest of the archive

    def _inflate64(self, inp: _Input) -> Iterator[bytes]:
        """Deflate64 (APPNOTE 4.4.5, method 9) with inflate64, DEFLATE64_IN bytes per call.

        inflate64 does not say where the compressed data ends. With the sizes in the local
        header it is given exactly `csize` bytes; with a data descriptor (a streaming writer,
        such as `7z -so`), the descriptor is found after the end: the one place, in the bytes
        of the last call, where the compressed and decompressed sizes it records are those
        just counted.
        """
        import inflate64  # only for a Deflate64 member: not every extraction's start-up

        inflater = inflate64.Inflater()
        known = None if self.flags & 0x08 else self.csize
        taken = fed = produced = 0  # compressed bytes read, given to the inflater; bytes out
        while not inflater.eof:
            if known is None:
                chunk = inp.chunk()
                if not chunk:
                    raise self._ends_early(inp)
            elif taken < known:
                chunk = inp.take(min(known - taken, CHUNK), f"member {self.name!r}")
            else:
                raise CompressionError(
                    f"corrupt Deflate64 data in zip member {self.name!r} of {inp.description}: "
                    f"it does not end within its {known} compressed bytes"
                )
            taken += len(chunk)
            for start in range(0, len(chunk), DEFLATE64_IN):
                piece = chunk[start : start + DEFLATE64_IN]
                try:
                    out = inflater.inflate(piece)
                except ValueError as exc:
                    raise CompressionError(
                        f"corrupt Deflate64 data in zip member {self.name!r} of "
                        f"{inp.description} in its compressed bytes {fed} to "
                        f"{fed + len(piece)}: {exc}"
                    ) from exc
                produced += len(out)
                for at in range(0, len(out), OUT):
                    yield out[at : at + OUT] if len(out) > OUT else out
                if inflater.eof:
                    if known is None:
                        self._find_descriptor(inp, chunk[start:], fed, len(piece), produced)
                    while known is not None and taken < known:  # after the end: not used
                        taken += len(inp.take(min(known - taken, CHUNK), self.name))
                    break
                fed += len(piece)

    def _find_descriptor(
        self, inp: _Input, tail: bytes, base: int, piece: int, produced: int
    ) -> None:
        """Put back the bytes from the data descriptor on (`tail` starts at compressed byte
        `base`; the data ended within its first `piece` bytes)."""
        width = 8 if self.zip64 else 4
        need = piece + 4 + 4 + 2 * width
        while len(tail) < need:
            more = inp.chunk()
            if not more:
                break
            tail += more
        for end in range(piece + 1):
            at = end + 4 if tail.startswith(b"PK\x07\x08", end) else end
            sizes = tail[at + 4 : at + 4 + 2 * width]
            if len(sizes) < 2 * width:
                break
            csize = int.from_bytes(sizes[:width], "little")
            size = int.from_bytes(sizes[width:], "little")
            mask = (1 << (8 * width)) - 1
            if csize == (base + end) & mask and size == produced & mask:
                inp.unread(tail[end:])
                return
        inp.unread(tail)
        raise CompressionError(
            f"zip member {self.name!r} of {inp.description}: no data descriptor follows its "
            f"Deflate64 data (expected one recording {produced} decompressed bytes); the "
            "member is corrupt"
        )

    def _ends_early(self, inp: _Input) -> CompressionError:
        return CompressionError(
            f"zip archive {inp.description} ends early inside member {self.name!r}; "
            "the file is incomplete"
        )

    def _read_descriptor(self, inp: _Input) -> int:
        head = inp.take(4, f"the data descriptor of {self.name!r}")
        if head == b"PK\x07\x08":
            head = inp.take(4, f"the data descriptor of {self.name!r}")
        (crc,) = struct.unpack("<I", head)
        inp.take(16 if self.zip64 else 8, f"the data descriptor of {self.name!r}")
        return int(crc)


def _zip64_field(extra: bytes) -> bytes | None:
    """The data of the Zip64 extended information field (APPNOTE 4.5.3), if there is one."""
    pos = 0
    while pos + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, pos)
        if header_id == 0x0001:
            return extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return None
