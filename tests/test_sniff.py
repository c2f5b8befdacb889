"""Bytes that are not JSON get an error that says what they are (mrfbatch.sniff), wherever JSON
is read: run_extraction with either engine, from a file or over HTTP, and the index source."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from mrfbatch.compression import DecodedStream
from mrfbatch.errors import JsonFormatError, SourceError
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.sniff import SNIPPET
from mrfbatch.sources import parse_index

HTML = (
    b"\n  <!DOCTYPE html>\n<html><head><title>Sign in to continue</title></head>"
    b'<body><a href="https://login.example/auth?token=s3cr3tvalue1">log in</a></body></html>'
)
S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2024-01-01T00:00:00Z</Expires>"
    b"<RequestId>ABC123</RequestId></Error>"
)
AZURE_ERROR = (
    b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-8'?><Error><Code>AuthenticationFailed</Code>"
    b"<Message>Server failed to authenticate the request.\nRequestId:1\nTime:2</Message></Error>"
)
XML = b'<?xml version="1.0"?><catalog><file name="a.json"/></catalog>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"

# name: (bytes, words the message must hold)
TEXT = "the file is text, not the JSON object expected"
KINDS: dict[str, tuple[bytes, list[str]]] = {
    "html": (HTML, ["HTML page, not JSON", "expired or need a login", "'Sign in to continue'"]),
    "html-upper": (b"\t<HTML><BODY>Forbidden</BODY></HTML>", ["HTML page", "first bytes: '<HTML>"]),
    "s3-error": (S3_ERROR, ["XML error", "AccessDenied: 'Request has expired'"]),
    "azure-error": (AZURE_ERROR, ["XML error", "AuthenticationFailed"]),
    "xml": (XML, ["an XML document, not JSON", "first bytes: '<?xml"]),
    "markup": (b"<feed><entry/></feed>", ["markup (XML or HTML), not JSON", "'<feed>"]),
    "comment": (b"<!-- generated -->\n<a/>", ["markup (XML or HTML), not JSON"]),
    "pdf": (PDF, ["a PDF document, not JSON", "'%PDF-1.7'"]),
    "empty": (b"", ["the file is empty (0 bytes)"]),
    "blank": (b" \n\r\n\t ", ["only whitespace (6 bytes)"]),
    "bzip2": (b"BZh91AY&SY" + bytes(40), ["a bzip2 stream", "only gzip and zip"]),
    "csv": (
        b"file_url,plan_name\r\nhttps://cdn.example/a.json.gz,Gold\r\n",
        [
            "delimited text such as a CSV, not the JSON object expected",
            "(first line: 'file_url,plan_name')",
        ],
    ),
    "tsv": (b"url\tplan\n", ["delimited text such as a CSV", "'url plan'"]),
    "text": (b"\n  Not Found\n", [f"{TEXT} (first line: 'Not Found')"]),
    "not-a-literal": (b"nope", [f"{TEXT} (first line: 'nope')"]),
}


class Raw:
    def __init__(self, data: bytes, description: str = "f.json"):
        self._f = io.BytesIO(data)
        self.description = description
        self.name = description
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        return self._f.read(size)


def sniff_error(data: bytes, description: str = "f.json") -> str:
    with pytest.raises(JsonFormatError) as caught:
        DecodedStream(Raw(data, description))
    return str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_decoded_stream_says_what_the_bytes_are(kind: str) -> None:
    data, words = KINDS[kind]
    message = sniff_error(data)
    assert message.startswith("f.json: the file ")
    for word in words:
        assert word in message


def test_decoded_stream_says_empty_after_decompression() -> None:
    message = sniff_error(gzip.compress(b""))
    assert "the file is empty (0 bytes after decompression)" in message
    assert "HTML page" in sniff_error(gzip.compress(HTML))


def test_sniff_snippet_is_short_and_keeps_no_query_string() -> None:
    html = b"<html>" + b"<p>see https://cdn.example/f.json?sig=abcdefgh123</p>" + b"x" * 5000
    message = sniff_error(html)
    quoted = message.split("first bytes: ", 1)[1].rstrip(")")
    assert len(quoted) <= SNIPPET + 2  # and its quotes
    assert "abcdefgh123" not in message and "sig=" not in message
    assert "https://cdn.example/f.json" in message


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b"[1]",
        b'  \n{"x"',
        b"\xef\xbb\xbf{}",
        b"null",
        b" nul",  # cut short: the parser says so
        b"falsey",  # a literal, then garbage the parser finds
        b"\x01\x02 binary",  # not text: nothing to say about it
        b"caf\xe9,\xff",  # not UTF-8
        b'z"reporting_entity_name":"x","in_network":[]}',  # JSON, its first byte wrong: the
        b'x\n  "reporting_entity_name" : "x",\n',  # parser names the byte, not a CSV
        b"}",  # JSON's own punctuation first (found by tests/test_fuzz.py): not text either
        b'],"in_network":[]}',
        b',"version":"1.0"}',
        b":1}",
        # a gzip file whose first byte became `<` (found by tests/test_fuzz.py): not markup
        b"<\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xd5X\xdbn\xdb8",
    ],
)
def test_decoded_stream_leaves_json_and_unknown_bytes_to_the_parser(data: bytes) -> None:
    stream = DecodedStream(Raw(data))
    assert stream.read(100) == data.removeprefix(b"\xef\xbb\xbf")


# A gzip file whose first byte became `<` (found by tests/test_fuzz.py). RFC 1952: gzip starts
# with 1f 8b; a zip archive's first local file header with 50 4b 03 04 (PKWARE's APPNOTE).
DAMAGED_GZIP = b"<\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xd5X\xdbn\xdb8"
MISNAMED: dict[str, tuple[str, bytes, list[str]]] = {
    "gz": (
        "f.json.gz",
        DAMAGED_GZIP,
        [
            "the file's name ends in .gz, but it does not start as gzip does (1f 8b)",
            "byte 0 (0x3c '<')",
        ],
    ),
    "gzip-upper": ("F.JSON.GZIP", b"\n\x00\x01", ["ends in .gzip", "(1f 8b)", "byte 1 (0x00)"]),
    "zip": (
        "a.zip",
        b"PK\x01\x02" + bytes(20),
        ["as a zip archive does (50 4b 03 04)", "byte 0 (0x50 'P')"],
    ),
}


@pytest.mark.parametrize("kind", MISNAMED)
def test_decoded_stream_says_when_a_file_is_not_what_its_name_says(kind: str) -> None:
    name, data, words = MISNAMED[kind]
    message = sniff_error(data, name)
    assert message.startswith(f"{name}: the file's name ends in ")
    assert message.endswith(
        "cannot start JSON either: the file is damaged, or not what its name says"
    )
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("f.json.gz", b'{"a": 1}'),  # JSON, though the name says gzip: read as JSON
        ("f.json.zip", b" [1]"),
        ("f.json.gz", b"null"),
        ("f.gz.json", DAMAGED_GZIP),  # the name promises nothing: the parser names the byte
        ("f.json.gz.part", DAMAGED_GZIP),
    ],
)
def test_decoded_stream_reads_json_whatever_its_name(name: str, data: bytes) -> None:
    assert DecodedStream(Raw(data, name)).read(100) == data


def test_decoded_stream_says_what_a_misnamed_file_is_first() -> None:
    assert "the file is an HTML page" in sniff_error(HTML, "f.json.gz")
    assert "the file is empty (0 bytes)" in sniff_error(b"", "f.json.gz")


# ------------------------------------------------------------------ through run_extraction

OTHER_OBJECT = json.dumps({"plan_name": "x", "widgets": [], "rates": {}}).encode()
EXTRA_KINDS: dict[str, tuple[bytes, list[str]]] = {
    "array": (b'[{"in_network": []}]', ["top level of the JSON is an array"]),
    "other-object": (OTHER_OBJECT, ["no `in_network` array", "plan_name, widgets, rates"]),
}


def extract(source: str, tmp_path: Path, engine: str) -> dict[str, Any]:
    run_extraction(source, tmp_path / "out", ExtractionOptions(engine=engine), network_id="n")
    status: dict[str, Any] = json.loads((tmp_path / "out" / "n" / "status.json").read_text())
    return status


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("kind", [*KINDS, *EXTRA_KINDS])
def test_run_extraction_says_what_a_local_file_is(tmp_path: Path, engine: str, kind: str) -> None:
    data, words = {**KINDS, **EXTRA_KINDS}[kind]
    path = tmp_path / "in-network.json"
    path.write_bytes(data)
    status = extract(str(path), tmp_path, engine)
    assert status["status"] == "failed"
    assert status["retryable"] is False
    for word in words:
        assert word in status["error"]


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("kind", ["html", "s3-error", "empty"])
def test_run_extraction_says_what_a_served_file_is(
    http_server: Any, tmp_path: Path, engine: str, kind: str
) -> None:
    data, words = KINDS[kind]
    content_type = "application/xml" if kind == "s3-error" else "text/html"
    url = http_server.add("/mrf/in-network.json", data, content_type=content_type)
    status = extract(url + "?Signature=secretsecret", tmp_path, engine)
    assert status["status"] == "failed"
    assert status["retryable"] is False
    for word in words:
        assert word in status["error"]
    assert "secretsecret" not in status["error"]
    assert http_server.hits("/mrf/in-network.json") == 1  # not retried


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_run_extraction_says_a_served_gz_file_is_neither_gzip_nor_json(
    http_server: Any, tmp_path: Path, engine: str
) -> None:
    url = http_server.add("/mrf/in-network.json.gz", DAMAGED_GZIP + bytes(100))
    status = extract(url + "?Signature=secretsecret", tmp_path, engine)
    assert status["status"] == "failed"
    assert status["retryable"] is False
    assert status["error"].startswith(f"{url} (host 127.0.0.1): the file's name ends in .gz, but")
    assert "its byte 0 (0x3c '<') cannot start JSON either" in status["error"]


# ------------------------------------------------------------------ through the index source

INDEX_EXTRA: dict[str, tuple[bytes, list[str]]] = {
    "array": (b'[{"reporting_structure": []}]', ["its top level is an array"]),
    "other-object": (OTHER_OBJECT, ["not a table of contents", "'plan_name', 'widgets', 'rates'"]),
}


@pytest.mark.parametrize("kind", [*KINDS, *INDEX_EXTRA])
def test_parse_index_says_what_the_file_is(tmp_path: Path, kind: str) -> None:
    data, words = {**KINDS, **INDEX_EXTRA}[kind]
    path = tmp_path / "index.json"
    path.write_bytes(data)
    with pytest.raises(SourceError) as caught:
        parse_index(path)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(("kind", "hint"), [("csv", True), ("tsv", True), ("text", False)])
def test_parse_index_of_a_csv_says_which_source_reads_it(
    tmp_path: Path, kind: str, hint: bool
) -> None:
    path = tmp_path / "plans.csv"
    path.write_bytes(KINDS[kind][0])
    with pytest.raises(SourceError) as caught:
        parse_index(path)
    said = str(caught.value).endswith("; a CSV with a file_url column is read as the csv source")
    assert said is hint, str(caught.value)


def test_parse_index_says_a_gz_file_is_neither_gzip_nor_json(tmp_path: Path) -> None:
    path = tmp_path / "index.json.gz"
    path.write_bytes(DAMAGED_GZIP)
    with pytest.raises(SourceError, match=r"name ends in \.gz, but it does not start as gzip"):
        parse_index(path)


def test_parse_index_served_html_says_so(http_server: Any) -> None:
    url = http_server.add("/toc/index.json", HTML, content_type="text/html")
    with pytest.raises(
        SourceError, match=r"cannot read the index: .*index.json.*: the file is an HTML page"
    ):
        parse_index(url)
