"""Small text files a person writes (a plans CSV, a URL list, a whitelist): read
whole as UTF-8, refusing what is not text with the reason and where; shown shortened."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from mrfbatch.errors import SourceError
from mrfbatch.sniff import GZIP_MAGIC, ZIP_MAGIC

SHOWN_CHARS = 80  # characters of a value quoted in a message

PathLike = str | os.PathLike[str]


def read_text(path: PathLike, what: str, bom: bool = True) -> str:
    """The UTF-8 text of a small local file, or SourceError saying what is wrong and where.

    Compressed files, UTF-16, NUL bytes (binary files) and anything but a regular file are
    refused; with `bom`, byte order marks are dropped wherever they are.
    """
    name = str(path)
    with open_regular(path, what) as f:
        try:
            data = f.read()
        except OSError as exc:
            raise SourceError(f"cannot read {what} {name}: {exc.strerror or exc}") from exc
    if data.startswith((GZIP_MAGIC, ZIP_MAGIC)):
        kind = "gzip" if data.startswith(GZIP_MAGIC) else "zip"
        raise SourceError(f"{what} {name} is {kind}-compressed; expected plain UTF-8 text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(f"{what} {name} starts with a UTF-16 byte order mark; save it as UTF-8")
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not 0 <= nul < exc.start:
            line = data.count(b"\n", 0, exc.start) + 1
            raise SourceError(
                f"{what} {name} is not UTF-8 text: byte {exc.start} (line {line}) is "
                f"{data[exc.start : exc.start + 1]!r}; save it as UTF-8"
            ) from exc
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise SourceError(
            f"{what} {name} holds a NUL byte at byte {nul} (line {line}); expected text "
            "(is it a binary file, or UTF-16?)"
        )
    # A byte order mark at the start, or inside where files were joined (`cat a.csv b.csv`)
    return text.replace("\ufeff", "") if bom else text


def open_regular(path: PathLike, what: str) -> BinaryIO:
    """`path` opened for reading bytes, or SourceError when it is missing, not a regular
    file (a directory, a pipe, a device) or cannot be opened."""
    name = str(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SourceError(f"{what} {name} is a directory, expected a file")
        if not stat.S_ISREG(mode):  # reading a pipe or a device could block or never end
            raise SourceError(f"{what} {name} is not a regular file (a pipe or a device?)")
        return open(path, "rb")  # noqa: SIM115  # the caller closes it
    except FileNotFoundError:
        raise SourceError(f"{what} {name} does not exist") from None
    except OSError as exc:
        raise SourceError(f"cannot read {what} {name}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL in the name
        raise SourceError(f"{what} {name!r} is not a usable file name: {exc}") from None


def shorten(text: str) -> str:
    """`text` quoted, cut to SHOWN_CHARS characters."""
    return repr(cut(text))


def cut(text: str) -> str:
    """`text` cut to SHOWN_CHARS characters, ending with an ellipsis when cut."""
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
