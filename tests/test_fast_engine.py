"""The fast engine against the reference engine (ijson), on the same inputs.

Every test runs twice: with the fast engine as it is, and with it passing over every unwanted
item cut by a chunk's end (`hold=0`), as it does only with items over 8 MiB by default. Each
input is extracted by the
reference engine once and by the fast engine with many chunk sizes, down to one byte, so every
value boundary of the file falls on a chunk edge at least once. Both engines write rows in file
order, so the tables must be equal row for row, and the status counts must be equal. Malformed
input must fail in both, with the same kind of error.

Inputs: the CMS examples and the real CareFirst file in ../shared/tic-examples (skipped when
absent), the bundled examples/, files from tests/support/synth.py, documents written by hand as
bytes (one per trap an undecoded skip could fall into), and random documents from hypothesis.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrfbatch import items as items_module
from mrfbatch import provider_rows, providers, rates
from mrfbatch.engines import chunks
from mrfbatch.engines.fast import FastEngine
from mrfbatch.engines.scanner import Scanner
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.status import ExtractionResult
from mrfbatch.transport import TransportSettings
from support import containers, oracle, synth
from support.budget import max_examples

NET = "net"
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TIC = Path(__file__).resolve().parents[2] / "shared" / "tic-examples"
REAL = TIC / "real" / "carefirst-in-network-v1.0.0-location-refs.json.gz"

# Fast engines every small input is run with: chunk sizes down to one byte, the default
# (8 MiB: the whole file in one chunk) and the threaded reader.
SMALL_CHUNKS = (1, 2, 3, 7, 64, 1000)
FAST_ENGINES: tuple[tuple[str, Any], ...] = (
    *((f"chunk={n}", n) for n in SMALL_CHUNKS),
    ("default", None),
    ("threads=2,chunk=5", (5, 2)),
)

# The status fields both engines must agree on.
COUNTS = (
    "status",
    "items_seen",
    "items_matched",
    "rate_rows",
    "provider_rows",
    "unknown_keys",
    "unknown_key_names",
    "invalid_values",
    "unresolved_references",
    "file_metadata",
    "remote_references_fetched",
    "remote_references_failed",
)

_runs = itertools.count()
_hold = "hold"  # how the running test's fast engines treat unwanted items (the `hold` fixture)


@pytest.fixture(autouse=True, params=["hold", "pass", "full"])
def hold(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs with the fast engine's defaults ("hold"), then with `hold=0` ("pass"):
    every unwanted item cut by a chunk's end is passed over as it streams, as only items longer
    than 8 MiB are by default; then with `validate="full"` ("full"), which checks every byte of
    skipped items where the default checks only their structure (every fast engine the test
    builds)."""
    global _hold
    _hold = request.param
    try:
        yield request.param
    finally:
        _hold = "hold"


pytestmark = pytest.mark.usefixtures("quiet_logs")  # tests/conftest.py


# ---------------------------------------------------------------------------------------------
# Running both engines
# ---------------------------------------------------------------------------------------------


def make_engine(spec: Any) -> Any:
    """The engine for a spec: "reference", a chunk size, (chunk size, threads), None: default,
    or a FastEngine.

    Fast engines use the `hold` of the running test.
    """
    if spec == "reference" or isinstance(spec, FastEngine):
        return spec
    if spec is None:
        return fast_engine()
    if isinstance(spec, tuple):
        return fast_engine(chunk_size=spec[0], threads=spec[1])
    return fast_engine(chunk_size=spec)


def fast_engine(**options: Any) -> FastEngine:
    """A FastEngine with the running test's `hold`."""
    if _hold == "pass":
        return FastEngine(hold=0, **options)
    if _hold == "full":
        return FastEngine(validate="full", **options)
    return FastEngine(**options)


@dataclass
class Outcome:
    result: ExtractionResult
    rates: list[dict[str, Any]] | None
    providers: list[dict[str, Any]] | None

    def counts(self) -> dict[str, Any]:
        return {name: getattr(self.result, name) for name in COUNTS}

    @property
    def error(self) -> str | None:
        return self.result.error


def extract(path: Path, out: Path, engine: Any, whitelist: Sequence[str] | None) -> Outcome:
    folder = out / f"run-{next(_runs)}"
    result = run_extraction(
        str(path),
        folder,
        ExtractionOptions(
            engine=make_engine(engine),
            transport=TransportSettings(attempts=1, backoff_seconds=0.0, remote_timeout=2.0),
        ),
        network_id=NET,
        cpt_whitelist=whitelist,
    )
    if not result.ok:
        return Outcome(result, None, None)
    return Outcome(
        result,
        pq.read_table(folder / NET / "rates.parquet").to_pylist(),
        pq.read_table(folder / NET / "providers.parquet").to_pylist(),
    )


def assert_same(fast: Outcome, ref: Outcome, label: str) -> None:
    """Same status counts, same error kind, same rows in the same order."""
    assert fast.counts() == ref.counts(), f"{label}: status counts differ (fast vs reference)"
    assert error_kind(fast.error) == error_kind(ref.error), (
        f"{label}: fast error {fast.error!r} vs reference error {ref.error!r}"
    )
    assert fast.rates == ref.rates, f"{label}: rates.parquet differs"
    assert fast.providers == ref.providers, f"{label}: providers.parquet differs"


def check_engines(
    path: Path,
    out: Path,
    whitelists: Iterable[Sequence[str] | None],
    engines: Iterable[tuple[str, Any]] = FAST_ENGINES,
) -> list[Outcome]:
    """Run the reference once per whitelist and every fast engine; return the references."""
    engines = list(engines)
    refs = []
    for whitelist in whitelists:
        ref = extract(path, out, "reference", whitelist)
        refs.append(ref)
        for label, spec in engines:
            fast = extract(path, out, spec, whitelist)
            assert_same(fast, ref, f"{path.name} whitelist={whitelist} fast {label}")
    return refs


def error_kind(error: str | None) -> str | None:
    """The kind of an error message: invalid JSON, JSON that ends early, or its digit-free text."""
    if error is None:
        return None
    if error.startswith("invalid JSON in "):
        return "invalid JSON"
    if error.startswith("JSON of ") and " ends early " in error:
        return "JSON ends early"
    return re.sub(r"\d+", "N", error)


def error_offset(error: str | None) -> int | None:
    match = re.search(r"at decoded byte (\d+)", error or "")
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------
# Whitelists read off a document
# ---------------------------------------------------------------------------------------------


def load_json(path: Path) -> Any:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".json"))
            data = zf.read(name)
    return json.loads(data.decode("utf-8-sig"))


def item_codes(doc: Any) -> tuple[list[str], list[str]]:
    """(codes of the items, codes found only in bundled_codes/covered_services), file order."""
    own: list[str] = []
    nested: list[str] = []
    for item in doc.get("in_network", []):
        own.append(str(item.get("billing_code")))
        for key in ("bundled_codes", "covered_services"):
            nested += [str(entry.get("billing_code")) for entry in item.get(key) or []]
    only_nested = [c for c in dict.fromkeys(nested) if c not in set(own)]
    return list(dict.fromkeys(own)), only_nested


def whitelists_for(doc: Any) -> list[list[str] | None]:
    """None, a few of the file's codes (first, middle, last), nested-only codes, none present."""
    own, only_nested = item_codes(doc)
    lists: list[list[str] | None] = [None]
    if own:
        lists.append(sorted({own[0], own[len(own) // 2], own[-1]}))
    if only_nested:
        lists.append(only_nested[:3])
    lists.append(["00000"])
    return lists


# ---------------------------------------------------------------------------------------------
# Fixtures on disk: the CMS examples, the real file, the bundled examples
# ---------------------------------------------------------------------------------------------


def tic_files(pattern: str) -> list[Any]:
    files = sorted(TIC.glob(pattern)) if TIC.is_dir() else []
    if not files:
        reason = f"no TiC example files matching {pattern} under {TIC} (the shared folder)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="absent")]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


@pytest.mark.parametrize(
    "path", tic_files("v1/in-network-*.json") + tic_files("v2/in-network-*.json")
)
def test_fast_engine_matches_reference_on_cms_examples(path: Path, tmp_path: Path) -> None:
    check_engines(path, tmp_path, whitelists_for(load_json(path)))


@pytest.mark.parametrize(
    "path",
    tic_files("v1/[!iam]*.json") + tic_files("v2/[!ia]*.json"),
)
def test_fast_engine_fails_like_reference_on_other_file_kinds(path: Path, tmp_path: Path) -> None:
    """Tables of contents, provider-reference files: the same refusal. (Allowed-amounts files
    are read by the reference engine whatever the engine: tests/test_allowed_amounts.py.)"""
    (ref,) = check_engines(path, tmp_path, [["99213"]], engines=[("chunk=3", 3), ("default", None)])
    assert ref.result.status == "failed"


def test_fast_engine_matches_reference_on_real_file_with_whitelist(tmp_path: Path) -> None:
    if not REAL.is_file():
        pytest.skip(f"the real CareFirst file is not at {REAL}")
    whitelist = ["30560", "59409"]
    engines = [("default", None), ("chunk=65543", 65543), ("threads=2", (1 << 20, 2))]
    (ref,) = check_engines(REAL, tmp_path, [whitelist], engines)
    assert ref.result.items_matched == 2  # read off the file: one item per code
    assert ref.result.rate_rows > 0


@pytest.mark.slow
def test_fast_engine_matches_reference_on_real_file_without_whitelist(tmp_path: Path) -> None:
    if not REAL.is_file():
        pytest.skip(f"the real CareFirst file is not at {REAL}")
    doc = load_json(REAL)
    own, only_nested = item_codes(doc)
    (ref, _) = check_engines(REAL, tmp_path, [None, only_nested[:3] or ["00000"]], [("d", None)])
    assert ref.result.items_matched == len(doc["in_network"])


@pytest.mark.parametrize("name", ["in-network-sample.json.gz", "behavioral-sample.zip"])
def test_fast_engine_matches_reference_on_bundled_examples(name: str, tmp_path: Path) -> None:
    path = EXAMPLES / name
    codes = (EXAMPLES / "codes.txt").read_text().split("\n")
    codes = [c.split("#")[0].strip() for c in codes if c.split("#")[0].strip()]
    refs = check_engines(path, tmp_path, [*whitelists_for(load_json(path)), codes])
    assert refs[0].result.ok and refs[0].result.rate_rows > 0


# ---------------------------------------------------------------------------------------------
# Synthetic files (tests/support/synth.py)
# ---------------------------------------------------------------------------------------------

SYNTH_CASES = {
    "int-ids-before-compact": (synth.SynthConfig(seed=1, items=8), False, False, "json"),
    "float-ids-after-variety-pretty": (
        synth.SynthConfig(
            seed=2,
            items=10,
            refs_position="after",
            id_style="float",
            inline_groups=True,
            mixed_rates=True,
            arrangements=True,
            tin_only=True,
            npi_strings=True,
        ),
        True,
        False,
        "gz",
    ),
    "string-ids-no-refs-shuffled-crlf": (
        synth.SynthConfig(
            seed=3,
            items=8,
            refs_position="none",
            id_style="string",
            unknown_keys=True,
            shuffle_keys=True,
            arrangements=True,
        ),
        True,
        True,
        "json-bom",
    ),
    "v1-dangling-unknown-gz-multi": (
        synth.SynthConfig(
            seed=4,
            items=9,
            version="1.0.0",
            id_style="float",
            dangling_refs=2,
            arrangements=True,
            unknown_keys=True,
            inline_groups=True,
        ),
        False,
        False,
        "gz-multi",
    ),
    "shuffled-after-zip-stream": (
        synth.SynthConfig(
            seed=5,
            items=12,
            refs_position="after",
            shuffle_keys=True,
            arrangements=True,
            inline_groups=True,
            mixed_rates=True,
            unknown_keys=True,
        ),
        True,
        False,
        "zip-stream",
    ),
    "no-items": (synth.SynthConfig(seed=6, items=0), True, True, "json"),
}


@pytest.mark.parametrize("case", list(SYNTH_CASES))
def test_fast_engine_matches_reference_on_synth_files(case: str, tmp_path: Path) -> None:
    config, pretty, crlf, container = SYNTH_CASES[case]
    sf = synth.generate(config)
    path = tmp_path / f"{case}{containers.SUFFIXES[container]}"
    path.write_bytes(containers.pack(sf.to_bytes(pretty=pretty, crlf=crlf), container))
    whitelists = whitelists_for(json.loads(sf.to_bytes()))
    refs = check_engines(path, tmp_path, whitelists)
    # The reference itself agrees with the generator's oracle (order-independently).
    for whitelist, ref in zip(whitelists, refs, strict=True):
        expected = sf.expected(NET, whitelist)
        assert ref.result.items_matched == expected.items_matched
        assert ref.rates is not None and ref.providers is not None
        assert oracle.canonical(ref.rates, ref.providers) == oracle.canonical(
            expected.rates, expected.providers
        )


# ---------------------------------------------------------------------------------------------
# Traps, as hand-written bytes
# ---------------------------------------------------------------------------------------------

HEADER = (
    b'"reporting_entity_name":"Trap Health","reporting_entity_type":"health insurance issuer",'
    b'"last_updated_on":"2024-05-01","version":"2.0.0"'
)
REFS = (
    b'[{"provider_group_id":1,"provider_groups":[{"npi":[1234567893],'
    b'"tin":{"type":"ein","value":"11-1111111"}}]},'
    b'{"provider_group_id":2,"network_name":["Net A"],"provider_groups":'
    b'[{"npi":[1588667638,1306849450],"tin":{"type":"ein","value":"22-2222222",'
    b'"business_name":"B Group"}}]}]'
)


def rate(value: bytes = b"123.45", refs: bytes = b"[1]") -> bytes:
    return (
        b'{"provider_references":' + refs + b',"negotiated_prices":[{"negotiated_type":'
        b'"negotiated","negotiated_rate":' + value + b',"expiration_date":"9999-12-31",'
        b'"billing_class":"professional"}]}'
    )


def item(
    code: bytes | None = b'"99213"',
    *,
    name: bytes = b'"Office visit"',
    description: bytes = b'"Visit"',
    lead: bytes = b"",
    extra: bytes = b"",
    rates: Sequence[bytes] = (),
    code_key: bytes = b'"billing_code"',
    code_last: bool = False,
) -> bytes:
    """One in_network item: `lead` comes first (end it with ","), `extra` last (start with ",")."""
    body = [
        b'"negotiation_arrangement":"ffs"',
        b'"name":' + name,
        b'"billing_code_type":"CPT"',
        b'"billing_code_type_version":"2024"',
        b'"description":' + description,
        b'"negotiated_rates":[' + b",".join(rates or [rate()]) + b"]",
    ]
    if code is not None:
        body.insert(len(body) if code_last else 4, code_key + b":" + code)
    return b"{" + lead + b",".join(body) + extra + b"}"


def code_entry(code: bytes, key: bytes = b'"billing_code"') -> bytes:
    return (
        b'{"billing_code_type":"CPT","billing_code_type_version":"2024",'
        + key
        + b":"
        + code
        + b',"description":"nested"}'
    )


def document(
    *items: bytes,
    refs: bytes | None = REFS,
    refs_after: bool = False,
    before: bytes = b"",
    after: bytes = b"",
) -> bytes:
    """A top-level object: header, `before` members, references, in_network, `after`."""
    members = [HEADER]
    if before:
        members.append(before)
    refs_member = [b'"provider_references":' + refs] if refs is not None else []
    if not refs_after:
        members += refs_member
    members.append(b'"in_network":[' + b",".join(items) + b"]")
    if refs_after:
        members += refs_member
    if after:
        members.append(after)
    return b"{" + b",".join(members) + b"}"


_NUMBER = "\x00\x01num:"  # json.dumps writes this string as "\u0000\u0001num:..."


def raw_number(text: str) -> str:
    """A value json.dumps (through `serialize`) writes as the JSON number `text`, verbatim."""
    return _NUMBER + text


def serialize(
    value: Any,
    *,
    indent: Any = None,
    separators: Any = None,
    ensure_ascii: bool = True,
    crlf: bool = False,
) -> bytes:
    """json.dumps, with `raw_number` values written as numbers and CRLF line ends on demand."""
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
    text = re.sub(r'"\\u0000\\u0001num:([^"]*)"', r"\1", text)
    return (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")


def reformat(data: bytes, **layout: Any) -> bytes:
    """The same document laid out by `serialize`; numbers keep their exact digits."""
    return serialize(json.loads(data, parse_float=raw_number, parse_int=raw_number), **layout)


BIG_BLOB = json.dumps(
    [[[["]", "in_network", {"billing_code": "99213", "x": [1, 2.5, '"]}']}]]]] * 600
    + [{"deep": json.loads("[" * 30 + "]" * 30)}],
    separators=(",", ":"),
).encode()

UNICODE_ITEMS = (
    item(b'"99213"', code_key=rb'"billing\u005fcode"'),
    item(rb'"9921\u0034"'),
    item(
        b'"11111"',
        extra=b',"bundled_codes":[' + code_entry(b'"99213"', rb'"billing\u005Fcode"') + b"]",
    ),
    item(b'"27447"', description=rb'"caf\u00e9 \ud83d\ude00"'),
    item(b'"J1885"', code_key=rb'"\u0062illing_code"', code_last=True),
)

TRAPS: dict[str, tuple[bytes, dict[tuple[str, ...] | None, int]]] = {
    # name: (document, {whitelist: items the reference must match})
    "escaped-quotes-and-brackets": (
        document(
            item(b'"99213"', description=rb'"a \"}]{\" b"', name=rb'"\"]},{\"x\":[\"\\"'),
            item(b'"99214"', description=rb'"\\\"\\"', name=rb'"[{\"billing_code\":\"27447\"}]"'),
            item(b'"27447"', description=rb'"ends with a backslash \\"'),
        ),
        {None: 3, ("99213",): 1, ("99214", "27447"): 2, ("00000",): 0},
    ),
    "key-names-inside-strings": (
        document(
            item(b'"11111"', name=rb'"\"billing_code\": \"99213\""', description=b'"billing_code"'),
            item(
                b'"22222"',
                extra=rb',"x_note\"billing_code":"99213","x_list":["billing_code" , ":","99213"]',
            ),
            item(b'"99213"', name=rb'"\"billing_code\":\"11111\""'),
            item(b'"33333"', description=rb'"\"in_network\":[{\"billing_code\":99213}]"'),
        ),
        {None: 4, ("99213",): 1, ("11111",): 1, ("22222", "33333"): 2},
    ),
    "billing-code-after-negotiated-rates": (
        document(item(b'"99213"', code_last=True), item(b'"99214"', code_last=True)),
        {None: 2, ("99214",): 1, ("99213",): 1},
    ),
    "whitelisted-codes-only-nested": (
        document(
            item(b'"11111"', lead=b'"bundled_codes":[' + code_entry(b'"99213"') + b"],"),
            item(b'"22222"', extra=b',"covered_services":[' + code_entry(b"99214") + b"]"),
            item(
                b'"99213"',
                extra=b',"bundled_codes":['
                + code_entry(b'"99214"')
                + b","
                + code_entry(b"1")
                + b"]",
            ),
        ),
        {None: 3, ("99213", "99214"): 1, ("99214",): 0, ("1",): 0},
    ),
    "unicode-escaped-keys-and-codes": (
        document(*UNICODE_ITEMS),
        {None: 5, ("99213",): 1, ("99214",): 1, ("J1885", "27447"): 2, ("11111",): 1},
    ),
    "provider-references-after-in-network": (
        document(
            item(b'"99213"', rates=[rate(refs=b"[1,2]")]),
            item(b'"99214"', rates=[rate(refs=b"[2]"), rate(b"9", b"[3]")]),
            refs_after=True,
        ),
        {None: 2, ("99214",): 1, ("99213",): 1},
    ),
    "matched-only-last-or-first-item": (
        document(item(b'"11111"'), item(b'"22222"'), item(b'"99213"', rates=[rate(b"7")])),
        {("99213",): 1, ("11111",): 1, ("22222",): 1, None: 3},
    ),
    "single-item": (document(item(b'"99213"')), {("99213",): 1, ("1",): 0, None: 1}),
    "empty-in-network": (document(), {None: 0, ("99213",): 0}),
    "empty-in-network-with-blanks": (
        document().replace(b'"in_network":[]', b'"in_network" :\r\n[ \r\n\t ]'),
        {None: 0, ("99213",): 0},
    ),
    "empty-provider-references-before": (
        document(item(b'"99213"'), refs=b"[]"),
        {None: 1, ("99213",): 1},
    ),
    "empty-provider-references-after": (
        document(item(b'"99213"'), refs=b"[\r\n ]", refs_after=True),
        {None: 1, ("99213",): 1},
    ),
    "big-unknown-top-level-array-before-in-network": (
        document(item(b'"11111"'), item(b'"99213"'), before=b'"x_blob":' + BIG_BLOB),
        {None: 2, ("99213",): 1, ("00000",): 0},
    ),
    "unknown-top-level-values-everywhere": (
        document(
            item(b'"99213"'),
            before=b'"x_a":{"in_network":[1]},"x_b":"]}","x_c":-12.5e-3,"x_d":null,"x_e":true',
            after=b'"x_f":[[],{}],"x_g":12345',
        ),
        {None: 1, ("99213",): 1},
    ),
    "float-and-odd-provider-group-ids": (
        document(
            item(b'"99213"', rates=[rate(refs=b"[690.64470,1.5e3]"), rate(b"1", b'["abc",-0.0]')]),
            item(b'"11111"', rates=[rate(refs=b"[123456789012345678901234567890]")]),
            refs=b"["
            + b",".join(
                b'{"provider_group_id":' + gid + b',"provider_groups":[{"npi":[1234567893],'
                b'"tin":{"type":"ein","value":"11-1111111"}}]}'
                for gid in (
                    b"690.64470",
                    b"1.5e3",
                    b'"abc"',
                    b"-0.0",
                    b"123456789012345678901234567890",
                )
            )
            + b"]",
        ),
        {None: 2, ("99213",): 1, ("11111",): 1},
    ),
    # ids whose Decimal prints as an integer (-0, 100): the reference engine hands its decoded
    # entries over as JSON text, where they must not come back as ints ("0" is not "-0")
    "integral-decimal-provider-group-ids": (
        document(
            item(b'"99213"', rates=[rate(refs=b"[-0E0,1.00e2]"), rate(b"1", b"[1e2,-0.0e1]")]),
            refs=b"["
            + b",".join(
                [
                    *(
                        b'{"provider_group_id":' + gid + b',"provider_groups":[{"npi":[1234567893],'
                        b'"tin":{"type":"ein","value":"11-1111111"}}]}'
                        for gid in (b"-0E0", b"1.00e2", b"1e2", b"-0.0e1", b"[1.00e2]")
                    ),
                    b"1.00e2",  # not an object: counted
                    b"[-0E0]",
                ]
            )
            + b"]",
        ),
        {None: 1, ("99213",): 1},
    ),
    "integer-billing-codes": (
        document(
            item(b"99213"),
            item(b"470 "),
            item(b"99214", code_last=True),
            item(b"27447.0"),
            item(b"-5"),
            item(b"1E3"),
        ),
        {
            None: 6,
            ("99213",): 1,
            ("470",): 1,
            ("99214",): 1,
            ("27447",): 0,
            ("27447.0",): 1,
            ("-5",): 1,
            ("1E+3",): 1,
        },
    ),
    "code-value-spellings": (
        document(
            item(b'" j1885 "'),
            item(b'\t"99213"', code_key=b'"billing_code"\r\n '),
            item(rb'"99\"213"'),
            item(rb'"C:\\"'),
            item(rb'"99214\/"'),
            item(b"null"),
            item(b"true"),
        ),
        {None: 7, ("J1885",): 1, ("99213",): 1, ('99"213',): 1, ("C:\\",): 1, ("99214/",): 1},
    ),
    "duplicate-billing-code-keys": (
        document(
            item(b'"99213"', extra=b',"billing_code":"11111"'),
            item(b'"22222"', extra=rb',"billing\u005fcode":"99214"'),
        ),
        {None: 2, ("99213",): 0, ("11111",): 1, ("99214",): 1, ("22222",): 0},
    ),
    "items-without-code-or-not-objects": (
        document(b"1", b'"x"', b"null", b"[]", b"{}", item(None), item(b'"99213"')),
        {None: 3, ("99213",): 1},
    ),
    "deep-nesting-inside-items": (
        document(
            item(b'"11111"', extra=b',"x_deep":' + b"[" * 60 + b'"]"' + b"]" * 60),
            item(b'"99213"', extra=b',"x_deep":' + b'{"a":' * 60 + b"1" + b"}" * 60),
        ),
        {None: 2, ("99213",): 1, ("11111",): 1},
    ),
    "numbers-in-many-forms": (
        document(
            item(b'"99213"', rates=[rate(b"0"), rate(b"-0.5"), rate(b"1.5E+2"), rate(b"2e-2")]),
            item(b'"11111"', rates=[rate(b"123456789012345678901234567890"), rate(b'"12.5"')]),
            after=b'"version":1.10',
        ),
        {None: 2, ("99213",): 1},
    ),
    "top-level-keys-escaped-and-repeated": (
        document(item(b'"99213"'), item(b'"11111"'))
        .replace(b'"in_network":', rb'"in\u005fnetwork":')
        .replace(b'"provider_references":', rb'"provider\u005Freferences" :')
        .replace(b'"version":"2.0.0"', rb'"version":"1.0.0","ver\u0073ion":"2.0.0"')[:-1]
        + b',"in_network":['
        + item(b'"99214"', rates=[rate(refs=b"[2]")])
        + b'],"provider_references":[{"provider_group_id":3,"provider_groups":[]}]}',
        {None: 3, ("99213",): 1, ("99214",): 1, ("11111",): 1},
    ),
    "odd-provider-references": (
        document(
            item(b'"99213"', rates=[rate(refs=b'[1,2,3,4,5,"5",6,7,8,9,10,12]')]),
            item(b'"11111"', rates=[rate(refs=b"[1.0,11]")]),
            refs=b"["
            + b",".join(
                [
                    b"1",
                    b"null",
                    b"[]",
                    b"{}",
                    b'"x"',
                    b'{"provider_group_id":[1],"provider_groups":[]}',
                    b'{"provider_group_id":{"a":1},"provider_groups":[]}',
                    rb'{"provider\u005fgroup\u005fid":1,"provider_groups":[{"npi":[1],'
                    rb'"tin":{"type":"ein","value":"caf\u00e9"}}]}',
                    b'{"provider_group_id":1,"provider_groups":[{"npi":[2],'
                    b'"tin":{"type":"ein","value":"dup"}}]}',
                    b'{"provider_groups":[{"npi":[3],"tin":{"type":"ein","value":"no id"}}],'
                    b'"provider_group_id":2,"x_extra":{"provider_group_id":99}}',
                    b'{"provider_group_id":3}',
                    b'{"provider_group_id":4,"provider_groups":null}',
                    b'{"provider_group_id":5,"provider_groups":[{"npi":["1234567893",0],'
                    b'"tin":{"type":"npi","value":"1234567893"}}],"network_name":"one"}',
                    b'{"provider_group_id":6,"location":12}',
                    b'{"provider_group_id":7,"provider_groups":[{"npi":[4],'
                    b'"tin":{"type":"ein","value":"7"}}],"network_name":[1,null,"n"]}',
                    b'{"provider_group_id":8,"provider_groups":[{"npi":[5.5,"x",null,-1],'
                    b'"tin":{"type":"ein","value":8}}]}',
                    b'{"provider_group_id":9,"provider_groups":[{"npi":[6]}]}',
                    b'{"provider_group_id":10,"provider_groups":[{"tin":{"type":"ein",'
                    b'"value":"10"},"npi":[7],"x_g":1}]}',
                    b'{"provider_group_id":12,"network_name":[1.50E-2,-0,1e400],'
                    b'"provider_groups":[{"npi":[1.0,1e3,-0,1234567893.000],'
                    b'"tin":{"type":"ein","value":1.50E-2,"business_name":-0.0}}]}',
                    b'{"provider_group_id":11,"provider_groups":[{"npi":[8],'
                    b'"tin":{"type":"ein","value":"unused"}}]}',
                ]
            )
            + b"]",
        ),
        {None: 2, ("99213",): 1, ("11111",): 1, ("00000",): 0},
    ),
    "provider-group-id-spellings": (
        # Ids of every spelling, side by side, so that the fast engine's runs of plainly
        # spelled ids are broken by the others and must keep the file's order.
        document(
            item(b'"99213"', rates=[rate(refs=b'[0,"0","\\u00e9-1","a\\"b",-7,"plain",8,"x9"]')]),
            refs=b"["
            + b",".join(
                b'{"provider_group_id":' + gid + b',"provider_groups":[{"npi":[' + npi + b"],"
                b'"tin":{"type":"ein","value":"11-1111111"}}]' + extra + b"}"
                for gid, npi, extra in (
                    (b"0", b"1234567893", b""),
                    (b'"0"', b"1306849450", b""),
                    (b'"\xc3\xa9-1"', b"1588667638", b""),
                    (b'"a\\"b"', b"1234567893", b""),
                    (b"-7", b"1306849450", b',"location":12'),
                    (b'"plain"', b"1588667638", b',"x_note":"\\u0041"'),
                    (b"8", b"1234567893", b',"location":"not a url"'),
                    (b'"x9"', b"1306849450", b""),
                )
            )
            + b"]",
        ),
        {None: 1, ("99213",): 1},
    ),
    "non-scalar-billing-codes": (
        # The reference compares the text of whatever the code is (str(["99213"]) is
        # "['99213']"); the fast engine must never skip an item the handler would match.
        document(item(b'["99213"]'), item(b'{"code":"99214"}'), item(b"[ 1, 2 ]")),
        {None: 3, ("99213",): 0, ("['99213']",): 1, ("{'CODE': '99214'}",): 1, ("[1, 2]",): 1},
    ),
    "utf8-bom": (b"\xef\xbb\xbf" + document(item(b'"99213"')), {None: 1, ("99213",): 1}),
    "non-ascii-raw-utf8": (
        document(
            item(b'"99213"', name='"Clínica Ñandú ✓ 𝄞"'.encode()),
            item(b'"11111"', description='"日本語 \\" ]}"'.encode()),
        ),
        {None: 2, ("99213",): 1},
    ),
}


def refs_moved_after(doc: bytes) -> bytes:
    """`doc` (made by `document`, with no `after`) with provider_references after in_network."""
    refs_at = doc.index(b',"provider_references":')
    in_network_at = doc.index(b',"in_network":')
    return doc[:refs_at] + doc[in_network_at:-1] + doc[refs_at:in_network_at] + b"}"


for _name in ("odd-provider-references", "provider-group-id-spellings"):
    TRAPS[f"{_name}-after-in-network"] = (refs_moved_after(TRAPS[_name][0]), TRAPS[_name][1])

STRANGE_LAYOUTS: dict[str, dict[str, Any]] = {
    "pretty-crlf": {"indent": 2, "crlf": True, "ensure_ascii": False},
    "pretty-tabs-spaces-before-commas-crlf": {
        "indent": "\t",
        "separators": (" ,", " :\t"),
        "crlf": True,
        "ensure_ascii": False,
    },
    "compact-ascii": {"separators": (",", ":"), "ensure_ascii": True},
    "spaces-everywhere": {"separators": (" , ", " : "), "ensure_ascii": False},
}
RELAID_TRAPS = (
    "provider-group-id-spellings",
    "escaped-quotes-and-brackets",
    "whitelisted-codes-only-nested",
    "integer-billing-codes",
    "float-and-odd-provider-group-ids",
    "unicode-escaped-keys-and-codes",
)
TRAP_ENGINES = (
    *((f"chunk={n}", n) for n in (1, 2, 3, 5, 8, 13, 64)),
    ("default", None),
    ("threads=2,chunk=3", (3, 2)),
)


def check_trap(data: bytes, matched: dict[Any, int], tmp_path: Path, engines: Any) -> None:
    path = tmp_path / "trap.json"
    path.write_bytes(data)
    whitelists = [None if w is None else list(w) for w in matched]
    refs = check_engines(path, tmp_path, whitelists, engines)
    for whitelist, ref in zip(whitelists, refs, strict=True):
        assert ref.result.ok, ref.error
        assert ref.result.items_matched == matched[None if whitelist is None else tuple(whitelist)]


@pytest.mark.parametrize("name", list(TRAPS))
def test_fast_engine_matches_reference_on_trap(name: str, hold: str, tmp_path: Path) -> None:
    data, matched = TRAPS[name]
    if name == "duplicate-billing-code-keys" and hold == "pass":
        check_passed_duplicates(data, [list(w) for w in matched if w], tmp_path)
        return
    check_trap(data, matched, tmp_path, TRAP_ENGINES)


@pytest.mark.parametrize("name", [n for n in TRAPS if n != "duplicate-billing-code-keys"])
def test_fast_engine_matches_reference_on_gzip_inflated_into_its_buffer(
    name: str, tmp_path: Path
) -> None:
    """gzip is inflated straight into the engine's buffer (`Chunks.read_into`), in pieces that
    end anywhere: two members with zeros between them, read 1 to 7 bytes at a time, by one
    thread or two."""
    data, matched = TRAPS[name]
    half = len(data) // 2
    path = tmp_path / "trap.json.gz"
    path.write_bytes(gzip.compress(data[:half], mtime=0) + bytes(5) + gzip.compress(data[half:]))
    whitelists = [None if w is None else list(w) for w in matched]
    engines = [(f"chunk={n}", n) for n in (1, 7)] + [
        (f"threads=2,chunk={n}", (n, 2)) for n in (1, 7)
    ]
    refs = check_engines(path, tmp_path, whitelists, engines)
    for whitelist, ref in zip(whitelists, refs, strict=True):
        assert ref.result.items_matched == matched[None if whitelist is None else tuple(whitelist)]


@pytest.mark.parametrize("name", [n for n in TRAPS if n != "duplicate-billing-code-keys"])
def test_fast_engine_matches_reference_with_every_item_large(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every matched item read as a LargeItem, from a view of the engine's buffer: whatever the
    item's shape, nothing may keep the view, or the buffer could not take the next chunk."""
    monkeypatch.setattr(items_module, "LARGE_ITEM_BYTES", 0)
    # Items and provider references of the usual shape read in Python too: C takes none.
    monkeypatch.setattr(rates.ItemRows, "native_head", lambda self, raw: None)
    monkeypatch.setattr(providers._rows, "spill_references", lambda t, f, at, *_: (at, False))
    monkeypatch.setattr(provider_rows.ProviderRows, "add_records", lambda s, d, at, *_: (at, False))
    data, matched = TRAPS[name]
    check_trap(data, matched, tmp_path, (("chunk=5", 5), ("default", None)))


@pytest.mark.parametrize("head", [0, 64])
@pytest.mark.parametrize("name", RELAID_TRAPS)
def test_fast_engine_reader_thread_keeps_what_does_not_fit_in_front(
    name: str, head: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a reader thread, what the scanner keeps of a chunk goes in front of the next one
    when it fits in HEAD bytes, else the next chunk is appended to it: both ways, every trap
    gives the reference's tables."""
    monkeypatch.setattr(chunks, "HEAD", head)
    data, matched = TRAPS[name]
    check_trap(data, matched, tmp_path, [(f"threads=2,chunk={n}", (n, 2)) for n in (1, 7)])


def check_passed_duplicates(data: bytes, whitelists: list[list[str]], tmp_path: Path) -> None:
    """An item passed over (its first code not wanted) that names billing_code again cannot be
    judged by its last code, as a decode would: the extraction fails saying so, or, when the
    item was not cut by a chunk's end and so held whole, it matches the reference."""
    path = tmp_path / "trap.json"
    path.write_bytes(data)
    failed = 0
    for whitelist in whitelists:
        ref = extract(path, tmp_path, "reference", whitelist)
        for label, spec in TRAP_ENGINES:
            fast = extract(path, tmp_path, spec, whitelist)
            if fast.result.ok:
                assert_same(fast, ref, f"whitelist={whitelist} fast {label}")
            else:
                failed += 1
                assert "names its billing_code again" in (fast.error or ""), fast.error
                assert "--engine reference" in (fast.error or ""), fast.error
    assert failed


@pytest.mark.parametrize("layout", list(STRANGE_LAYOUTS))
@pytest.mark.parametrize("name", RELAID_TRAPS)
def test_fast_engine_matches_reference_on_relaid_trap(
    name: str, layout: str, tmp_path: Path
) -> None:
    """The same traps pretty-printed (CRLF, tabs, blanks before commas and colons) or escaped."""
    data = reformat(TRAPS[name][0], **STRANGE_LAYOUTS[layout])
    check_trap(data, TRAPS[name][1], tmp_path, [(f"chunk={n}", n) for n in (1, 2, 7)])


@pytest.mark.parametrize("engine", ["reference", None, 3])
def test_float_group_ids_keep_their_text(engine: Any, tmp_path: Path) -> None:
    """690.64470 stays "690.64470" (docs/output.md, Group keys), in both tables."""
    path = tmp_path / "ids.json"
    path.write_bytes(TRAPS["float-and-odd-provider-group-ids"][0])
    outcome = extract(path, tmp_path, engine, ["99213"])
    assert outcome.rates is not None and outcome.providers is not None, outcome.error
    assert [r["provider_group_ids"] for r in outcome.rates] == [
        ["690.64470", "1.5E+3"],
        ["abc", "-0.0"],
    ]
    assert [p["provider_group_id"] for p in outcome.providers] == [
        "690.64470",
        "1.5E+3",
        "abc",
        "-0.0",
    ]


# ---------------------------------------------------------------------------------------------
# Chunk edges placed on purpose
# ---------------------------------------------------------------------------------------------

STRADDLE_DOC = document(
    item(b'"99213"'),
    item(b'"11111"', extra=b',"bundled_codes":[' + code_entry(b'"99213"') + b"]"),
    item(b'"99214"', description=rb'"}],\"x\""', rates=[rate(b"1"), rate(b"2.5", b"[2]")]),
    item(b"27447"),
    item(b'"22222"'),
    item(b'"99213"', code_last=True),
)


def item_edges(data: bytes) -> list[int]:
    """Offsets of the first byte of every item, of the byte after it, and of `]` and `}`."""
    doc = json.loads(data)
    start = data.index(b'"in_network":[') + len(b'"in_network":[')
    edges = []
    decoder = json.JSONDecoder()
    for _ in doc["in_network"]:
        _, end = decoder.raw_decode(data.decode("utf-8"), start)  # ASCII documents only
        edges += [start, end]
        start = end + 1
    return [*edges, len(data) - 2, len(data) - 1]


@pytest.mark.parametrize("whitelist", [None, ["99213"], ["27447", "22222"]])
def test_fast_engine_items_straddling_chunk_edges(
    whitelist: list[str] | None, tmp_path: Path
) -> None:
    """The first chunk ends one byte before, at, and one byte after every item boundary."""
    path = tmp_path / "straddle.json"
    path.write_bytes(STRADDLE_DOC)
    sizes = sorted({e + d for e in item_edges(STRADDLE_DOC) for d in (-1, 0, 1, 2)})
    check_engines(path, tmp_path, [whitelist], [(f"chunk={n}", n) for n in sizes])


# Small items one after another, with the odd ones a run of items handed over together
# (`Extraction.in_network_items`) leaves to Python between them: an unknown key, an escape, an
# unpaired surrogate escape, an item that is not an object, a rate with a fraction id.
RUN_DOC = document(
    *[
        odd
        for i in range(12)
        for odd in (
            item(b'"%d"' % (1000 + i), rates=[rate(b"%d.5" % i), rate(b"2", b"[1,2]")]),
            item(b"%d" % (2000 + i), extra=b',"x":1' if i % 4 == 1 else b""),
            item(b'"a\\u00e9%d"' % i, name=b'"\\ud800 lone"' if i % 3 == 0 else b'"n"'),
            b"null" if i % 5 == 2 else item(b'"b%d"' % i, rates=[rate(refs=b"[0.5]")]),
        )
    ]
)


@pytest.mark.parametrize("chunk", [1, 2, 7, 61, 4096, None])
def test_fast_engine_items_in_runs_match_reference(chunk: int | None, tmp_path: Path) -> None:
    """Without a whitelist every item is wanted, and items go to the handler in runs: the same
    tables and counts as the reference engine, however the chunks cut them."""
    path = tmp_path / "runs.json"
    path.write_bytes(RUN_DOC)
    (ref,) = check_engines(path, tmp_path, [None], [(f"chunk={chunk}", chunk)])
    assert ref.result.items_seen == 48
    assert ref.result.items_matched == 48 - 2  # `null` twice (i = 2, 7)
    assert ref.rates is not None and len(ref.rates) == 12 * (2 + 1 + 1 + 1) - 2


NUMBERS_DOC = document(
    item(b'"99213"', rates=[rate(b"123.45"), rate(b"-0.5e-3"), rate(b"1E+2")]),
    item(b'"11111"', rates=[rate(b"98765.4321")]),
    refs=REFS.replace(b'"provider_group_id":2', b'"provider_group_id":690.64470'),
    after=b'"x_count":12345',
)


@pytest.mark.parametrize("token", [b"123.45", b"-0.5e-3", b"1E+2", b"98765.4321", b"690.64470"])
def test_fast_engine_numbers_cut_by_chunk_edge(token: bytes, tmp_path: Path) -> None:
    """A number split after each of its bytes (`123.` | `45`), in matched and skipped items."""
    path = tmp_path / "numbers.json"
    path.write_bytes(NUMBERS_DOC)
    start = NUMBERS_DOC.index(token)
    sizes = range(start, start + len(token) + 1)
    refs = check_engines(path, tmp_path, [None, ["99213"]], [(f"chunk={n}", n) for n in sizes])
    assert refs[0].result.items_matched == 2


@pytest.mark.parametrize("tail", [b"12345}", b"12345}\r\n", b"1.0}", b"-7e3 } \n"])
def test_fast_engine_number_at_end_of_file(tail: bytes, tmp_path: Path) -> None:
    """The last top-level value is a number: every cut of it, and of the closing `}`."""
    data = document(item(b'"99213"'), after=b'"x_count":') + tail
    data = data.replace(b'"x_count":}', b'"x_count":')  # document() closed the object already
    path = tmp_path / "tail.json"
    path.write_bytes(data)
    start = data.index(b'"x_count":') + len(b'"x_count":')
    sizes = range(start, len(data) + 1)
    refs = check_engines(path, tmp_path, [None, ["1"]], [(f"chunk={n}", n) for n in sizes])
    assert refs[0].result.ok and refs[0].result.file_metadata["version"] == "2.0.0"


# ---------------------------------------------------------------------------------------------
# Malformed input: the same kind of failure, never a success
# ---------------------------------------------------------------------------------------------

SKIPPED = item(
    b'"11111"',
    description=rb'"a \"quoted\" ]} text caf\u00e9 ' + "é ✓".encode() + b'"',
    extra=b',"bundled_codes":[' + code_entry(b'"99213"') + b'],"x_flags":[true,false,null]',
    rates=[rate(b"12.75"), rate(b"4", b"[1,2]")],
)
MALFORMED_BASE = document(item(b'"99213"'), SKIPPED, item(b'"99214"'))
MALFORMED_WHITELIST = ["99213", "99214"]  # the middle item is skipped undecoded
MALFORMED_ENGINES = (("default", None), ("chunk=7", 7), ("chunk=1", 1), ("threads=2", (5, 2)))


def run_failure(
    data: bytes,
    tmp_path: Path,
    whitelist: list[str] | None = MALFORMED_WHITELIST,
    engines: Sequence[tuple[str, Any]] = MALFORMED_ENGINES,
) -> tuple[Outcome, list[Outcome]]:
    """Run both engines on `data`; both must fail. Returns (reference, fast outcomes)."""
    path = tmp_path / f"bad-{next(_runs)}.json"
    path.write_bytes(data)
    ref = extract(path, tmp_path, "reference", whitelist)
    assert ref.result.status == "failed", f"reference accepted {describe(data)}"
    fasts = []
    for label, spec in engines:
        fast = extract(path, tmp_path, spec, whitelist)
        fasts.append(fast)
        assert fast.result.status == "failed", f"fast {label} accepted {describe(data)}"
    return ref, fasts


def describe(data: bytes) -> str:
    return f"{data[:50]!r}...{data[-50:]!r} ({len(data)} bytes)"


def check_failure(
    data: bytes, tmp_path: Path, whitelist: list[str] | None = MALFORMED_WHITELIST
) -> tuple[Outcome, list[Outcome]]:
    """Both engines fail with the same kind of error."""
    ref, fasts = run_failure(data, tmp_path, whitelist)
    for (label, _), fast in zip(MALFORMED_ENGINES, fasts, strict=True):
        assert error_kind(fast.error) == error_kind(ref.error), (
            f"fast {label} on {describe(data)}: {fast.error!r} vs reference {ref.error!r}"
        )
    return ref, fasts


def check_truncated(
    prefix: bytes,
    tmp_path: Path,
    data: bytes | None = None,
    whitelist: list[str] | None = MALFORMED_WHITELIST,
    engines: Sequence[tuple[str, Any]] = MALFORMED_ENGINES,
) -> None:
    """`data` (default: `prefix`) holds JSON cut after `prefix`: both say it ends early.

    Wherever the cut falls (inside a number `12.`, an escape `\\u00`, a literal `tr`, a UTF-8
    sequence), the file is truncated, not invalid.
    """
    ref, fasts = run_failure(prefix if data is None else data, tmp_path, whitelist, engines)
    if not prefix:
        return  # an empty file: its own message, compared by check_failure
    labels = ["reference", *(f"fast {label}" for label, _ in engines)]
    for label, outcome in zip(labels, [ref, *fasts], strict=True):
        assert error_kind(outcome.error) == "JSON ends early", (
            f"{label}, JSON cut after {prefix[-40:]!r}: {outcome.error!r}"
        )


def truncation_points(data: bytes, step: int, inner_step: int) -> list[int]:
    """Every `step`-th offset, every `inner_step`-th inside the skipped item, the last few."""
    start = data.index(b'"11111"') - 80
    end = data.index(b'"99214"')
    every = range(0, len(data), step)
    return sorted({*every, *range(start, end, inner_step), *range(len(data) - 8, len(data))})


def test_malformed_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_bytes(MALFORMED_BASE)
    (ref,) = check_engines(path, tmp_path, [MALFORMED_WHITELIST], MALFORMED_ENGINES)
    assert ref.result.ok and ref.result.items_matched == 2 and ref.result.items_seen == 3


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["compact", "pretty-crlf"])
def test_malformed_truncated_plain_file_fails_alike(layout: str, tmp_path: Path) -> None:
    data = MALFORMED_BASE
    if layout != "compact":
        data = reformat(data, indent=2, crlf=True)
    for cut in truncation_points(data, 29, 1 if layout == "compact" else 2):
        check_truncated(data[:cut], tmp_path, engines=MALFORMED_ENGINES[:2])


def test_malformed_truncated_plain_file_sample_fails_alike(tmp_path: Path) -> None:
    """A quick sample of the cuts above (the dense sweep is marked slow)."""
    data = MALFORMED_BASE
    for cut in sorted({*range(0, len(data), 97), *range(len(data) - 3, len(data))}):
        if cut:
            check_truncated(data[:cut], tmp_path)
        else:
            check_failure(b"", tmp_path)


def test_malformed_truncated_gzip_fails_alike(tmp_path: Path) -> None:
    raw = reformat(MALFORMED_BASE, indent=1)
    packed = gzip.compress(raw, mtime=0)
    cuts = sorted({*range(1, len(packed), 23), *range(len(packed) - 9, len(packed))})
    for cut in cuts:
        check_failure(packed[:cut], tmp_path)


def test_malformed_truncated_json_inside_complete_gzip_fails_alike(tmp_path: Path) -> None:
    """The gzip stream is whole but the JSON in it stops: inside the skipped item, and late."""
    start, end = MALFORMED_BASE.index(b'"11111"'), MALFORMED_BASE.index(b'"99214"')
    for cut in [*range(start - 40, end, 9), len(MALFORMED_BASE) - 1]:
        prefix = MALFORMED_BASE[:cut]
        check_truncated(prefix, tmp_path, gzip.compress(prefix, mtime=0))


def bad(where: bytes, replacement: bytes, data: bytes = MALFORMED_BASE) -> tuple[bytes, int]:
    """`data` with its first `where` replaced; returns it and the offset of the replacement."""
    at = data.index(where)
    return data[:at] + replacement + data[at + len(where) :], at


INVALID_CASES = {
    # name: (where, replacement, offset of the bad byte within the replacement)
    "number-with-letter-in-skipped-item": (b"12.75", b"12x", 2),
    "number-with-letter-in-matched-item": (b"123.45", b"12x", 2),
    "letter-in-number-in-header": (b'"2024-05-01"', b"2024-05-01", 4),
    "invalid-escape-in-skipped-item": (b"quoted", b"quo\\qed", 4),
    "raw-newline-in-string-of-skipped-item": (b"quoted", b"quo\ned", 3),
    "nan-in-skipped-item": (b"12.75", b"NaN", 0),
    "leading-zero-in-skipped-item": (b"12.75", b"012", 1),
    "bad-literal-in-skipped-item": (b"[1,2]", b"[tru,2]", 4),
    "unquoted-key-in-skipped-item": (b'"billing_class"', b"billing_class", 0),
    "single-quotes-in-skipped-item": (b'"nested"', b"'nested'", 0),
    "missing-comma-between-items": (
        b'},{"negotiation_arrangement":"ffs","name":"Office visit"',
        b'}{"negotiation_arrangement":"ffs","name":"Office visit"',
        1,
    ),
    "trailing-comma-in-array-of-matched-item": (b"]}", b",]}", 1),
    "trailing-comma-in-in-network": (b"}]}]}]}", b"}]}]},]}", 6),
    "bracket-mismatch-in-skipped-item": (b"[1,2]", b"[1,2}", 4),
    "colon-missing-in-skipped-item": (b'"description":"a \\"', b'"description" "a \\"', 14),
    "bad-byte-in-provider-references": (b'"11-1111111"', b"11-1111111x", 2),
    "bad-byte-in-top-level-key": (b'"last_updated_on"', b"last_updated_on", 0),
    # What structural validation checks inside a skipped item (docs/guarantees.md#validation)
    "extra-closing-bracket-in-skipped-item": (b"[1,2]", b"[1,2]]", 5),
    # (its "quoted" description is a member of the item itself, "nested" is in bundled_codes)
    "control-character-in-nested-string-of-skipped-item": (b"nested", b"nes\x01ted", 3),
    "tab-in-nested-string-of-skipped-item": (b"nested", b"nes\tted", 3),
    "invalid-escape-in-nested-string-of-skipped-item": (b"nested", b"nes\\qted", 4),
    "bad-unicode-escape-in-nested-string-of-skipped-item": (b"nested", b"nes\\u00g9ted", 7),
    "backslash-outside-string-in-skipped-item": (b"[1,2]", b"[1,\\2]", 3),
    "non-ascii-outside-string-in-skipped-item": (b"[1,2]", "[1,é]".encode(), 3),
    "control-character-outside-string-in-skipped-item": (b"[1,2]", b"[1,\x022]", 3),
    "garbage-between-items": (
        b'},{"negotiation_arrangement":"ffs","name":"Office visit"',
        b'}x,{"negotiation_arrangement":"ffs","name":"Office visit"',
        1,
    ),
    # An unknown top-level member's value is skipped like an item (found by tests/test_fuzz.py)
    "comma-for-colon-in-unwanted-top-level-value": (
        b'"in_network":[',
        b'"x_note":{"a",:[1]},"in_network":[',
        13,
    ),
    "leading-zero-in-unwanted-top-level-value": (
        b'"in_network":[',
        b'"x_note":[1,02],"in_network":[',
        13,
    ),
}
# Faults whose first invalid byte comes later: both engines fail, the fast one at or after
# the fault (a string left open inside a skipped item may run to the end: "ends early").
LATE_CASES = {
    "unbalanced-bracket-in-skipped-item": (b"[1,2]", b"[1,[2]", 3),
    "unterminated-nested-string-of-skipped-item": (b'"nested"', b'"nested\\"', 7),
}
# Inside a skipped item's containers, only `validate: full` checks numbers, literals and what
# is not a string where a string must be: the default accepts them (the item is not read).
FULL_ONLY = {
    "number-with-letter-in-skipped-item",
    "nan-in-skipped-item",
    "leading-zero-in-skipped-item",
    "bad-literal-in-skipped-item",
    "single-quotes-in-skipped-item",
    "comma-for-colon-in-unwanted-top-level-value",
    "leading-zero-in-unwanted-top-level-value",
}


@pytest.mark.parametrize("name", list(INVALID_CASES))
def test_malformed_invalid_json_fails_alike_and_fast_names_offset(
    name: str, tmp_path: Path
) -> None:
    where, replacement, into = INVALID_CASES[name]
    data, at = bad(where, replacement)
    bad_byte = at + into
    if name in FULL_ONLY and _hold != "full":
        check_structural_passes(data, tmp_path)
        return
    check_fails_at(data, bad_byte, *check_failure(data, tmp_path))


def check_fails_at(data: bytes, bad_byte: int, ref: Outcome, fasts: list[Outcome]) -> None:
    """The reference engine found invalid JSON, and each fast engine said so within 3 bytes of
    `bad_byte`."""
    assert error_kind(ref.error) == "invalid JSON", ref.error
    for fast in fasts:
        offset = error_offset(fast.error)
        assert offset is not None and abs(offset - bad_byte) <= 3, (
            f"bad byte at {bad_byte} ({data[bad_byte : bad_byte + 1]!r}); fast said {fast.error!r}"
        )


# With no whitelist every item is extracted, and only skimmed by the scanner: the C reader
# checks what it reads (numbers, literals, commas and colons), and an item it leaves to Python
# is checked in full first, so each of these still fails at its byte (docs/guarantees.md).
EXTRACTED_CASES = {
    # name: (where, replacement, offset of the bad byte within the replacement)
    "leading-zero-in-rate": (b"123.45", b"0123", 1),
    "rate-ending-in-a-dot": (b"123.45", b"123.", 4),
    "rate-without-integer-part": (b"123.45", b"-.5", 1),
    "bad-literal-as-rate": (b"123.45", b"nul", 3),
    "leading-zero-in-provider-reference": (
        b'"provider_references":[1]',
        b'"provider_references":[01]',
        24,
    ),
    "leading-zero-in-integer-code": (b'"99213"', b"099213", 1),
    "comma-missing-between-members": (
        b'"negotiated_type":"negotiated","negotiated_rate"',
        b'"negotiated_type":"negotiated" "negotiated_rate"',
        31,
    ),
    "colon-missing": (b'"billing_class":"professional"', b'"billing_class" "professional"', 16),
    "trailing-comma-in-price": (
        b'"billing_class":"professional"}',
        b'"billing_class":"professional",}',
        31,
    ),
    "control-character-in-name": (b'"Office visit"', b'"Office\x01visit"', 7),
    "invalid-escape-in-name": (b'"Office visit"', b'"Office\\qvisit"', 8),
    # an unknown key: the item is Python's, checked in full before it is decoded
    "leading-zero-in-an-item-read-in-python": (
        b'"description":"Visit"',
        b'"description":"Visit","x":01',
        27,
    ),
}


@pytest.mark.parametrize("name", list(EXTRACTED_CASES))
def test_malformed_extracted_item_fails_at_its_byte(name: str, tmp_path: Path) -> None:
    where, replacement, into = EXTRACTED_CASES[name]
    data, at = bad(where, replacement)
    check_fails_at(data, at + into, *run_failure(data, tmp_path, whitelist=None))


@pytest.mark.parametrize("name", list(LATE_CASES))
def test_malformed_fault_found_later_still_fails(name: str, tmp_path: Path) -> None:
    where, replacement, into = LATE_CASES[name]
    data, at = bad(where, replacement)
    ref, fasts = run_failure(data, tmp_path)
    assert error_kind(ref.error) == "invalid JSON", ref.error
    for fast in fasts:
        offset = error_offset(fast.error)
        assert error_kind(fast.error) == "JSON ends early" or (
            offset is not None and offset >= at + into
        ), f"fault at {at + into}; fast said {fast.error!r}"


def check_structural_passes(data: bytes, tmp_path: Path) -> None:
    """The reference engine rejects `data`, whose only fault is inside the skipped item, while
    the fast engine with structural validation writes the tables of the valid file."""
    path = tmp_path / f"bad-{next(_runs)}.json"
    path.write_bytes(data)
    assert extract(path, tmp_path, "reference", MALFORMED_WHITELIST).result.status == "failed"
    base = tmp_path / f"base-{next(_runs)}.json"
    base.write_bytes(MALFORMED_BASE)
    expected = extract(base, tmp_path, "reference", MALFORMED_WHITELIST)
    assert expected.result.ok
    for label, spec in MALFORMED_ENGINES:
        fast = extract(path, tmp_path, spec, MALFORMED_WHITELIST)
        assert fast.result.ok, f"fast {label}: {fast.result.error}"
        assert fast.rates == expected.rates and fast.providers == expected.providers, label


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'{"reporting_entity_name":"abc,"version":"1.0.0","in_network":[]}',
            id="unterminated-string-inside",
        ),
        pytest.param(
            bad(b'"a \\"quoted', b'"a \\"quoted\\')[0],
            id="string-escaping-its-quote-in-skipped-item",
        ),
        pytest.param(MALFORMED_BASE + b" x", id="trailing-letter"),
        pytest.param(MALFORMED_BASE + b"\r\n{}", id="trailing-object"),
        pytest.param(MALFORMED_BASE + b"]", id="trailing-bracket"),
        pytest.param(MALFORMED_BASE + b",", id="trailing-comma"),
        pytest.param(MALFORMED_BASE[:-1] + b"]", id="object-closed-by-bracket"),
        pytest.param(b"[" + MALFORMED_BASE + b"]", id="top-level-array"),
        pytest.param(b"[]", id="top-level-empty-array"),
        pytest.param(b"42", id="top-level-number"),
        pytest.param(b'"in_network"', id="top-level-string"),
        pytest.param(b"null", id="top-level-null"),
        pytest.param(b"", id="empty-file"),
        pytest.param(b" \r\n\t \n", id="whitespace-only"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"in_network":null}', id="in-network-null"),
        pytest.param(b'{"in_network":{"billing_code":"99213"}}', id="in-network-object"),
        pytest.param(b'{"in_network":[],}', id="trailing-comma-in-object"),
        pytest.param(b'{"in_network" []}', id="missing-colon"),
        pytest.param(b'{"reporting_structure":[],"in_network":[]}', id="table-of-contents"),
    ],
)
def test_malformed_document_fails_alike(data: bytes, tmp_path: Path) -> None:
    check_failure(data, tmp_path)
    check_failure(data, tmp_path, whitelist=None)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"reporting_entity_name":"abc', id="unterminated-string-at-end"),
        pytest.param(b'{"reporting_entity_name":"abc\\', id="unterminated-string-after-backslash"),
        pytest.param(b'{"in_network":[{"billing_code":"1"},', id="after-comma"),
        pytest.param(b'{"in_network":[]', id="object-not-closed"),
        pytest.param(b'{"in_network":[],"x":-', id="after-minus"),
        pytest.param(b'{"in_network":[],"x":12.', id="after-decimal-point"),
        pytest.param(b'{"in_network":[],"x":1e', id="after-exponent"),
        pytest.param(b'{"in_network":[],"x":1E-', id="after-exponent-sign"),
        pytest.param(b'{"in_network":[],"x":12', id="after-digits"),
        pytest.param(b'{"in_network":[],"x":tr', id="inside-literal"),
        pytest.param(b'{"in_network":[],"x":"\\u00', id="inside-unicode-escape"),
        pytest.param(b'{"in_network":[],"x":"\xc3', id="inside-utf8-sequence"),
        pytest.param(b"nul", id="top-level-cut-literal"),
        pytest.param(b"{", id="open-brace"),
        pytest.param(b'{"in_network"', id="after-key"),
    ],
)
def test_malformed_short_truncated_documents_fail_alike(data: bytes, tmp_path: Path) -> None:
    check_truncated(data, tmp_path)
    check_truncated(data, tmp_path, whitelist=None)


# ---------------------------------------------------------------------------------------------
# Encoding edge cases: bytes that are not UTF-8, escapes that are not characters
# ---------------------------------------------------------------------------------------------

INVALID_UTF8_CASES = {
    # name: (where, replacement, whitelist); the reference (yajl) rejects every one of them
    "in-skipped-item": (b"quoted", b"quo\xffted", MALFORMED_WHITELIST),
    "in-matched-item": (b'"Office visit"', b'"Office \xff visit"', MALFORMED_WHITELIST),
    "in-header-value": (b'"Trap Health"', b'"Trap \xc3 Health"', MALFORMED_WHITELIST),
    "in-skipped-top-level-value": (b'"in_network":[', b'"x_note":"\xfe","in_network":[', None),
    "in-used-provider-reference": (b'"B Group"', b'"B \xff Group"', None),
    "in-unused-provider-reference": (b'"B Group"', b'"B \xff Group"', ["99214"]),
    "in-provider-group-id": (
        b'"11-1111111"}}]},{"provider_group_id":2',
        b'"11-1111111"}}]},{"provider_group_id":"\xff"',
        None,
    ),
    "overlong-encoding": (b"quoted", b"quo\xc0\xafted", MALFORMED_WHITELIST),
    "utf16-surrogate-encoded-in-utf8": (b"quoted", b"quo\xed\xa0\x80ted", MALFORMED_WHITELIST),
}


@pytest.mark.parametrize("name", list(INVALID_UTF8_CASES))
def test_invalid_utf8_fails_alike(name: str, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are invalid JSON (RFC 8259 section 8.1) wherever they are.

    The reference rejects them all; the fast engine must not succeed (a skipped item is
    validated as JSON, so as UTF-8 too) nor fail with an internal error.
    """
    where, replacement, whitelist = INVALID_UTF8_CASES[name]
    data, _ = bad(
        where,
        replacement,
        MALFORMED_BASE.replace(b'"provider_references":[1]', b'"provider_references":[1,2]', 1),
    )
    ref, _ = check_failure(data, tmp_path, whitelist)
    assert error_kind(ref.error) == "invalid JSON", ref.error


LONE_SURROGATES = {
    # name: (where, replacement, whitelist). Valid JSON text (RFC 8259 section 8.2: the grammar
    # allows any \\uXXXX; what a lone half means is up to the parser). The reference decodes
    # a lone high half as "?".
    "high-half-in-matched-item": (b'"Office visit"', b'"Office \\ud800 visit"', None),
    "high-half-in-skipped-item": (b"quoted", b"quo\\ud83dted", MALFORMED_WHITELIST),
    "high-half-at-end-of-string-in-skipped-item": (b'"Visit"', b'"Visit\\ud83d"', ["99999"]),
    "high-half-in-header": (b'"Trap Health"', b'"Trap \\ud83d Health"', None),
    "low-half-in-matched-item": (b'"Office visit"', b'"Office \\udc00 visit"', None),
    "reversed-pair-in-header": (b'"Trap Health"', b'"Trap \\ude00\\ud83d"', None),
}


@pytest.mark.parametrize("name", list(INVALID_UTF8_CASES))
def test_invalid_utf8_in_gzip_fails_with_a_reader_thread(name: str, tmp_path: Path) -> None:
    """gzip inflated by a reader thread, each chunk's UTF-8 checked by the scanning thread:
    chunks of 1 to 3 bytes cut every character; each run fails as invalid."""
    where, replacement, whitelist = INVALID_UTF8_CASES[name]
    data, _ = bad(where, replacement, MALFORMED_BASE)
    path = tmp_path / "bad.json.gz"
    path.write_bytes(gzip.compress(data, mtime=0))
    ref = extract(path, tmp_path, "reference", whitelist)
    for spec in [(1, 2), (2, 2), (3, 2), (1 << 20, 2)]:
        fast = extract(path, tmp_path, spec, whitelist)
        assert error_kind(fast.error) == error_kind(ref.error) == "invalid JSON", (spec, fast.error)


@pytest.mark.parametrize("name", list(LONE_SURROGATES))
def test_lone_surrogate_escapes_handled_like_reference(name: str, tmp_path: Path) -> None:
    """Both engines take the same decision on a lone surrogate escape, and neither crashes.

    Accepting it (as the reference does for a high half) or rejecting it as invalid JSON would
    both be defensible; an internal error, or one engine failing a file the other extracts,
    is not.
    """
    where, replacement, whitelist = LONE_SURROGATES[name]
    data, _ = bad(where, replacement)
    path = tmp_path / "surrogate.json"
    path.write_bytes(data)
    ref = extract(path, tmp_path, "reference", whitelist)
    for label, spec in [("default", None), ("chunk=7", 7)]:
        fast = extract(path, tmp_path, spec, whitelist)
        for engine, outcome in (("reference", ref), (f"fast {label}", fast)):
            assert outcome.result.ok or error_kind(outcome.error) == "invalid JSON", (
                f"{engine}: {outcome.error}"
            )
        assert_same(fast, ref, f"{name} whitelist={whitelist} fast {label}")


# ---------------------------------------------------------------------------------------------
# Random schema-valid documents (hypothesis)
# ---------------------------------------------------------------------------------------------

CODE_POOL = ("99213", "99214", "27447", "J1885", "0450", "470")

texts = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.sampled_from('"\\[]{},: \t\n\r/'),
            st.characters(codec="utf-8", exclude_characters="\x00"),
        ),
        max_size=8,
    ),
    st.sampled_from(['"billing_code": "99213"', "billing_code", "in_network", "]}", "\\u0022"]),
)
numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["690.64470", "1e3", "-0.0", "1.50E-2", "0"]).map(raw_number),
)
group_ids = st.one_of(st.integers(0, 10**6), numbers, texts)
billing_codes = st.one_of(
    st.sampled_from(CODE_POOL),
    st.sampled_from(CODE_POOL),
    st.sampled_from(CODE_POOL),
    st.sampled_from(CODE_POOL).map(lambda c: f" {c.lower()} "),
    st.sampled_from(["99213", "470", "27447.0", "1E3"]).map(raw_number),
    texts,
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def shuffled(draw: Any, fields: dict[str, Any], optional: dict[str, Any] | None = None) -> dict:
    """`fields` plus a random subset of `optional`, in a random key order."""
    pairs = list(fields.items())
    for key, strategy in (optional or {}).items():
        if draw(st.booleans()):
            pairs.append((key, draw(strategy)))
    return dict(draw(st.permutations(pairs)))


def tins() -> Any:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["ein", "npi"]), "value": texts},
        optional={"business_name": texts},
    )


def provider_groups() -> Any:
    return st.lists(
        st.fixed_dictionaries(
            {"npi": st.lists(st.integers(0, 9_999_999_999), max_size=3), "tin": tins()}
        ),
        min_size=1,
        max_size=2,
    )


@st.composite
def items(draw: Any, ids: list[Any]) -> dict[str, Any]:
    code_entry_strategy = st.fixed_dictionaries(
        {
            "billing_code_type": st.sampled_from(["CPT", "HCPCS"]),
            "billing_code_type_version": st.just("2024"),
            "billing_code": billing_codes,
            "description": texts,
        }
    )
    prices = st.lists(
        shuffled(
            {
                "negotiated_type": draw(st.sampled_from(["negotiated", "fee schedule", "derived"])),
                "negotiated_rate": draw(
                    st.one_of(
                        st.floats(0, 1e6, allow_nan=False),
                        st.integers(0, 10**6),
                        st.sampled_from(["123.45", "0.10", "7"]).map(raw_number),
                        st.sampled_from(["12.5", "n/a"]),
                    )
                ),
                "expiration_date": "9999-12-31",
                "billing_class": draw(st.sampled_from(["professional", "institutional"])),
            },
            {
                "setting": st.sampled_from(["inpatient", "outpatient"]),
                "service_code": st.lists(st.sampled_from(["11", "22", "CSTM-00"]), max_size=2),
                "billing_code_modifier": st.lists(texts, max_size=2),
                "additional_information": texts,
            },
        ),
        min_size=1,
        max_size=2,
    )
    references = st.lists(st.sampled_from(ids) if ids else group_ids, min_size=1, max_size=3)
    rates = st.lists(
        shuffled(
            {"negotiated_prices": draw(prices)},
            {"provider_references": references, "provider_groups": provider_groups()},
        ),
        min_size=1,
        max_size=2,
    )
    fields = {
        "negotiation_arrangement": draw(st.sampled_from(["ffs", "bundle", "capitation"])),
        "name": draw(texts),
        "billing_code_type": draw(st.sampled_from(["CPT", "HCPCS", "RC", "MS-DRG"])),
        "billing_code_type_version": draw(st.sampled_from(["2024", raw_number("2024"), "1"])),
        "description": draw(texts),
        "negotiated_rates": draw(rates),
    }
    if draw(st.integers(0, 9)):  # now and then an item without a code
        fields["billing_code"] = draw(billing_codes)
    optional = {
        "bundled_codes": st.lists(code_entry_strategy, min_size=1, max_size=2),
        "covered_services": st.lists(code_entry_strategy, min_size=1, max_size=2),
        "severity_of_illness": texts,
        "x_vendor": json_values,
    }
    return draw(shuffled(fields, optional))


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    ids = draw(st.lists(group_ids, max_size=4))
    references = [
        draw(
            shuffled(
                {"provider_group_id": gid, "provider_groups": draw(provider_groups())},
                {"network_name": st.lists(texts, min_size=1, max_size=2), "x_ref": json_values},
            )
        )
        for gid in ids
    ]
    metadata = draw(
        st.lists(
            st.sampled_from(
                [
                    "reporting_entity_name",
                    "plan_name",
                    "plan_id",
                    "version",
                    "last_updated_on",
                    "issuer_name",
                    "plan_market_type",
                ]
            ),
            unique=True,
        )
    )
    members: list[tuple[str, Any]] = [(key, draw(texts | numbers)) for key in metadata]
    if draw(st.booleans()):
        members.append(
            (draw(st.sampled_from(["x_blob", "in_network_files", "x"])), draw(json_values))
        )
    members = draw(st.permutations(members))
    at = draw(st.integers(0, len(members)))
    fewest = draw(st.sampled_from([0, 1, 1, 1]))
    members.insert(at, ("in_network", draw(st.lists(items(ids), min_size=fewest, max_size=5))))
    where = draw(st.sampled_from(["before", "after", "absent"]))
    if where != "absent":
        members.insert(at + (where == "after"), ("provider_references", references))
    return dict(members)


def codes_in(doc: dict[str, Any]) -> list[str]:
    """Billing codes of the items and their nested codes, as a whitelist would spell them."""
    found = []
    for item in doc["in_network"]:
        nested = [*item.get("bundled_codes", []), *item.get("covered_services", [])]
        for entry in (item, *nested):
            if "billing_code" in entry:
                found.append(str(entry["billing_code"]).replace(_NUMBER, "").strip().upper())
    return [code for code in found if code]


LAYOUTS = st.sampled_from(
    [
        {"indent": None, "separators": (",", ":")},
        {"indent": None, "separators": None},
        {"indent": 2, "separators": None},
        {"indent": "\t", "separators": (" ,", " : ")},
    ]
)


@settings(
    max_examples=max_examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    doc=documents(),
    layout=LAYOUTS,
    ensure_ascii=st.booleans(),
    crlf=st.booleans(),
    compress=st.sampled_from([False, False, True]),
    chunk=st.sampled_from([1, 2, 3, 5, 7, 16, 64, 257, 4096]),
    data=st.data(),
)
def test_fast_engine_matches_reference_on_random_documents(
    tmp_path_factory: pytest.TempPathFactory,
    doc: dict[str, Any],
    layout: dict[str, Any],
    ensure_ascii: bool,
    crlf: bool,
    compress: bool,
    chunk: int,
    data: st.DataObject,
) -> None:
    codes = [*CODE_POOL, "00000", "1E+3", "27447.0", *codes_in(doc)]
    whitelist = data.draw(st.none() | st.lists(st.sampled_from(codes), min_size=1, max_size=3))
    text = serialize(doc, ensure_ascii=ensure_ascii, crlf=crlf, **layout)
    out = tmp_path_factory.mktemp("random")
    path = out / ("doc.json.gz" if compress else "doc.json")
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    ref = extract(path, out, "reference", whitelist)
    assert ref.result.ok, ref.error
    fast = extract(path, out, chunk, whitelist)
    assert_same(fast, ref, f"random document, whitelist={whitelist}, chunk={chunk}: {text!r}")


# ---------------------------------------------------------------------------------------------
# Remote provider references (served on 127.0.0.1)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("refs_position", ["before", "after"])
def test_fast_engine_matches_reference_with_remote_references(
    refs_position: Any, http_server: Any, tmp_path: Path
) -> None:
    """References with a `location` are kept undecoded by the fast engine until needed."""
    sf = synth.generate(
        synth.SynthConfig(
            seed=41,
            items=10,
            references=6,
            refs_position=refs_position,
            id_style="float",
            remote_base_url=http_server.base_url + "/refs",
            remote_refs=4,
            remote_locations=2,
            arrangements=True,
            unknown_keys=True,
        )
    )
    for url, data in sf.remote_bytes(pretty=True).items():
        http_server.add(url, data)
    path = tmp_path / "remote.json"
    path.write_bytes(sf.to_bytes(pretty=True))
    engines = [("default", None), ("chunk=3", 3), ("chunk=64", 64)]
    refs = check_engines(path, tmp_path, whitelists_for(json.loads(sf.to_bytes())), engines)
    assert refs[0].result.remote_references_fetched == 2
    assert refs[0].result.remote_references_failed == 0


# ---------------------------------------------------------------------------------------------
# Limits of the decoders
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["matched-item", "skipped-item", "top-level-unknown-key"])
def test_fast_engine_matches_reference_on_very_deep_nesting(where: str, tmp_path: Path) -> None:
    """Nesting deeper than Python's recursion limit: the same outcome, never an internal error."""
    deep = b"[" * 1500 + b'"]}"' + b"]" * 1500
    code = b'"11111"' if where == "skipped-item" else b'"99213"'
    if where == "top-level-unknown-key":
        data = document(item(code), before=b'"x_deep":' + deep)
    else:
        data = document(item(code, extra=b',"x_deep":' + deep), item(b'"99213"'))
    path = tmp_path / "deep.json"
    path.write_bytes(data)
    ref = extract(path, tmp_path, "reference", ["99213"])
    for label, spec in [("default", None), ("chunk=64", 64)]:
        fast = extract(path, tmp_path, spec, ["99213"])
        assert not (fast.error or "").startswith("internal error"), fast.error
        assert_same(fast, ref, f"{where} fast {label}")


@pytest.mark.parametrize("hold", ["hold"], indirect=True)
def test_fast_engine_c_scanner_decodes_items_nested_up_to_its_limit(
    hold: str, tmp_path: Path
) -> None:
    """An item nested 4990 levels deep passes the C scanner (limit 5000) and is decoded."""
    path = tmp_path / "deep.json"
    for levels, error in [(4988, None), (5000, "nested deeper than 5000 levels")]:
        deep = b"[" * levels + b'"]}"' + b"]" * levels
        path.write_bytes(document(item(b'"99213"', extra=b',"x_deep":' + deep), item(b"1")))
        fast = extract(path, tmp_path, None, ["99213"])
        if error is None:
            assert fast.result.ok and fast.result.items_matched == 1, fast.error
            assert_same(fast, extract(path, tmp_path, "reference", ["99213"]), "4990 levels")
        else:
            assert error in (fast.error or ""), fast.error


@pytest.mark.parametrize("hold", ["hold"], indirect=True)
def test_c_scanner_holds_a_long_skipped_item_about_once(
    hold: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A skipped item 40 chunks long grows the buffer a chunk at a time, not to twice its size."""
    longest = 0
    original = Scanner._more

    def more(self: Any) -> bool:
        nonlocal longest
        got = original(self)
        longest = max(longest, len(self.buf))
        return bool(got)

    monkeypatch.setattr(Scanner, "_more", more)
    chunk = 64 * 1024
    padding = b",".join([b'{"a":"' + b"x" * 50 + b'"}'] * 45_000)  # 2.6 MB of small values
    big = item(b'"11111"', extra=b',"x_pad":[' + padding + b"]")
    path = tmp_path / "long.json"
    path.write_bytes(document(big, item(b'"99213"'), big.replace(b"11111", b"22222")))
    outcome = extract(path, tmp_path, chunk, ["99213"])
    assert outcome.result.ok and outcome.result.items_matched == 1, outcome.error
    assert len(big) < longest <= len(big) + 3 * chunk


@pytest.mark.parametrize("blank", [b"\x0c", b"\x0b", b"\xc2\xa0", b"\x00"])
@pytest.mark.parametrize("where", ["between-top-level-members", "inside-skipped-item"])
def test_non_json_whitespace_is_invalid_json(where: str, blank: bytes, tmp_path: Path) -> None:
    """JSON's whitespace is space, tab, LF and CR only (RFC 8259 section 2): nothing else."""
    data = document(item(b'"11111"'), item(b'"99213"'))
    if where == "between-top-level-members":
        data = data.replace(b',"in_network"', b"," + blank + b'"in_network"')
    else:
        data = data.replace(b'"name":', blank + b'"name":', 1)
    ref, _ = check_failure(data, tmp_path, ["99213"])
    assert error_kind(ref.error) == "invalid JSON", ref.error


@pytest.mark.parametrize("fault", [b"@", b"\xff", b"@\x00"])
def test_the_first_fault_is_reported_before_a_later_form_feed(fault: bytes, tmp_path: Path) -> None:
    """A byte that cannot start a key, then a form feed further on in the same piece: every
    engine names the first. (The reference engine finds form feeds itself, since yajl takes
    them for whitespace; yajl quotes bytes that are not UTF-8 as they are, and stops quoting
    at a zero byte.)"""
    data = document(item(b'"11111"'), item(b'"99213"', name=b'"Office\x0cvisit"'))
    data = data.replace(b',"in_network"', b"," + fault + b'"in_network"')
    bad_byte = data.index(fault)
    assert bad_byte < data.index(b"\x0c") < 60_000  # both in the reference engine's first piece
    ref, fasts = check_failure(data, tmp_path, ["99213"])
    check_fails_at(data, bad_byte, ref, fasts)
    assert error_offset(ref.error) == bad_byte, ref.error
    assert "b'" not in (ref.error or ""), ref.error  # the words, not a bytes object's repr


def test_a_gzip_file_whose_first_byte_became_markup_fails_at_its_start(tmp_path: Path) -> None:
    """Not gzip any more, so read as it is: `<` is not JSON, and the second byte of gzip's
    magic (0x8b) is not UTF-8. Each engine names one of the two: the reference engine the
    first, though yajl's quote of the bytes stops at the header's zero byte (RFC 1952: the
    flags byte) and its caret line comes right after."""
    data = bytearray(gzip.compress(document(item(b'"99213"')), mtime=0))
    assert data[:4] == b"\x1f\x8b\x08\x00"  # gzip's magic, deflate, no flags (RFC 1952)
    data[0] = ord("<")
    ref, fasts = check_failure(bytes(data), tmp_path, ["99213"])
    assert error_offset(ref.error) == 0, ref.error
    for fast in fasts:
        assert error_offset(fast.error) in (0, 1), fast.error


def longest_buffer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the most bytes the fast engine's buffer held from its read position on (in a
    one-element list): with a reader thread, each buffer also has HEAD spare bytes in front."""
    longest = [0]
    original = Scanner._more

    def more(self: Any) -> bool:
        got = original(self)
        longest[0] = max(longest[0], len(self.buf) - self.pos)
        return bool(got)

    monkeypatch.setattr(Scanner, "_more", more)
    return longest


PADDING = b',"x_pad":[' + b",".join([b'{"a":"' + b"x" * 50 + b'"}'] * 45_000) + b"]"  # 2.6 MB


@pytest.mark.parametrize("hold", ["hold"], indirect=True)
@pytest.mark.parametrize("threads", [1, 2])
def test_c_scanner_passes_over_a_long_unwanted_item(
    hold: str, threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item longer than `hold` whose own code (read first) is not wanted is not held whole:
    the buffer stays within `hold` and a few chunks, and the tables are the reference's."""
    longest = longest_buffer(monkeypatch)
    chunk, hold = 64 * 1024, 256 * 1024
    big = item(b'"11111"', extra=PADDING, rates=[rate(refs=b"[1]")])
    path = tmp_path / "long.json"
    path.write_bytes(document(big, item(b'"99213"'), big.replace(b"11111", b"22222"), big))
    engine = FastEngine(chunk_size=chunk, threads=threads, hold=hold)
    for whitelist in (["99213"], ["99213", "22222"]):
        longest[0] = 0
        fast = extract(path, tmp_path, engine, whitelist)
        assert fast.result.ok, fast.error
        assert_same(fast, extract(path, tmp_path, "reference", whitelist), f"{whitelist}")
        assert fast.result.items_seen == 4
        if whitelist == ["99213"]:
            assert longest[0] <= hold + 3 * chunk < len(big)  # no item held whole
        else:
            assert longest[0] > len(big)  # the wanted long item is held whole


@pytest.mark.parametrize("hold", ["hold"], indirect=True)
def test_c_scanner_holds_a_long_item_whose_code_comes_last(
    hold: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until an item's own code has been read, it may be wanted: it is held whole."""
    longest = longest_buffer(monkeypatch)
    big = item(b'"11111"', lead=PADDING[1:] + b",", code_last=True)
    path = tmp_path / "last.json"
    path.write_bytes(document(big, item(b'"99213"')))
    engine = FastEngine(chunk_size=64 * 1024, hold=0)
    fast = extract(path, tmp_path, engine, ["99213"])
    assert_same(fast, extract(path, tmp_path, "reference", ["99213"]), "code last")
    assert longest[0] > len(big)


@pytest.mark.parametrize("hold", ["hold"], indirect=True)
@pytest.mark.parametrize(
    ("second", "whitelist", "fails"),
    [
        (b'"99214"', ["99214"], True),  # a decode keeps the last code, which is wanted
        (b'"99215"', ["99214"], False),  # neither is wanted: passed over, as the reference
        (b'"99214"', ["11111"], False),  # the first is wanted: held whole, the last decides
    ],
)
def test_c_scanner_long_item_naming_its_code_twice(
    hold: str, second: bytes, whitelist: list[str], fails: bool, tmp_path: Path
) -> None:
    big = item(b'"11111"', extra=PADDING + rb',"billing\u005fcode":' + second)
    path = tmp_path / "twice.json"
    data = document(item(b'"99213"'), big)
    path.write_bytes(data)
    engine = FastEngine(chunk_size=64 * 1024, hold=256 * 1024)
    fast = extract(path, tmp_path, engine, whitelist)
    ref = extract(path, tmp_path, "reference", whitelist)
    if not fails:
        assert_same(fast, ref, f"{second!r} {whitelist}")
        return
    assert ref.result.ok and ref.result.items_matched == 1  # the reference decodes it whole
    assert fast.error is not None
    assert f"item at decoded byte {data.index(big)} of" in fast.error, fast.error
    assert "names its billing_code again" in fast.error and "--engine reference" in fast.error
