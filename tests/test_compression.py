"""Decompression detected from magic bytes; every failure names where it stopped."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

import pytest

from mrfbatch import compression
from mrfbatch.compression import DecodedStream
from mrfbatch.errors import CompressionError, JsonFormatError
from support.streams import Chunked

DOC = b'{"in_network": [{"billing_code": "99213"}], "version": "1.0.0"}\n' * 50


def decode(data: bytes, step: int = 1 << 20, read_size: int = 65536) -> tuple[str, bytes]:
    stream = DecodedStream(Chunked(data, step))
    out = bytearray()
    while chunk := stream.read(read_size):
        out += chunk
    assert stream.bytes_decoded == len(out)
    return stream.compression, bytes(out)


def zip_bytes(members: dict[str, bytes], streamed: bool = False, method: int = 8) -> bytes:
    """A zip archive; `streamed` writes through a non-seekable file (data descriptors)."""
    buf = io.BytesIO()

    class NoSeek(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            return buf.write(b)

    target = NoSeek() if streamed else buf
    with zipfile.ZipFile(target, "w", compression=method) as zf:
        for name, data in members.items():
            if streamed:
                with zf.open(name, "w") as f:
                    f.write(data)
            else:
                zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_decoded_stream_plain_gzip_and_zip_agree(step: int) -> None:
    assert decode(DOC, step) == ("none", DOC)
    assert decode(gzip.compress(DOC), step) == ("gzip", DOC)
    assert decode(zip_bytes({"a.json": DOC}), step) == ("zip", DOC)
    assert decode(zip_bytes({"a.json": DOC}, streamed=True), step) == ("zip", DOC)


def test_decoded_stream_reads_every_gzip_member() -> None:
    data = gzip.compress(DOC[:100]) + gzip.compress(DOC[100:1000]) + gzip.compress(DOC[1000:])
    assert decode(data, step=13) == ("gzip", DOC)


def test_decoded_stream_ignores_zero_padding_after_gzip() -> None:
    assert decode(gzip.compress(DOC) + b"\x00" * 512) == ("gzip", DOC)


def gzip_member(data: bytes, flags: int) -> bytes:
    """A gzip member (RFC 1952) whose header has the optional fields `flags` asks for:
    FHCRC 0x02, FEXTRA 0x04, FNAME 0x08, FCOMMENT 0x10."""
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff"
    if flags & 0x04:
        header += struct.pack("<H", 6) + b"ab\x02\x00xy"  # one subfield, "ab", 2 bytes
    if flags & 0x08:
        header += b"rates.json\x00"
    if flags & 0x10:
        header += b"made for a test\x00"
    if flags & 0x02:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


@pytest.mark.parametrize("flags", [0x02, 0x04, 0x08, 0x10, 0x1E])
@pytest.mark.parametrize("step", [1, 3, 1 << 20])
def test_decoded_stream_reads_every_optional_header_field(flags: int, step: int) -> None:
    """Headers arriving a byte at a time included: ISA-L alone rejects a header CRC in pieces."""
    data = gzip_member(DOC[:700], flags) + gzip_member(DOC[700:], flags)
    assert gzip.decompress(data) == DOC  # the fixture is valid gzip
    assert decode(data, step) == ("gzip", DOC)


def test_decoded_stream_header_cut_short_ends_early() -> None:
    data = gzip_member(DOC, 0x1E)
    with pytest.raises(
        CompressionError, match=r"ends early: truncated after 15 compressed bytes; the file is"
    ):
        decode(data[:15], step=4)


@pytest.mark.parametrize("step", [1, 5, 1 << 20])
def test_decoded_stream_allows_zeros_between_gzip_members(step: int) -> None:
    data = gzip.compress(DOC[:100]) + b"\x00" * 9 + gzip.compress(DOC[100:])
    assert gzip.decompress(data) == DOC  # Python's gzip allows it too
    assert decode(data, step) == ("gzip", DOC)


@pytest.mark.parametrize("step", [1, 5, 1 << 20])
@pytest.mark.parametrize("garbage", [b"g", b"garbage", b"garbage, more than a header's 10 bytes"])
def test_decoded_stream_garbage_after_padding_names_its_offset(step: int, garbage: bytes) -> None:
    first = gzip.compress(DOC)
    with pytest.raises(
        CompressionError,
        match=rf"unexpected bytes after gzip member at compressed byte {len(first) + 9};",
    ):
        decode(first + b"\x00" * 9 + garbage, step)


@pytest.mark.parametrize("garbage", [b"\n", b"garbage", b"<html>" * 100_000])
def test_decoded_stream_rejects_garbage_after_gzip(garbage: bytes) -> None:
    """The file as served holds the bytes after a whole member: reading it again fails again."""
    first = gzip.compress(DOC)
    with pytest.raises(
        CompressionError,
        match=rf"unexpected bytes after gzip member at compressed byte {len(first)};",
    ) as caught:
        decode(first + garbage)
    assert caught.value.retryable is False


@pytest.mark.parametrize("cut", [1, 2, 9])
def test_decoded_stream_second_member_header_cut_ends_early(cut: int) -> None:
    """The start of a header is not stray bytes: the file ends inside a member."""
    data = gzip.compress(DOC) + gzip.compress(DOC)[:cut]
    with pytest.raises(
        CompressionError, match=rf"ends early: truncated after {len(data)} compressed bytes"
    ):
        decode(data)


def test_decoded_stream_garbage_after_second_member_says_where_it_was_read() -> None:
    """After a second member, the trailer does not give the size of everything decoded: the
    message gives the compressed bytes read last."""
    data = gzip.compress(DOC) + gzip.compress(DOC) + b"garbage, more than a header's 10 bytes"
    with pytest.raises(
        CompressionError,
        match=r"unexpected bytes after gzip member within compressed bytes \d+ to "
        rf"{len(data)};",
    ):
        decode(data)


@pytest.mark.parametrize("keep", [10, 0.5, -8])
def test_decoded_stream_truncated_gzip_says_where(keep: float) -> None:
    data = gzip.compress(DOC)
    cut = data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep]
    with pytest.raises(
        CompressionError, match=r"gzip stream .* ends early: truncated after \d+ compressed bytes"
    ) as caught:
        decode(cut)
    assert caught.value.retryable is True  # a download cut short may come whole next time


def test_decoded_stream_corrupt_gzip_says_where() -> None:
    data = bytearray(gzip.compress(DOC))
    data[20:40] = b"\xff" * 20
    with pytest.raises(CompressionError, match=r"corrupt gzip data .* compressed bytes? \d+"):
        decode(bytes(data))


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b""])
def test_decoded_stream_strips_utf8_bom(prefix: bytes) -> None:
    assert decode(prefix + DOC)[1] == DOC
    assert decode(gzip.compress(prefix + DOC))[1] == DOC
    assert decode(zip_bytes({"x.json": prefix + DOC}))[1] == DOC


def test_decoded_stream_empty_input_is_an_error() -> None:
    with pytest.raises(JsonFormatError, match=r"test.bin: the file is empty \(0 bytes\)"):
        decode(b"")


def test_decoded_stream_zip_skips_non_json_members() -> None:
    data = zip_bytes({"docs/": b"", "README.txt": b"hello\n", "rates.json": DOC}, streamed=True)
    assert decode(data, step=5) == ("zip", DOC)


def test_decoded_stream_zip_member_detected_by_content_not_name() -> None:
    assert decode(zip_bytes({"in-network-file": DOC}))[1] == DOC


def test_decoded_stream_zip_stored_member() -> None:
    assert decode(zip_bytes({"a.json": DOC}, method=zipfile.ZIP_STORED)) == ("zip", DOC)


def test_decoded_stream_zip_with_two_json_members_names_both() -> None:
    data = zip_bytes({"first.json": DOC, "second.json": DOC})
    with pytest.raises(
        CompressionError, match=r"several JSON members: 'first.json' and 'second.json'"
    ) as caught:
        decode(data)
    assert caught.value.retryable is False


def test_decoded_stream_zip_without_json_lists_members() -> None:
    data = zip_bytes({"a.txt": b"hello", "b.csv": b"x,y\n"})
    with pytest.raises(
        CompressionError, match=r"no JSON member \(members: 'a.txt', 'b.csv'\)"
    ) as caught:
        decode(data)
    assert caught.value.retryable is False


def test_decoded_stream_truncated_zip_says_so() -> None:
    data = zip_bytes({"a.json": DOC * 20})
    with pytest.raises(CompressionError, match=r"ends early") as caught:
        decode(data[: len(data) // 2])
    assert caught.value.retryable is True


def test_decoded_stream_zip_crc_mismatch_is_an_error() -> None:
    data = bytearray(zip_bytes({"a.json": DOC}, method=zipfile.ZIP_STORED))
    at = data.index(b'"99213"')
    data[at + 1] = ord("8")
    with pytest.raises(CompressionError, match=r"fails its CRC-32 check"):
        decode(bytes(data))


def test_decoded_stream_empty_zip_is_an_error() -> None:
    with pytest.raises(CompressionError, match=r"empty zip archive") as caught:
        decode(zip_bytes({}))
    assert caught.value.retryable is False


def test_decoded_stream_zip_member_of_unsupported_method_is_an_error() -> None:
    """bzip2 (method 12): the archive is whole, and no reader here decodes it."""
    data = zip_bytes({"a.json": DOC}, method=zipfile.ZIP_BZIP2)
    with pytest.raises(
        CompressionError, match=r"zip member 'a.json' of .* uses compression method 12; only"
    ) as caught:
        decode(data)
    assert caught.value.retryable is False


def test_decoded_stream_reads_at_most_the_requested_size() -> None:
    stream = DecodedStream(Chunked(gzip.compress(DOC)))
    sizes = {len(stream.read(10)) for _ in range(50)}
    assert sizes == {10}


def _compressible(size: int) -> bytes:
    """`size` bytes that deflate well but not trivially (long matches and literals)."""
    line = b'{"npi":[1234567890,1457392840],"negotiated_rate":123.45},'
    return (line * (size // len(line) + 1))[:size]


@pytest.mark.parametrize("kind", ["gzip", "zip"])
def test_decoded_stream_output_per_read_is_bounded(kind: str) -> None:
    """A small input that inflates a thousandfold comes out in pieces of at most OUT bytes,
    never as one allocation of its whole size."""
    data = b"[" + b"0," * (20 << 20) + b"0]"
    packed = gzip.compress(data, 9) if kind == "gzip" else zip_bytes({"a.json": data})
    assert len(packed) < (100 << 10)
    stream = DecodedStream(Chunked(packed))
    sizes = []
    while piece := stream.read(-1):  # -1: whatever one decompression call gave
        sizes.append(len(piece))
    assert sum(sizes) == len(data)
    assert max(sizes) <= compression.OUT


@pytest.mark.parametrize("step", [1000, 65536])
@pytest.mark.parametrize("extra", [-3, -1, 0, 1, 2, 4099])
def test_decoded_stream_output_ending_on_the_bound(step: int, extra: int) -> None:
    """Members whose output ends just before, on and after a multiple of the output bound,
    read in raw pieces of several sizes: every byte comes out, in every member."""
    data = _compressible(3 * compression.OUT + extra)
    packed = gzip.compress(data) + gzip.compress(data[::-1])
    assert decode(packed, step) == ("gzip", data + data[::-1])
    assert decode(zip_bytes({"a.json": data}), step) == ("zip", data)
