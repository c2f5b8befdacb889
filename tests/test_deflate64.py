"""Zip members compressed with Deflate64 (method 9), as Windows' built-in zip writes them.

The archives in tests/data/deflate64 were made by 7-Zip (the README there says how); the others
by inflate64's Deflater (support.containers.deflate64_zip). Expected bytes are the fixtures'
own JSON; expected rows come from extracting the same JSON uncompressed.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mrfbatch import compression
from mrfbatch.compression import DecodedStream
from mrfbatch.errors import CompressionError
from mrfbatch.options import ExtractionOptions
from mrfbatch.remote import read_provider_file
from mrfbatch.run_extraction import run_extraction
from mrfbatch.sources import parse_index
from mrfbatch.tables import Quality
from support.containers import deflate64_zip
from support.streams import Chunked
from support.tocs import GOLD, structure, toc

DATA = Path(__file__).parent / "data" / "deflate64"
JSON = (DATA / "in-network.json").read_bytes()
SEVEN_ZIP = (DATA / "in-network.zip").read_bytes()  # sizes in the local header
SEVEN_ZIP_STREAMED = (DATA / "in-network-streamed.zip").read_bytes()  # a data descriptor
SEVEN_ZIP64 = (DATA / "in-network-zip64.zip").read_bytes()  # sizes in a Zip64 extra field
MEMBER = "in-network.json"
LOCAL = struct.Struct("<4sHHHHHIIIHH")  # a zip local header (APPNOTE 4.3.7)


def decode(data: bytes, step: int = 1 << 20, read_size: int = 65536) -> tuple[str, bytes]:
    stream = DecodedStream(Chunked(data, step, "test.zip"))
    out = bytearray()
    while chunk := stream.read(read_size):
        assert len(chunk) <= read_size
        out += chunk
    assert stream.bytes_decoded == len(out)
    return stream.compression, bytes(out)


def far_repeats(size: int, distance: int, seed: int = 5) -> bytes:
    """JSON-ish text of `size` bytes: random letters, each block of `distance` bytes repeated
    once right after it, so every match is `distance` back."""
    rng = random.Random(seed)
    out = bytearray(b'{"in_network": [], "x": "')
    while len(out) < size:
        block = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(distance))
        out += block + block
    return bytes(out[:size]) + b'"}'


def test_fixtures_are_deflate64_and_need_its_64k_window() -> None:
    """The 7-Zip members use method 9 and matches farther back than deflate's 32 KiB: a
    32 KiB-window deflate of the same JSON at its best level is far larger."""
    for archive, flags in ((SEVEN_ZIP, 0), (SEVEN_ZIP_STREAMED, 0x08), (SEVEN_ZIP64, 0)):
        fields = LOCAL.unpack_from(archive)
        assert fields[0] == b"PK\x03\x04" and fields[3] == 9 and fields[2] & 0x08 == flags
    assert LOCAL.unpack_from(SEVEN_ZIP64)[7] == 0xFFFFFFFF  # the size is in the Zip64 field
    csize = LOCAL.unpack_from(SEVEN_ZIP)[7]
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = len(deflater.compress(JSON) + deflater.flush())
    assert len(JSON) > 64 << 10
    assert csize < 0.7 * deflated


@pytest.mark.parametrize(
    "archive", [SEVEN_ZIP, SEVEN_ZIP_STREAMED, SEVEN_ZIP64], ids=["sizes", "descriptor", "zip64"]
)
@pytest.mark.parametrize("step", [1, 7, 4099, 1 << 20])
@pytest.mark.parametrize("read_size", [1, 13, 65536])
def test_decoded_stream_reads_7zip_deflate64_members(
    archive: bytes, step: int, read_size: int
) -> None:
    assert decode(archive, step, read_size) == ("zip", JSON)


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("step", [1, 333, 1 << 20])
def test_decoded_stream_reads_deflater_members_with_far_matches(streamed: bool, step: int) -> None:
    """Matches 60,000 bytes back (Deflate64 reaches 65,536), in members of 300 KB, after a
    readme member that is skipped."""
    data = far_repeats(300_000, 60_000)
    archive = deflate64_zip(data, streamed=streamed, extra_members=[("README.txt", b"read me")])
    assert len(archive) < 200_000  # the repeats were found: random letters alone need 5/8
    assert decode(archive, step) == ("zip", data)


def test_decoded_stream_deflate64_output_per_read_is_bounded() -> None:
    """20 MB of JSON from a 1 KB member comes out in pieces of at most OUT bytes."""
    data = b"[" + b"0," * (10 << 20) + b"0]"
    archive = deflate64_zip(data)
    assert len(archive) < 4096
    stream = DecodedStream(Chunked(archive))
    sizes = []
    while piece := stream.read(-1):  # -1: what one piece of the decompressor's output holds
        sizes.append(len(piece))
    assert sum(sizes) == len(data)
    assert max(sizes) <= compression.OUT


def test_decoded_stream_deflate64_crc_mismatch_names_the_member() -> None:
    archive = bytearray(SEVEN_ZIP)
    struct.pack_into("<I", archive, 14, LOCAL.unpack_from(SEVEN_ZIP)[6] ^ 1)  # recorded CRC
    with pytest.raises(
        CompressionError, match=r"zip member 'in-network.json' of test.zip fails its CRC-32 check"
    ):
        decode(bytes(archive))


def test_decoded_stream_deflate64_descriptor_crc_mismatch_names_the_member() -> None:
    archive = bytearray(SEVEN_ZIP_STREAMED)
    at = archive.index(b"PK\x07\x08")
    archive[at + 4] ^= 0xFF
    with pytest.raises(CompressionError, match=r"'in-network.json' .* fails its CRC-32 check"):
        decode(bytes(archive), step=4099)


@pytest.mark.parametrize("archive", [SEVEN_ZIP, SEVEN_ZIP_STREAMED], ids=["sizes", "descriptor"])
def test_decoded_stream_corrupt_deflate64_data_names_the_member(archive: bytes) -> None:
    """Bytes changed in the compressed data: the inflater refuses them or the CRC differs."""
    data = bytearray(archive)
    start = LOCAL.size + len(MEMBER)
    for at in range(start + 2000, start + 2100):
        data[at] ^= 0x5A
    with pytest.raises(
        CompressionError,
        match=r"(corrupt Deflate64 data in zip member 'in-network.json' of test.zip in its "
        r"compressed bytes \d+ to \d+|zip member 'in-network.json' of test.zip fails its CRC"
        r"|zip member 'in-network.json' of test.zip: no data descriptor follows)",
    ):
        decode(bytes(data))


@pytest.mark.parametrize("archive", [SEVEN_ZIP, SEVEN_ZIP_STREAMED], ids=["sizes", "descriptor"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_decoded_stream_truncated_deflate64_member_ends_early(archive: bytes, keep: float) -> None:
    with pytest.raises(
        CompressionError, match=r"test.zip ends early .*member 'in-network.json'.*incomplete"
    ):
        decode(archive[: int(len(archive) * keep)], step=1000)


def test_decoded_stream_deflate64_without_its_descriptor_is_an_error() -> None:
    archive = bytearray(SEVEN_ZIP_STREAMED)
    at = archive.index(b"PK\x07\x08")
    archive[at + 12 : at + 16] = struct.pack("<I", len(JSON) + 1)  # the size it records
    with pytest.raises(
        CompressionError,
        match=rf"'in-network.json' of test.zip: no data descriptor follows its Deflate64 data "
        rf"\(expected one recording {len(JSON)} decompressed bytes\)",
    ):
        decode(bytes(archive))


def test_decoded_stream_deflate64_member_longer_than_its_data() -> None:
    """A recorded compressed size too small: the data does not end within it."""
    archive = bytearray(SEVEN_ZIP)
    struct.pack_into("<I", archive, 18, 5000)
    with pytest.raises(
        CompressionError, match=r"'in-network.json' .* does not end within its 5000 compressed"
    ):
        decode(bytes(archive))


def table_rows(folder: Path) -> tuple[list[Any], list[Any]]:
    rates = pq.read_table(folder / "rates.parquet").to_pylist()
    providers = pq.read_table(folder / "providers.parquet").to_pylist()
    return sorted(rates, key=repr), sorted(providers, key=repr)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_run_extraction_of_7zip_deflate64_zips_gives_the_plain_files_tables(
    tmp_path: Path, engine: str
) -> None:
    items = json.loads(JSON)["in_network"]
    options = ExtractionOptions(engine=engine)
    folders = {}
    zips = ("in-network.zip", "in-network-streamed.zip", "in-network-zip64.zip")
    for name in ("in-network.json", *zips):
        net = name.replace(".", "-")
        result = run_extraction(str(DATA / name), tmp_path, options, network_id=net)
        assert result.status == "success", result.error
        assert result.items_seen == len(items)
        assert result.compression == ("none" if name.endswith(".json") else "zip")
        assert result.bytes_decoded == len(JSON)
        folders[name] = tmp_path / net
    plain = table_rows(folders["in-network.json"])
    assert len(plain[0]) == len(items)  # one price, one provider reference per item
    for name in zips:
        rates, providers = table_rows(folders[name])
        assert [{**r, "network_id": None} for r in rates] == [
            {**r, "network_id": None} for r in plain[0]
        ]
        assert [{**p, "network_id": None} for p in providers] == [
            {**p, "network_id": None} for p in plain[1]
        ]


def test_parse_index_reads_a_deflate64_zip(tmp_path: Path) -> None:
    path = tmp_path / "index.zip"
    path.write_bytes(deflate64_zip(toc(structure([GOLD], "https://f.example/a.json"))))
    [task] = parse_index(path)
    assert task.url == "https://f.example/a.json"
    assert task.plan_metadata == (GOLD,)


def test_remote_provider_file_in_a_deflate64_zip() -> None:
    document = {
        "provider_groups": [{"npi": [1234567890], "tin": {"type": "ein", "value": "1"}}],
        "version": "1.0.0",
    }
    archive = deflate64_zip(json.dumps(document).encode())
    groups = read_provider_file(Chunked(archive), Quality(), 1 << 20)
    assert groups == [((1234567890,), "ein", "1", None)]
