"""The C scanner (mrfbatch._jsonscan) against an independent oracle: Python's json module.

`scan_value` must give the same verdict as `json` (strict) on one value: where it ends, that it
needs more data (the bytes are a proper prefix of some JSON value), or that it is invalid. The
oracle is adjusted only where yajl, the reference engine's parser, differs from `json`: NaN and
Infinity are invalid, and a top-level number may not be followed by `.`, `e` or a digit (`1.`,
`1e5`'s prefix `1e`, `01`), which `json.JSONDecoder.raw_decode` stops before. A low surrogate
escape with no high one before it is invalid too: json takes it, but ijson cannot decode what
yajl makes of it.

Inputs: hand-written values (each yajl trap with its exact offset), random JSON from
hypothesis written by json.dumps in several layouts, every truncation of those, and single-byte
mutations of them. A scan resumed from a `Partial` as data arrives must end as one scan does.
The import below fails, not skips, when the extension is not built.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrfbatch._jsonscan import (
    AFTER_ELEMENT,
    AT_ELEMENT,
    CLOSED,
    KEY_ESCAPED,
    LONE_SURROGATE,
    MAX_DEPTH,
    Partial,
    ScanError,
    scan_elements,
    scan_value,
)
from support.budget import max_examples

KEY = b"billing_code"
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
BLANKS = " \t\r\n"

Verdict = tuple[Any, ...]


def scan(data: bytes, eof: bool = True, key: bytes | None = KEY, pos: int = 0) -> Verdict:
    """("done", end, spans, flags), ("more",) or ("invalid", offset, reason)."""
    try:
        result = scan_value(data, pos, eof, key)
    except ScanError as exc:
        return ("invalid", *exc.args)
    if not isinstance(result, tuple):
        return ("more",)
    return ("done", *result)


def scan_in_pieces(data: bytes, cuts: list[int], eof: bool = True) -> Verdict:
    """`scan`, given data[:cut] for each cut in turn, then all of it; each try resumes."""
    partial: Partial | None = None
    buf = bytearray()
    for cut in [*cuts, len(data)]:
        buf[len(buf) :] = data[len(buf) : cut]
        last = cut == len(data)
        try:
            result = scan_value(buf, 0, eof and last, KEY, partial)
        except ScanError as exc:
            return ("invalid", *exc.args)
        if isinstance(result, tuple):
            return ("done", *result)
        partial = result
    return ("more",)


class _Constant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Constant(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _number_prefix(text: str) -> bool:
    """Whether `text` is a JSON number or the start of one."""
    return any(NUMBER.fullmatch(text + tail) for tail in ("", "0", ".0", "e0"))


def _cut(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether json failed only because `text` stops: more bytes could make it valid."""
    pos = exc.pos
    if pos >= len(text) or exc.msg.startswith("Unterminated string"):
        return True
    tail = text[pos:]
    if exc.msg.startswith("Invalid \\uXXXX escape"):
        digits = text[pos + 2 :]
        return len(digits) < 4 and all(c in "0123456789abcdefABCDEF" for c in digits)
    if exc.msg.startswith("Expecting value"):  # a value starts here: `-`, `tr`
        literal = any(word.startswith(tail) for word in ("true", "false", "null"))
        return literal or _number_prefix(tail)
    # json stops a number before a `.` or `e` it cannot use (`[1.`): take the whole token.
    start = pos
    while start > 0 and text[start - 1] in "-0123456789.eE+":
        start -= 1
    return start < pos and _number_prefix(text[start:])


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")


def _lone_low_surrogate(text: str) -> bool:
    """Whether valid JSON `text` has a `\\uDC00`-`\\uDFFF` escape right after no high one."""
    high_ends = -1
    for match in _ESCAPE.finditer(text):
        unit = int(match.group(1), 16) if match.group(1) else -1
        if 0xDC00 <= unit <= 0xDFFF and match.start() != high_ends:
            return True
        high_ends = match.end() if 0xD800 <= unit <= 0xDBFF else -1
    return False


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogateescape"))


def oracle(data: bytes, eof: bool) -> tuple[str, int | None]:
    """json's verdict on the value at the start of `data`: ("done", end), ("more", None),
    ("invalid", offset). Bytes that are not UTF-8 become lone surrogates, which json takes
    inside strings and rejects outside them, as the scanner does."""
    text = data.decode("utf-8", "surrogateescape")
    start = len(text) - len(text.lstrip(BLANKS))
    if start == len(text):
        return ("more", None)
    try:
        _, end = _DECODER.raw_decode(text, start)
    except _Constant:
        return ("invalid", _offset(text, start))
    except json.JSONDecodeError as exc:
        return ("more", None) if _cut(text, exc) else ("invalid", _offset(text, exc.pos))
    if _lone_low_surrogate(text[start:end]):
        return ("invalid", None)
    number = NUMBER.match(text, start)
    if number is not None and number.end() == end:  # a top-level number
        if end < len(text) and text[end] in ".eE0123456789":
            rest = text[start:]
            token = re.match(r"[-0-9.eE+]*", rest)
            assert token is not None
            if token.end() == len(rest) and _number_prefix(rest):
                return ("done", len(data)) if eof and NUMBER.fullmatch(rest) else ("more", None)
            return ("invalid", None)
        if end == len(text) and not eof:
            return ("more", None)
    return ("done", _offset(text, end))


def verdict(result: Verdict) -> tuple[str, int | None]:
    return (result[0], result[1] if result[0] == "done" else None)


def assert_agrees(data: bytes, eof: bool) -> Verdict:
    result = scan(data, eof)
    expected = oracle(data, eof)
    if expected[0] == "invalid":
        assert result[0] == "invalid", f"{data!r} eof={eof}: scanner {result}, json {expected}"
    else:
        assert verdict(result) == expected, f"{data!r} eof={eof}: scanner {result}, json {expected}"
    return result


def assert_spans(data: bytes, result: Verdict) -> None:
    """The spans are the values json gives for the top-level object's `billing_code` keys."""
    _, end, spans, flags = result
    text = data[:end].decode("utf-8", "surrogateescape")
    doc = json.loads(text, object_pairs_hook=list)
    if not isinstance(doc, list) or not text.lstrip(BLANKS).startswith("{"):
        assert spans == ()
        return
    wanted = [value for name, value in doc if name == KEY.decode()]
    found = [
        json.loads(data[s:e].decode("utf-8", "surrogateescape"), object_pairs_hook=list)
        for s, e in spans
    ]
    assert found == wanted, (data, spans)  # keys with escapes too, once decoded


# ---------------------------------------------------------------------------------------------
# Hand-written values
# ---------------------------------------------------------------------------------------------

VALID = {
    # data: end
    b"0": 1,
    b"-0": 2,
    b"-12.5e+3": 8,
    b"1E-2": 4,
    b'"a\\"b"': 6,
    b'"\\\\"': 4,
    b'"\\/\\b\\f\\n\\r\\t\\u00e9"': 20,
    '"caf\u00e9 \u2713"'.encode(): 11,
    b'"\x7f"': 3,
    b"true": 4,
    b"false": 5,
    b"null": 4,
    b"[]": 2,
    b"{}": 2,
    b" \t\r\n[ 1 , {} ]": 14,
    b'{"a":[1,{"b":null}],"c":""}': 27,
    b'{"billing_code" : "99213" }': 27,
    b"[1,2] trailing": 5,
    b'"x",': 3,
    b"true1": 4,
    b"null]": 4,
    b"[" * MAX_DEPTH + b"]" * MAX_DEPTH: 2 * MAX_DEPTH,
}


@pytest.mark.parametrize("data", list(VALID), ids=lambda d: repr(d[:24]))
def test_scan_value_valid(data: bytes) -> None:
    assert scan(data)[:2] == ("done", VALID[data])
    assert scan(b"xyz" + data, pos=3)[:2] == ("done", VALID[data] + 3)


INVALID = {
    # data: offset of the first byte that cannot be JSON
    b"\x0b1": 0,
    b"\x0c1": 0,
    b"[1,\x0c2]": 3,
    b"\xc2\xa01": 0,
    b"[1\xc2\xa0]": 2,
    b"NaN": 0,
    b"[-Infinity]": 2,
    b"+1": 0,
    b".5": 0,
    b"[01]": 2,
    b"-01": 2,
    b"[-x]": 2,
    b"[1.]": 3,
    b"[1.e5]": 3,
    b"[1e]": 3,
    b"[1e+]": 4,
    b"[1x]": 2,
    b"1.x": 2,
    b"tru ": 3,
    b"[tru]": 4,
    b"nul1": 3,
    b"fals": None,  # cut, not invalid: checked below
    b'"a\nb"': 2,
    b'"a\x00b"': 2,
    b'"a\x1fb"': 2,
    b'"a\\qb"': 3,
    b'"a\\u00g0"': 6,
    b'"a\\U0041"': 3,
    b'"\\udc00"': 1,  # json takes it; ijson fails on what yajl makes of it
    b'"\\ud800\\u00zz"': 11,
    b"[1,]": 3,
    b"[1 2]": 3,
    b'{"a":1,}': 7,
    b'{"a" 1}': 5,
    b'{"a":}': 5,
    b"{a:1}": 1,
    b"{'a':1}": 1,
    b'{"a":1]': 6,
    b"[1}": 2,
    b"[/*c*/1]": 1,
    b"'x'": 0,
    b"]": 0,
    b"\xff": 0,
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1): MAX_DEPTH,
}


@pytest.mark.parametrize("data", [d for d in INVALID if INVALID[d] is not None], ids=repr)
def test_scan_value_invalid_names_offset(data: bytes) -> None:
    result = scan(data)
    assert result[:2] == ("invalid", INVALID[data]), result
    if data.startswith(b"[" * 100):
        assert result[2] == "nested deeper than 5000 levels"
    elif b"\\udc00" not in data:
        assert oracle(data, True)[0] == "invalid"


CUT = [
    b"",
    b"  ",
    b"-",
    b"1.",
    b"1e",
    b"1E+",
    b"t",
    b"fals",
    b"nul",
    b'"abc',
    b'"abc\\',
    b'"\\u00',
    b'"\\ud800',
    b'"\\ud800\\',
    b'"\\ud800\\u',
    b'"\\ud800\\udc0',
    b"[",
    b"[1,",
    b"[1",
    b"[-",
    b'{"a"',
    b'{"a":',
    b'{"a":1',
    b'{"a":1 ,',
    b'{"a":"\xc3',
]


@pytest.mark.parametrize("data", CUT, ids=repr)
def test_scan_value_needs_more_data(data: bytes) -> None:
    assert scan(data, eof=False) == ("more",)
    assert scan(data, eof=True) == ("more",)  # at the end of the file: it is truncated
    assert oracle(data, True) == ("more", None)


@pytest.mark.parametrize("data", [b"12", b"-0", b"1.5", b"1e5", b"0"])
def test_scan_value_number_at_end_of_buffer_needs_more_unless_eof(data: bytes) -> None:
    assert scan(data, eof=False) == ("more",)
    assert scan(data, eof=True)[:2] == ("done", len(data))
    assert scan(b"[" + data, eof=True) == ("more",)
    assert scan(data + b" ", eof=False)[:2] == ("done", len(data))


def test_scan_value_spans_of_depth_one_keys_only() -> None:
    data = (
        b'{"bundled_codes":[{"billing_code":"1"}],"billing_code" :\t"99213","x":{"billing_code":2},'
        b'"billing_codes":3,"billing_code":[1,{"a":2}],"y":"\\"billing_code\\":4"}'
    )
    _, end, spans, flags = scan(data)
    assert end == len(data) and flags == 0
    assert [data[s:e] for s, e in spans] == [b'"99213"', b'[1,{"a":2}]']
    assert scan(data, key=None)[2] == ()
    assert scan(data, key=b"x")[2] == (
        (data.index(b'{"billing_code":2}'), data.index(b',"bil', 70)),
    )
    assert scan(b'[{"billing_code":1}]')[2] == ()  # not an object: no depth-1 members


@pytest.mark.parametrize(
    ("data", "flags"),
    [
        (b'{"billing\\u005fcodes":"1"}', KEY_ESCAPED),
        (b'{"a\\"b":1}', KEY_ESCAPED),
        (b'{"a":{"b\\n":1}}', 0),  # deeper keys do not count
        (b'{"a":"\\u00e9"}', 0),
        (b'"\\ud800"', LONE_SURROGATE),
        (b'"\\uDBFF x"', LONE_SURROGATE),
        (b'"\\ud83d\\ude00"', 0),
        (b'"\\ud800\\ud83d\\ude00"', LONE_SURROGATE),
        (b'"\\ud800\\u0041"', LONE_SURROGATE),
        (b'"\\\\ud800"', 0),  # an escaped backslash, then text
        (b'{"k\\u0041":"\\ud800"}', KEY_ESCAPED | LONE_SURROGATE),
    ],
)
def test_scan_value_flags(data: bytes, flags: int) -> None:
    assert scan(data) == ("done", len(data), (), flags)


@pytest.mark.parametrize(
    "key",
    [
        b'"billing\\u005fcode"',
        b'"\\u0062illing_cod\\u0065"',
        b'"billing\\u005Fcode"',
        b'"\\u0062\\u0069\\u006c\\u006c\\u0069\\u006e\\u0067\\u005f\\u0063\\u006f\\u0064\\u0065"',
    ],
)
def test_scan_value_keys_spelled_with_escapes_are_the_key(key: bytes) -> None:
    data = b'{"a\\"b":0,' + key + b':"99213","billing_code\\u00e9":1,"billing_codex":2}'
    assert json.loads(key) == "billing_code"  # the spec's reading of the key
    code = data.index(b'"99213"')
    assert scan(data) == ("done", len(data), ((code, code + 7),), KEY_ESCAPED)


def test_scan_value_resumes_where_it_stopped() -> None:
    data = b'x{"a":[1,{"b":"\\ud800"}],"billing_code":"99213","c":[[[2.5]]],"billing_code":7}'
    code = data.index(b'"99213"')
    spans = ((code, code + 7), (len(data) - 2, len(data) - 1))
    assert scan(data, pos=1) == ("done", len(data), spans, LONE_SURROGATE)
    buf = bytearray(data[:30])
    partial = scan_value(buf, 1, False, KEY)
    assert isinstance(partial, Partial)  # stopped inside "a"'s array, after its `1`
    buf += data[30:60]
    partial = scan_value(buf, 1, False, KEY, partial)
    assert isinstance(partial, Partial)
    del buf[:1]  # the buffer's front is dropped: offsets are relative to the value's start
    buf += data[60:]
    moved = tuple((start - 1, end - 1) for start, end in spans)
    assert scan_value(buf, 0, False, KEY, partial) == (len(data) - 1, moved, LONE_SURROGATE)
    assert scan_value(bytearray(data[:5]), 1, False, KEY) is None  # nothing to keep yet
    with pytest.raises(ValueError, match="holds less than it did"):
        scan_value(data[:20], 1, False, KEY, partial)
    with pytest.raises(TypeError, match="must be a Partial"):
        scan_value(data, 1, False, KEY, (1, 2))  # type: ignore[arg-type]


def test_scan_value_reads_bytearray_and_checks_arguments() -> None:
    buf = bytearray(b' {"billing_code":7} ')
    assert scan_value(buf, 1, False, KEY) == (19, ((17, 18),), 0)
    assert scan_value(buf, len(buf), True, None) is None
    with pytest.raises(ValueError, match="outside the buffer"):
        scan_value(buf, len(buf) + 1, True, None)
    with pytest.raises(TypeError, match="key must be bytes"):
        scan_value(buf, 0, True, "billing_code")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_value("{}", 0, True, None)  # type: ignore[arg-type]


def test_scan_value_many_duplicate_keys() -> None:
    data = b"{" + b",".join(b'"billing_code":%d' % i for i in range(100)) + b"}"
    _, _, spans, _ = scan(data)
    assert [int(data[s:e]) for s, e in spans] == list(range(100))


def test_scan_value_long_value_releasing_the_gil() -> None:
    """Values over 256 KiB are scanned without the GIL: the same result."""
    data = json.dumps({"a": ["x" * 50, 12.5] * 20000, "billing_code": "J1"}).encode()
    assert len(data) > 1 << 20
    _, end, spans, _ = scan(data)
    assert end == len(data) and [data[s:e] for s, e in spans] == [b'"J1"']
    assert scan(data[:-1], eof=True) == ("more",)
    assert scan(data.replace(b"12.5", b"12.x"))[:2] == ("invalid", data.index(b"12.5") + 3)


# ---------------------------------------------------------------------------------------------
# Random JSON, its truncations and its single-byte mutations
# ---------------------------------------------------------------------------------------------

keys = st.one_of(st.sampled_from(["billing_code", "billing_codes", "a", ""]), st.text(max_size=5))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)
LAYOUTS = [
    {"separators": (",", ":")},
    {},
    {"indent": 1},
    {"indent": "\t", "separators": (" ,", " : ")},
]
MUTANTS = b'"\\{}[],:0-+.eE 1\t\n\x00\x0b\x1f\x7f\x80\xc3tfnux/'
RANDOM = settings(
    max_examples=max_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def dumps(value: Any, layout: int, ensure_ascii: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ensure_ascii, **LAYOUTS[layout])
    return text.encode("utf-8", "surrogatepass" if ensure_ascii else "surrogateescape")


@RANDOM
@given(
    value=values,
    layout=st.integers(0, len(LAYOUTS) - 1),
    ensure_ascii=st.booleans(),
    after=st.sampled_from([b"", b",", b"]", b" }", b"\r\n", b"x"]),
)
def test_scan_value_agrees_with_json_on_random_values(
    value: Any, layout: int, ensure_ascii: bool, after: bytes
) -> None:
    data = dumps(value, layout, ensure_ascii)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return  # a lone surrogate written raw: not UTF-8, which the engine rejects first
    for eof in (False, True):
        result = assert_agrees(data + after, eof)
        if result[0] == "done":
            assert result[1] == len(data)
            assert_spans(data, result)


@RANDOM
@given(value=values, layout=st.integers(0, len(LAYOUTS) - 1), ensure_ascii=st.booleans())
def test_scan_value_agrees_with_json_on_every_truncation(
    value: Any, layout: int, ensure_ascii: bool
) -> None:
    data = dumps(value, layout, ensure_ascii)
    for cut in range(len(data)):
        for eof in (False, True):
            assert_agrees(data[:cut], eof)
    whole = scan(data)
    step = max(1, len(data) // 7)
    for cuts in (list(range(1, len(data))), list(range(step, len(data), step))):
        assert scan_in_pieces(data, cuts) == whole  # resumed at every byte, or a few times


@RANDOM
@given(value=values, layout=st.integers(0, len(LAYOUTS) - 1), data=st.data())
def test_scan_value_agrees_with_json_on_single_byte_mutations(
    value: Any, layout: int, data: st.DataObject
) -> None:
    doc = dumps({"billing_code": value, "x": [value]}, layout, True)
    replacements = data.draw(st.lists(st.sampled_from(MUTANTS), min_size=1, max_size=4))
    for at in range(len(doc)):
        for byte in replacements:
            mutated = doc[:at] + bytes([byte]) + doc[at + 1 :]
            for eof in (False, True):
                result = assert_agrees(mutated, eof)
                if result[0] == "done":
                    assert_spans(mutated, result)
            pieces = scan_in_pieces(mutated, [at, at + 1, at + 3])
            assert pieces == scan(mutated), f"{mutated!r} resumed at {at}"


# scan_elements: runs of array elements per call. Each element must be what scan_value says it
# is (scan_value is checked against json above); where each starts and ends comes from how the
# test wrote the array.


def write_array(elements: list[bytes], blank: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """`[` + elements joined by `,` with blanks around them + `]`, and each element's span."""
    out, spans = bytearray(b"[" + blank), []
    for i, element in enumerate(elements):
        if i:
            out += blank + b"," + blank
        spans.append((len(out), len(out) + len(element)))
        out += element
    out += blank + b"]"
    return bytes(out), spans


def walk(data: bytes, eof: bool = True) -> tuple[list[tuple[int, ...]], str, int]:
    """All of an array's elements from scan_elements, resuming after each stop, with the
    separator read here when it stops before one: (elements, how it ended, where)."""
    pos, found = 1, []
    while True:
        try:
            pos, elements, state, _ = scan_elements(data, pos, eof, KEY)
        except ScanError as exc:
            return found, "invalid", exc.args[0]
        found += elements
        if state == CLOSED:
            return found, "closed", pos
        if state == AT_ELEMENT and not elements:
            return found, "cut", pos
        if state == AFTER_ELEMENT:
            while pos < len(data) and data[pos] in b" \t\r\n":
                pos += 1
            if pos == len(data):
                return found, "cut", pos
            if data[pos] not in b",]":
                return found, "separator", pos
            pos += 1
            if data[pos - 1] == ord("]"):
                return found, "closed", pos


def expected_element(data: bytes, start: int) -> tuple[int, ...]:
    result = scan_value(data, start, True, KEY)
    assert isinstance(result, tuple)
    end, spans, flags = result
    key_start, key_end = spans[-1] if spans else (-1, -1)
    return (start, end, key_start, key_end, flags)


@RANDOM
@given(
    elements=st.lists(values, min_size=1, max_size=12),
    blank=st.sampled_from([b"", b" ", b"\r\n  ", b"\t"]),
    coded=st.booleans(),
)
def test_scan_elements_finds_each_element_as_scan_value_does(
    elements: list[Any], blank: bytes, coded: bool
) -> None:
    if coded:  # objects with the key, some twice, and one nested deeper
        elements = [
            {"billing_code": v, "x": {"billing_code": 1}, "billing_code ": v} for v in elements
        ]
    texts = [dumps(value, 0, True) for value in elements]
    data, spans = write_array(texts, blank)
    found, ending, pos = walk(data)
    assert (ending, pos) == ("closed", len(data))
    assert [(e[0], e[1]) for e in found] == spans
    assert found == [expected_element(data, start) for start, _ in spans]
    for cut in range(1, len(data)):  # a buffer that ends anywhere
        prefix, cut_ending, _ = walk(data[:cut], eof=False)
        assert cut_ending in ("cut", "closed")
        assert prefix == found[: len(prefix)]
        assert all(end <= cut for _, end, *_ in prefix)


def test_scan_elements_partial_resumes_the_cut_element() -> None:
    element = b'{"billing_code":"99213","negotiated_rates":[' + b"1," * 5000 + b"2]}"
    data = b"[" + element + b"," + element + b"]"
    cut = len(element) + 2 + len(element) // 2  # inside the second element
    pos, found, state, partial = scan_elements(data[:cut], 1, False, KEY)
    assert (pos, state, len(found)) == (len(element) + 2, AT_ELEMENT, 1)
    assert isinstance(partial, Partial) and partial.resume_at > len(element) // 3
    resumed = scan_value(data, pos, True, KEY, partial)
    assert resumed == scan_value(data, pos, True, KEY)
    assert resumed is not None and resumed[0] == len(data) - 1


def test_scan_elements_reports_an_invalid_element_on_the_next_call() -> None:
    data = b'[1, {"a": 2}, [3, }, 4]'
    pos, found, state, partial = scan_elements(data, 1, True, KEY)
    assert [(s, e) for s, e, *_ in found] == [(1, 2), (4, 12)]
    assert (pos, state, partial) == (14, AT_ELEMENT, None)
    with pytest.raises(ScanError) as raised:
        scan_elements(data, pos, True, KEY)
    assert raised.value.args == (data.index(b"}", 14), "expected a value")


@pytest.mark.parametrize(
    ("data", "ending", "pos"),
    [
        (b"[1 2]", "separator", 3),
        (b"[1 ,2 ] x", "closed", 7),
        (b"[1,", "cut", 3),
        (b"[1  ", "cut", 4),
        (b'[1,"ab', "cut", 3),
        (b"[]", "invalid", 1),  # an empty array is the caller's to see
    ],
)
def test_scan_elements_stops(data: bytes, ending: str, pos: int) -> None:
    assert walk(data, eof=False)[1:] == (ending, pos)


def test_scan_elements_hands_out_long_runs_in_several_calls() -> None:
    count = 10_000  # more than one call returns
    data = b"[" + b",".join(b'{"billing_code":%d}' % i for i in range(count)) + b"]"
    pos, first, state, _ = scan_elements(data, 1, True, KEY)
    assert state == AT_ELEMENT and 0 < len(first) < count
    found, ending, end = walk(data)
    assert (ending, end, len(found)) == ("closed", len(data), count)
    codes = [data[k0:k1] for _, _, k0, k1, _ in found]
    assert codes == [b"%d" % i for i in range(count)]


# ---------------------------------------------------------------------------------------------
# Where strings and digit runs end is found 16 bytes at a time (SSE2; 8 without it), from each
# token's start (_jsonscan_scan.c: plain_run, digit_run). That must give json's verdict at every
# alignment in memory, after blanks, and with the buffer cut at every byte.
# ---------------------------------------------------------------------------------------------

LEADING_BLANKS = b" " * 64  # before a value


def shifted(result: Verdict, by: int) -> Verdict:
    """A verdict with its offsets moved `by` bytes later."""
    if result[0] == "done":
        _, end, spans, flags = result
        return ("done", end + by, tuple((s + by, e + by) for s, e in spans), flags)
    if result[0] == "invalid":
        return ("invalid", result[1] + by, result[2])
    return result


def assert_both_ways(data: bytes, eof: bool, alignments: range | list[int] = range(64)) -> None:
    """json's verdict on `data`, and the same verdict at each alignment (its first byte that
    many bytes past a 64-byte boundary or more) and after 64 blanks."""
    result = assert_agrees(data, eof)
    for k in alignments:
        assert scan(b"x" * k + data, eof, pos=k) == shifted(result, k), (k, data, eof)
    after_blanks = scan(LEADING_BLANKS + data, eof)
    assert after_blanks == shifted(result, len(LEADING_BLANKS)), (data, eof)


NUMBER_RUNS = [
    b"[1234567890,1457392840,2986986638]",
    b"[" + b",".join(b"%d" % (1000000000 + 7919 * i) for i in range(40)) + b"]",
    b"[1,22,333,4444,55555,-6,-0,0,7.25,8e3,9E-2,-1.5e+10,0.5,10]",
    b"[1, 2 ,3\r\n,\t4 ]",
    b'{"a":[1,2],"billing_code":-0,"b":[3.5,"x"],"c":12}',
    b"[01]",
    b"[1,02]",
    b"[-01,1]",
    b"[1,-]",
    b"[1,-x]",
    b"[1,2x]",
    b"[1,2,]",
    b"[1 2]",
    b"[1,.5]",
    b"[1,1.]",
    b"[1,1.e3]",
    b"[1,1e]",
    b"[1,1e+]",
    b"[1,2}",
    b"[1,2\x00]",
    b"[1,2\xc3\xa9]",
]


@pytest.mark.parametrize("data", NUMBER_RUNS, ids=lambda d: repr(d[:24]))
def test_scan_value_number_runs_agree_with_json_cut_anywhere(data: bytes) -> None:
    for cut in range(len(data) + 1):
        for eof in (False, True):
            assert_both_ways(data[:cut], eof, alignments=[0, 1, 15, 62, 63])
    assert_both_ways(data, True)


STRING_STOPS = [
    b"",
    b"\\n",
    b'\\"',
    b"\\\\",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\xc3\xa9",
    b"\n",
    b"\x1f",
    b"\\x",
    b"\\u12",
    b"\\ud800",
]


@pytest.mark.parametrize("stop", STRING_STOPS, ids=repr)
def test_scan_value_strings_across_64_byte_blocks(stop: bytes) -> None:
    """Strings of every length to 140 bytes, with an escape, a raw control character or UTF-8
    near their end: over one, two or three blocks, ending at every offset of one."""
    for length in range(141):
        text = b"a" * length + stop
        for data in (b'"' + text + b'"', b'{"' + text + b'":"' + text + b'","k":1}'):
            assert_both_ways(data, True, alignments=[0, 1, 33, 63])
    assert_both_ways(b'"' + b"a" * 70 + stop + b'"', True)


def test_scan_elements_agree_at_every_alignment() -> None:
    """Runs of elements from scan_elements, wherever the array lies in memory."""
    texts = [b"%d" % (1000000000 + 7919 * i) for i in range(50)]
    texts += [b'"%s"' % (b"ab" * i) for i in range(50)]
    texts += [b'{"billing_code":"%d","r":[%d.5,-%d]}' % (i, i, i) for i in range(50)]
    data, spans = write_array(texts, b"")
    for k in range(64):
        moved = b"x" * k + data
        pos, elements, state, partial = scan_elements(moved, k + 1, True, KEY)
        assert (pos, state, partial) == (len(moved), CLOSED, None)
        assert [(e[0] - k, e[1] - k) for e in elements] == spans
        assert elements == [expected_element(moved, start + k) for start, _ in spans]


@pytest.mark.parametrize("filler", [b"null,", b"[],", b'{"k":{}},', b" ", b"\r\n\t"])
def test_scan_value_long_stretches_without_strings_or_numbers(filler: bytes) -> None:
    """A string or number 0 to 300 bytes past the last one: the blocks move on by one or more."""
    for gap in range(0, 300, 5):
        stretch = (filler * (gap // len(filler) + 1))[:gap]
        if filler.strip() and len(stretch) % len(filler):
            continue  # only whole fillers
        data = b'["' + b"a" * 300 + b'",' + stretch + b'"b",12,"c"]'
        assert_both_ways(data, True, alignments=[0, 1, 31, 63])
