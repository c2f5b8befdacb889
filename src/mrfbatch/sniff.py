"""What decoded bytes are when they are not JSON: an HTML page, an XML error, a PDF, nothing.

A link that has expired or needs a login often answers 200 with a web page, and a cloud store
answers with a short XML error; read as JSON, either fails at byte 0 or 8 with no hint.
`json_start` looks at the first bytes after decompression (and after a UTF-8 BOM, which
mrfbatch.compression strips) and says what they are instead. It is the one check every reader
of JSON goes through: both engines, the index source and remote provider-reference files get
their bytes from `mrfbatch.compression.DecodedStream`, which calls it.

A line of text that cannot start JSON (a CSV of file URLs given where an index belongs) is
said to be text, with its first line. A file whose name ends in .gz or .zip but whose bytes
start as neither that nor JSON (damaged at its start, or not what its name says) is said to be
so. Other bytes it does not recognise are left to the JSON parsers, whose errors name the byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mrfbatch.errors import JsonFormatError
from mrfbatch.redact import redact_text

GZIP_MAGIC = b"\x1f\x8b"  # the first bytes of a gzip member (RFC 1952)
ZIP_MAGIC = b"PK\x03\x04"  # and of a zip archive: its first local file header
PEEK = 4096  # decoded bytes looked at when the first one cannot start JSON
SNIPPET = 60  # characters of the first bytes quoted in a message
_BLANK = b" \t\r\n"
_JSON_START = frozenset(b'{["-0123456789tfn')
_PUNCTUATION = frozenset(b"}],:")  # JSON's, first: mangled JSON, whose parser names the byte
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}  # by first byte
_DELIMITERS = (b",", b";", b"\t")
_MEMBER = re.compile(rb'"\s*:')  # a JSON object's `"key":`, which text and CSV rarely hold
DELIMITED = "delimited text such as a CSV"  # what a message calls a CSV given for JSON
# Other compressed or archive formats: magic bytes, what to call them.
_FORMATS = (
    (b"BZh", "a bzip2 stream"),
    (b"\xfd7zXZ\x00", "an xz stream"),
    (b"\x28\xb5\x2f\xfd", "a zstd stream"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)
# Name endings that promise a compression: what it is, and the bytes it starts with.
_NAMED = (
    (".gz", "gzip", GZIP_MAGIC),
    (".gzip", "gzip", GZIP_MAGIC),
    (".zip", "a zip archive", ZIP_MAGIC),
)
_XML_ERROR = re.compile(rb"<Error>\s*<Code>([^<]{1,100})</Code>(?:\s*<Message>([^<]*)</Message>)?")
_TITLE = re.compile(rb"<title[^>]*>([^<]{1,200})</title>", re.IGNORECASE)
# A tag, a comment, a declaration or a processing instruction: `<` and then a letter, `!`, `?`
# or `/`. Binary bytes that happen to start with `<` (a gzip file with its first byte damaged,
# say) are left to the parser, which names the byte.
_MARKUP = re.compile(rb"<[A-Za-z!?/]")


def json_start(
    chunks: Iterator[bytes], description: str, compression: str, name: str
) -> list[bytes]:
    """The first of `chunks`, read until they show whether their bytes can be JSON; `chunks`
    goes on after them. When they cannot be: JsonFormatError saying what they look like (an
    HTML page, an XML document or error, a PDF, another compressed format, nothing at all),
    with their first bytes shortened and any URL in them without its query string.

    `description` names the file in the message; `compression` ("none", "gzip", "zip") says
    whether the bytes are the file's own or what it decompressed to; `name` is the file's path
    (a URL's without its query), whose ending may promise gzip or zip.
    """
    seen: list[bytes] = []
    size = 0
    first: int | None = None
    for chunk in chunks:
        seen.append(chunk)
        size += len(chunk)
        if first is None:
            blank = chunk.lstrip(_BLANK)
            if blank:
                first = blank[0]
                if first in _JSON_START and first not in _LITERALS:
                    return seen
        if first is not None and size >= PEEK:
            break
    head = b"".join(seen)
    problem = describe(head.lstrip(_BLANK), size, compression) or _misnamed(name, head, compression)
    if problem is None:
        return [head]
    raise JsonFormatError(f"{description}: {problem}")


def describe(head: bytes, size: int, compression: str) -> str | None:
    """What `head` (the first non-blank bytes of `size` decoded bytes) is, when it is
    recognisably not JSON; None when it is not recognised."""
    after = "" if compression == "none" else " after decompression"
    if not head:
        if size == 0:
            return f"the file is empty (0 bytes{after}); expected JSON"
        return f"the file holds only whitespace ({size:,} bytes{after}); expected JSON"
    lower = head[:PEEK].lower()
    if lower.startswith(b"<!doctype html") or b"<html" in lower:
        title = _TITLE.search(head)
        titled = f"title {_text(title.group(1))}, " if title else ""
        return (
            "the file is an HTML page, not JSON: the link may have expired or need a login "
            f"({titled}first bytes: {_text(head)})"
        )
    error = _XML_ERROR.search(head)
    if error is not None:
        code = re.sub(rb"[^A-Za-z0-9._-]", b"", error.group(1))[:SNIPPET].decode()
        message = f": {_text(error.group(2))}" if error.group(2) else ""
        return (
            f"the file is an XML error from the server, not JSON: {code}{message} (the link "
            "may have expired, or the file may not exist or need permission)"
        )
    if _MARKUP.match(head):
        kind = "an XML document" if lower.startswith(b"<?xml") else "markup (XML or HTML)"
        return f"the file is {kind}, not JSON (first bytes: {_text(head)})"
    if head.startswith(b"%PDF-"):
        return f"the file is a PDF document, not JSON (first bytes: {_text(head[:8])})"
    for magic, kind in _FORMATS:
        if head.startswith(magic):
            return f"the file is {kind}{after}, not JSON; only gzip and zip files are read"
    return _plain_text(head)


def _misnamed(name: str, head: bytes, compression: str) -> str | None:
    """What to say when `name`'s ending promises gzip or zip, but `head` (the first decoded
    bytes, blanks included, not all blank) starts as neither that nor JSON; None otherwise."""
    if compression != "none":
        return None
    named = next((entry for entry in _NAMED if name.lower().endswith(entry[0])), None)
    at = len(head) - len(head.lstrip(_BLANK))
    byte = head[at]
    if named is None or byte in _JSON_START:
        return None
    ending, kind, magic = named
    shown = f"0x{byte:02x}" + (f" {chr(byte)!r}" if 0x20 < byte < 0x7F else "")
    return (
        f"the file's name ends in {ending}, but it does not start as {kind} does "
        f"({magic.hex(' ')}), and its byte {at} ({shown}) cannot start JSON either: the file is "
        "damaged, or not what its name says"
    )


def _plain_text(head: bytes) -> str | None:
    """What `head` is when it is a line of text that cannot start JSON (a CSV given where an
    index or a rates file belongs, say); None when it may be JSON or is not text. JSON whose
    first byte is wrong (its members follow) is left to the parser, which names the byte."""
    literal = _LITERALS.get(head[0])
    if head[0] in _JSON_START and (
        literal is None or literal.startswith(head[:5]) or head.startswith(literal)
    ):
        return None  # JSON, or bytes its parser words better
    if head[0] in _PUNCTUATION or _MEMBER.search(head):
        return None
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.replace("\t", " ").isprintable():
        return None
    if any(mark in line for mark in _DELIMITERS):
        return f"the file is {DELIMITED}, not the JSON object expected (first line: {_text(line)})"
    return f"the file is text, not the JSON object expected (first line: {_text(line)})"


def _text(data: bytes) -> str:
    """`data` as a short quoted snippet: blanks collapsed, URLs without their query strings."""
    text = " ".join(data[: SNIPPET * 4].decode("utf-8", "replace").split())
    text = redact_text(text)
    return repr(text if len(text) <= SNIPPET else text[: SNIPPET - 3] + "...")
