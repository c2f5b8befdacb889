"""Billing-code whitelists: which in_network items to extract."""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mrfbatch.errors import WhitelistError

CODE_COLUMN = "billing_code"
# Lone words a list of codes is headed with (lower case, spaces and hyphens as underscores).
HEADER_WORDS = frozenset(
    {
        "billing_code",  # written "Billing Code": a header, but not the column name we read
        "billing_codes",
        "code",
        "codes",
        "cpt",
        "cpt_code",
        "cpt_codes",
        "hcpcs",
        "hcpcs_code",
        "hcpcs_codes",
        "procedure_code",
        "procedure_codes",
    }
)

_SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_SPLIT = re.compile("[,;\t]")
_DIGIT = re.compile(r"\d")
_BLANK = re.compile(r"[\s,;]*")
# Characters no billing code has: quotes and brackets left from a spreadsheet or a program's
# list (`"J1885`, `['27447'`), which would be taken as part of the code and match nothing.
_NOT_IN_CODES = re.compile(r"""["'`<>()\[\]{}\\|=]""")
_NOT_IN_CODES_FIX = "remove the characters no billing code has"
# A whole number written with a decimal point and zeros: how a program writes codes it read as
# numbers (pandas, for a column with an empty cell, writes 27447.0).
_DECIMALS = re.compile(r"(\d+)\.0+")
_SHOWN_CHARS = 60
_MAX_COLUMNS = 10  # header columns named in a message; the rest are counted
_EXAMPLE = "one billing code per line, e.g. 27447"


def normalize_code(code: object) -> str:
    """The form codes are compared in: text, trimmed, upper-cased."""
    return str(code).strip().upper()


# The largest whitelist whose codes an extraction counts (status.json's `matched_codes`):
# every manifest reads every status, and 10,000 codes would make each 120 KB.
CODES_COUNTED = 1000


class CodeFilter:
    """Which items an extraction keeps by their billing code (every one, without a whitelist),
    and how many it kept of each code (`matched`; None without a whitelist, or with one of
    more than CODES_COUNTED codes)."""

    def __init__(self, whitelist: frozenset[str] | None):
        self.whitelist = whitelist
        small = whitelist is not None and len(whitelist) <= CODES_COUNTED
        self.matched: Counter[str] | None = Counter() if small else None

    def wants(self, billing_code: object) -> bool:
        """Whether an item with this billing code is kept (None: an item without one)."""
        if self.whitelist is None:
            return True
        return billing_code is not None and normalize_code(billing_code) in self.whitelist

    def keep(self, billing_code: object) -> bool:
        """`wants`, counting the item in `matched` when it is kept."""
        if self.whitelist is None:
            return True
        if billing_code is None:
            return False
        code = normalize_code(billing_code)
        if code not in self.whitelist:
            return False
        if self.matched is not None:
            self.matched[code] += 1
        return True


def load_whitelist(source: str | os.PathLike[str] | Iterable[str]) -> frozenset[str]:
    """Read billing codes from a file, or normalize an iterable of codes.

    The *first line* of a file is its first line with something besides blanks, a `#`
    comment, commas and semicolons. It decides the file's form:

    - a CSV when, split at commas, semicolons or tabs, it has a `billing_code` field (case and
      surrounding spaces ignored): that separator is the file's, and the codes are the
      `billing_code` column of the rows below;
    - one code per line otherwise.

    In both forms lines without a value (blank, `#` comments) are skipped, a `#` after a code
    starts a comment, a code wrapped in double quotes (`"27447"`, as some programs write a
    list) is read without them, and a UTF-8 byte order mark and CRLF line ends are fine.
    Anything else is refused with a WhitelistError naming the file and the line and saying
    what to do:

    - no codes at all: an empty file, or only blank lines and comments;
    - a first line that looks like a header without a `billing_code` column: it holds a
      comma, semicolon or tab, one of its fields has no digit, and none looks like a code
      (no spaces, at least half digits: `27447`, `J1885`, `M17.11`). Billing codes (CPT,
      HCPCS, revenue, DRG, ICD, NDC) all have digits; header words have none or few. A lone
      word of HEADER_WORDS (`code`, `CPT Code`...) is refused the same way;
    - one code per line: a line holding several values, separated by commas, semicolons, tabs
      or spaces (`27447,99213,99214`), counting the other such lines;
    - CSV: a `billing_code` cell holding several values, a row with more fields than the
      header, a quote never closed, two `billing_code` columns, no codes in the column;
    - in both: a code holding a character no billing code has (a quote, a bracket, `<`, `>`,
      `=`, `|`, a backslash): `"J1885` would match nothing.

    For example `27447  # knee`, or `description;billing_code` then `knee, total;27447`.
    """
    if not isinstance(source, str | os.PathLike):
        return frozenset(c for c in (normalize_code(x) for x in source) if c)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WhitelistError(f"whitelist file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WhitelistError(f"whitelist file {path} cannot be read: {exc}") from exc
    # newline="": a line ends at \n, \r\n or \r, as for csv, so both forms count lines alike
    lines = io.StringIO(text, newline="").readlines()
    first = next((i for i, line in enumerate(lines) if not _is_blank(line)), None)
    if first is None:
        found = ", only blank lines and comments" if lines else ": the file is empty"
        raise WhitelistError(
            f"whitelist file {path} lists no billing codes{found}; expected {_EXAMPLE}"
        )
    header = _strip_comment(lines[first])
    separator, columns = _read_header(header)
    if CODE_COLUMN in (c.lower() for c in columns):
        return _codes_from_csv(path, lines, first, separator, columns)
    _check_not_header(path, first + 1, header, separator, columns)
    return _codes_from_lines(path, lines)


def decimals_note(codes: Iterable[str]) -> str | None:
    """A caution when every code is a whole number written with decimals (`27447.0`), else
    None. Such a code matches only a billing code published the same way (a payer may publish
    the JSON number 27447.0), not 27447; a program that read the codes as numbers writes them
    so (pandas does, for an integer column with an empty cell)."""
    ordered = sorted(codes)
    matches = [m for m in map(_DECIMALS.fullmatch, ordered) if m is not None]
    if not ordered or len(matches) < len(ordered):
        return None
    shown = ", ".join(_quote(m.group()) for m in matches[:3])
    more = ", ..." if len(matches) > 3 else ""
    return (
        f"every billing code is a whole number written with decimals ({shown}{more}): each "
        f"matches only a code published so, not {_quote(matches[0].group(1))}; if a program "
        "wrote them from numbers (pandas does, for a column with an empty cell), write them as "
        "text"
    )


def _is_blank(line: str) -> bool:
    """Nothing but spaces, separators and a `#` comment: no value, in either form."""
    return _BLANK.fullmatch(_strip_comment(line)) is not None


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _read_header(text: str) -> tuple[str, list[str]]:
    """The separator and fields of a first line: the separator that gives a billing_code
    field if one does, else the most frequent of comma, semicolon, tab (comma if none is).
    """
    order = sorted(_SEPARATORS, key=lambda mark: -text.count(mark))  # stable: ties keep , ; tab
    for mark in order:
        fields = [f.strip() for f in next(csv.reader([text], delimiter=mark))]
        if CODE_COLUMN in (f.lower() for f in fields):
            return mark, fields
    return order[0], [f.strip() for f in next(csv.reader([text], delimiter=order[0]))]


def _check_not_header(
    path: Path, number: int, text: str, separator: str, columns: list[str]
) -> None:
    """Refuse a first line that is a header, but not one with a billing_code column."""
    words = [c for c in columns if c]
    if (
        separator in text
        and any(not _DIGIT.search(w) for w in words)
        and not any(_looks_like_code(w) for w in words)
    ):
        shown = ", ".join(_quote(w) for w in words[:_MAX_COLUMNS])
        more = f" and {len(words) - _MAX_COLUMNS} more" if len(words) > _MAX_COLUMNS else ""
        raise WhitelistError(
            f"whitelist file {path} line {number} looks like a CSV header but has no "
            f"{CODE_COLUMN} column (found columns {shown}{more}); "
            f"name the column of codes {CODE_COLUMN}"
        )
    if re.sub(r"[\s-]+", "_", text.lower()) in HEADER_WORDS:
        raise WhitelistError(
            f"whitelist file {path} line {number} ({_quote(text)}) looks like a column header, "
            f"not a billing code; name the column {CODE_COLUMN} (a CSV) or delete the line"
        )


def _looks_like_code(text: str) -> bool:
    """No spaces and at least half digits: 27447, J1885, M17.11, 0450 but not ICD10, cpt4."""
    return not any(c.isspace() for c in text) and 2 * len(_DIGIT.findall(text)) >= len(text)


def _codes_from_lines(path: Path, lines: list[str]) -> frozenset[str]:
    codes: set[str] = set()
    problems: list[tuple[int, str, str]] = []  # (line, what was found, what to do)
    expected = f"expected one billing code per line, or a CSV with a {CODE_COLUMN} column"
    for number, line in enumerate(lines, 1):
        text = _strip_comment(line)
        values, separators = _split_values(text)
        if len(values) > 1:
            found = f"{len(values)} values separated by {separators} ({_quote(text)})"
            problems.append((number, found, expected))
        elif values and (value := _unquoted(values[0])):  # `""` is an empty value
            _add_code(codes, problems, number, value)
    _refuse_lines(path, problems)
    if not codes:
        raise WhitelistError(
            f"whitelist file {path} lists no billing codes, only empty values; expected {_EXAMPLE}"
        )
    return frozenset(codes)


def _refuse_lines(path: Path, problems: list[tuple[int, str, str]]) -> None:
    """Refuse the first problem line, counting the others of the same kind (same fix)."""
    if not problems:
        return
    number, found, fix = problems[0]
    same = sum(other == fix for _, _, other in problems) - 1
    more = f", and {same} more {'line' if same == 1 else 'lines'} like it" if same else ""
    raise WhitelistError(f"whitelist file {path} line {number}: {found}{more}; {fix}")


def _codes_from_csv(
    path: Path, lines: list[str], first: int, separator: str, columns: list[str]
) -> frozenset[str]:
    header_line = first + 1
    named = [i for i, c in enumerate(columns) if c.lower() == CODE_COLUMN]
    if len(named) > 1:
        numbers = " and ".join(str(i + 1) for i in named)
        raise WhitelistError(
            f"whitelist file {path} line {header_line}: the header has {len(named)} "
            f"{CODE_COLUMN} columns (columns {numbers}); keep one"
        )
    at = named[0]
    # Comment lines stay as blank ones, so that csv's line numbers are the file's
    body = ("\n" if _is_blank(line) else line for line in lines[header_line:])
    # strict: a quote opened and never closed is an error, not the rest of the file in a cell
    reader = csv.reader(body, delimiter=separator, strict=True)
    codes: set[str] = set()
    problems: list[tuple[int, str, str]] = []  # (line, what was found, what to do)
    line = header_line + 1
    try:
        for row in reader:
            start, line = line, header_line + reader.line_num + 1
            extra = len(row) > len(columns) and any(c.strip() for c in row[len(columns) :])
            if extra and len(columns) > 1:
                found = f"{len(row)} fields where the header (line {header_line}) has "
                found += str(len(columns))
                fix = f"quote values that contain {_SEPARATORS[separator]}"
                problems.append((start, found, fix))
                continue
            if len(columns) == 1:  # no separator in the header: the whole row is the cell
                row = [separator.join(row)]
            cell = _strip_comment(row[at] if at < len(row) else "")
            values, separators = _split_values(cell)
            if len(values) > 1:
                found = f"the {CODE_COLUMN} cell holds {len(values)} values separated by "
                found += f"{separators} ({_quote(cell)})"
                problems.append((start, found, "expected one billing code per row"))
            elif values:
                _add_code(codes, problems, start, values[0])
    except csv.Error as exc:
        found = f"not readable as CSV ({exc})"
        if str(exc) == "unexpected end of data":
            found = "a quote opened in the row starting here is never closed; close it"
        raise WhitelistError(f"whitelist file {path} line {line}: {found}") from exc
    _refuse_lines(path, problems)
    if not codes:
        raise WhitelistError(
            f"whitelist file {path} has a {CODE_COLUMN} column (line {header_line}) with no "
            "codes; expected one billing code per row below the header"
        )
    return frozenset(codes)


def _unquoted(value: str) -> str:
    """A value wrapped in double quotes, without them (a CSV cell's quotes are csv's)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].strip()
    return value


def _add_code(
    codes: set[str], problems: list[tuple[int, str, str]], number: int, value: str
) -> None:
    """Add `value`, the code on line `number`; or, when it holds a character no billing code
    has, the problem, with the code it may have meant."""
    bad = _NOT_IN_CODES.search(value)
    if bad is None:
        codes.add(normalize_code(value))
        return
    found = f"{_quote(value)} holds {bad.group()!r}, which no billing code has"
    meant = _NOT_IN_CODES.sub("", value).strip()
    if meant and _NOT_IN_CODES.search(meant) is None and " " not in meant:
        found += f" (did you mean {_quote(meant)}?)"
    problems.append((number, found, _NOT_IN_CODES_FIX))


def _split_values(text: str) -> tuple[list[str], str]:
    """The values in `text` and what separates them: commas, semicolons or tabs, else spaces.

    Spaces around a comma are padding, and empty values are dropped: `27447,` is one value.
    """
    marks = [mark for mark in _SEPARATORS if mark in text]
    values = [v.strip() for v in _SPLIT.split(text)] if marks else [text.strip()]
    values = [v for v in values if v]
    if len(values) > 1:
        return values, " and ".join(_SEPARATORS[mark] for mark in marks)
    return (values[0].split() if values else []), "spaces"


def _quote(text: str) -> str:
    shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
    return repr(shown)
