"""The C scanner's skim (src/mrfbatch/_jsonscan_skim.c): structural validation of containers;
and its UTF-8 check (src/mrfbatch/_jsonscan_utf8.c), against Python's decoder.

`scan_value(..., skim=d)` only skims containers that bring the depth to d. Checked here, for
every implementation this CPU runs (AVX2, SSE2, plain C):

- on valid JSON (Python's json module writes it) a skimming scan ends where a full scan ends,
  with the same spans of the key at depth 1, whole or fed in pieces;
- a skim never rejects what a full scan accepts, and every implementation gives the same
  verdict, offset and reason on any bytes (mutations of valid JSON);
- each structural fault is found at its byte, wherever it falls in a 64-byte block;
- what only a full scan checks (numbers, literals, commas, colons) passes a skim.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrfbatch._jsonscan import (
    KEY_ESCAPED,
    UTF8_CUT,
    UTF8_INVALID,
    UTF8_VALID,
    ScanError,
    scan_value,
    skim_implementations,
    use_skim,
    utf8_check,
)
from support.budget import max_examples

KEY = b"billing_code"
IMPLEMENTATIONS = skim_implementations()

Verdict = tuple[Any, ...]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = use_skim(request.param)
    try:
        yield request.param
    finally:
        use_skim(previous)


def scan(data: bytes, skim: int, eof: bool = True, pieces: list[int] | None = None) -> Verdict:
    """("done", end, spans, flags), ("more",) or ("invalid", offset, reason); with `pieces`,
    data[:cut] is given for each cut in turn (resuming), then all of it."""
    partial = None
    for cut in [*(pieces or []), len(data)]:
        last = cut == len(data)
        try:
            result = scan_value(data[:cut], 0, eof and last, KEY, partial, skim)
        except ScanError as exc:
            return ("invalid", *exc.args)
        if isinstance(result, tuple):
            return ("done", *result)
        if result is not None:
            partial = result
    return ("more",)


def test_every_cpu_runs_the_portable_implementation() -> None:
    assert IMPLEMENTATIONS[0] == "portable"
    with pytest.raises(ValueError, match="no implementation"):
        use_skim("neon-on-x86")


# Valid JSON -----------------------------------------------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(['"', "\\", "\n", "\t", "{", "}", "[", "]", "\x00", "\x1f"]),
    max_size=90,
)
NUMBERS = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)
ITEMS = st.fixed_dictionaries(
    {"billing_code": SCALARS, "negotiated_rates": VALUES}, optional={"name": TEXT, "x": VALUES}
)


def layout(value: Any, style: int, ascii: bool) -> bytes:
    if style == 0:
        text = json.dumps(value, ensure_ascii=ascii, separators=(",", ":"))
    elif style == 1:
        text = json.dumps(value, ensure_ascii=ascii)
    else:
        text = json.dumps(value, ensure_ascii=ascii, indent=style).replace("\n", "\r\n")
    return text.encode()


RUN = settings(
    max_examples=max_examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@RUN
@given(
    item=ITEMS,
    style=st.integers(0, 3),
    ascii=st.booleans(),
    shift=st.integers(0, 70),
    data=st.data(),
)
def test_skimming_scan_ends_where_a_full_scan_ends(
    impl: str, item: dict[str, Any], style: int, ascii: bool, shift: int, data: st.DataObject
) -> None:
    doc = b" " * shift + layout(item, style, ascii)
    full = scan(doc, 0)
    assert full[0] == "done", full
    for skim in (1, 2):
        skimmed = scan(doc, skim)
        assert skimmed[0] == "done" and skimmed[1] == full[1], (skim, skimmed, full)
        if skim == 2:  # depth 1 is scanned in full: the key's spans and KEY_ESCAPED are found
            assert skimmed[2] == full[2] and skimmed[3] & KEY_ESCAPED == full[3] & KEY_ESCAPED
        cuts = sorted(data.draw(st.lists(st.integers(0, len(doc)), max_size=6), label="cuts"))
        assert scan(doc, skim, pieces=cuts) == skimmed
        assert scan(doc[:-1], skim)[0] == "more"  # the last bracket missing: truncated


# Any bytes ------------------------------------------------------------------------------------


@settings(max_examples=max_examples(500), deadline=None)
@given(
    item=ITEMS,
    style=st.integers(0, 2),
    shift=st.integers(0, 64),
    changes=st.lists(
        st.tuples(
            st.integers(0, 1 << 16),
            st.sampled_from([b'"', b"\\", b"{", b"}", b"[", b"]", b"\x01", b"\xe9", b"u", b""]),
        ),
        min_size=1,
        max_size=3,
    ),
    cuts=st.lists(st.integers(0, 400), max_size=4),
)
def test_implementations_agree_and_never_reject_valid_json(
    item: dict[str, Any], style: int, shift: int, changes: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    buf = bytearray(b" " * shift + layout(item, style, True))
    for at, replacement in changes:
        at %= len(buf) + 1
        buf[at : at + 1] = replacement
    doc = bytes(buf)
    full = scan(doc, 0)
    pieces = sorted(cut % (len(doc) + 1) for cut in cuts)
    for skim in (1, 2):
        verdicts = {}
        for name in IMPLEMENTATIONS:
            previous = use_skim(name)
            try:
                verdicts[name] = (scan(doc, skim), scan(doc, skim, pieces=pieces))
            finally:
                use_skim(previous)
        whole, in_pieces = verdicts["portable"]
        assert all(v == (whole, in_pieces) for v in verdicts.values()), verdicts
        assert in_pieces == whole
        if full[0] == "done":
            assert whole[0] == "done" and whole[1] == full[1], (whole, full)
        if whole[0] == "invalid":
            assert full[0] == "invalid", (whole, full)


# Faults at their byte -------------------------------------------------------------------------

FAULTS = {
    # name: (the bytes inside a skimmed array, the fault's offset in them, the reason)
    "control-character-in-string": (b'["ab\x01c"]', 4, "control character in string"),
    "newline-in-string": (b'["ab\nc"]', 4, "control character in string"),
    "invalid-escape": (b'["ab\\qc"]', 5, "invalid escape"),
    "bad-hex-in-escape": (b'["ab\\u00z9"]', 8, "invalid \\u escape"),
    "bracket-mismatch": (b"[1,{2]", 5, "expected '}' to close the object"),
    "brace-mismatch": (b"[1,[2}]", 5, "expected ']' to close the array"),
    "backslash-outside-string": (b"[1,\\2]", 3, "backslash outside a string"),
    "non-ascii-outside-string": ("[1,é]".encode(), 3, "byte >= 0x80 outside a string"),
    "control-character-outside-string": (b"[1,\x002]", 3, "control character outside a string"),
}


@pytest.mark.parametrize("name", list(FAULTS))
@pytest.mark.parametrize("shift", [0, 1, 55, 58, 59, 60, 61, 62, 63, 64, 65, 127, 128])
def test_structural_fault_found_at_its_byte(impl: str, name: str, shift: int) -> None:
    """`shift` blanks in front move the fault across the edge of a 64-byte block (the value
    starts after `{"a":`, 5 bytes in)."""
    body, offset, reason = FAULTS[name]
    prefix = b'{"a":' + b" " * shift
    doc = prefix + body + b"}"
    assert scan(doc, 2) == ("invalid", len(prefix) + offset, reason)
    assert scan(doc, 2, pieces=list(range(0, len(doc), 7))) == scan(doc, 2)


@pytest.mark.parametrize("run", range(1, 6))
@pytest.mark.parametrize("shift", range(56, 68))
def test_backslash_runs_across_a_block_edge(impl: str, run: int, shift: int) -> None:
    """A run of `run` backslashes ending near byte 64: an odd run escapes the quote after it,
    and a second quote closes the string; an even one leaves the quote closing it."""
    text = b"\\" * run + b'"' + (b'"' if run % 2 else b"")
    doc = b'{"a":[' + b" " * shift + b'"x' + text + b",1]}"
    assert scan(doc, 2) == scan(doc, 0) == ("done", len(doc), (), 0)
    # one quote fewer after an odd run: the string never closes
    if run % 2:
        cut = doc.replace(b'""', b'"')
        assert scan(cut, 2) == ("more",)


@pytest.mark.parametrize("shift", range(54, 70))
def test_escape_cut_by_the_buffer_end_waits_for_more(impl: str, shift: int) -> None:
    doc = b'{"a":[' + b" " * shift + b'"x\\u00e9y"]}'
    at = doc.index(b"\\u") + 3
    assert scan(doc[:at], 2, eof=False) == ("more",)
    assert scan(doc, 2, pieces=[at]) == scan(doc, 0)
    assert scan(doc[:at], 2) == ("more",)  # at eof the caller reports it as truncated


def test_only_a_full_scan_checks_numbers_literals_and_punctuation(impl: str) -> None:
    doc = b'{"billing_code":"1","rates":[tru, 01, NaN, 1.e5 "a" "b":: {"k" 1}],"c":2}'
    assert scan(doc, 0)[0] == "invalid"
    assert scan(doc, 2) == ("done", len(doc), ((16, 19),), 0)


def test_depth_one_is_scanned_in_full(impl: str) -> None:
    """With skim=2 the item's own members are scanned as before: a bad number there fails."""
    assert scan(b'{"billing_code":01,"r":[]}', 2) == ("invalid", 17, "invalid number: leading zero")


# The UTF-8 check (_jsonscan_utf8.c) -----------------------------------------------------------


def python_verdict(data: bytes) -> tuple[int, int]:
    """What utf8_check must say, from Python's strict decoder (the oracle)."""
    try:
        data.decode("utf-8")
        return (UTF8_VALID, len(data))
    except UnicodeDecodeError as exc:
        at = exc.start
    # Cut: the rest from `at` is a proper prefix of some valid character.
    rest = data[at:]
    tails = [tail for n in range(1, 4 - len(rest) + 1) for tail in _TAILS[n]]
    if len(rest) < 4 and any(_decodes(rest + tail) for tail in tails):
        return (UTF8_CUT, at)
    return (UTF8_INVALID, at)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# Continuation bytes to try after a cut start: every one for the first, one for the others.
_TAILS = {n: [bytes([first]) + b"\x80" * (n - 1) for first in range(0x80, 0xC0)] for n in (1, 2, 3)}


@settings(max_examples=max_examples(2000), deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8).map(
            lambda text: text.encode()
        )
        | st.binary(max_size=4)
        | st.sampled_from([b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe0\x9f\xbf"]),
        max_size=8,
    ).map(b"".join),
    st.integers(0, 12),
)
def test_utf8_check_agrees_with_python(data: bytes, cut: int) -> None:
    for piece in (data, data[: max(0, len(data) - cut)]):
        assert utf8_check(piece) == python_verdict(piece), piece


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"plain ascii, longer than eight bytes", (UTF8_VALID, 36)),
        ("café ✓ 😀".encode(), (UTF8_VALID, 14)),  # 3 + 2 + 1 + 3 + 1 + 4 bytes
        ("12345678é".encode()[:-1], (UTF8_CUT, 8)),
        (b"abc\xc0\xafdef", (UTF8_INVALID, 3)),  # an overlong '/'
        (b"ab\xed\xa0\x80", (UTF8_INVALID, 2)),  # a surrogate
        (b"\xf4\x90\x80\x80", (UTF8_INVALID, 0)),  # above U+10FFFF
        (b"abcdefgh\xe2\x9c", (UTF8_CUT, 8)),
        (b"abcdefgh\xe2\x28", (UTF8_INVALID, 8)),
    ],
)
def test_utf8_check_by_hand(data: bytes, verdict: tuple[int, int]) -> None:
    assert utf8_check(data) == verdict
