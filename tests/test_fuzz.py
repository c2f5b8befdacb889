"""Mutated in-network files through run_extraction, every engine on each (hypothesis).

Valid files from tests/support/synth.py get byte flips, deletions, insertions and truncations:
in the JSON, delivered plain or gzipped, or in the gzip stream itself. Each case must end in
success or in a failed status.json whose error says where (a byte offset) or what was expected;
never an unhandled exception or an internal error, never a hang (a deadline per case), and never
a table under a final name after a failure. The engines must agree: all succeed with identical
tables and counts, or all fail.
"""

from __future__ import annotations

import faulthandler
import gzip
import json
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mrfbatch.engines.fast import FastEngine
from mrfbatch.options import ExtractionOptions
from mrfbatch.run_extraction import run_extraction
from mrfbatch.status import ExtractionResult
from mrfbatch.transport import TransportSettings
from support import containers, synth
from support.budget import max_examples

NET = "net"
WHITELIST = ["99213", "27447", "J1885", "0450"]  # some items are decoded, others skipped
ENGINES: dict[str, Any] = {
    "reference": "reference",
    "fast": "fast",
    "fast, 61-byte chunks": FastEngine(chunk_size=61),
    "fast, full validation": FastEngine(validate="full"),
    "fast, full validation, 61-byte chunks": FastEngine(chunk_size=61, validate="full"),
}
# Structural validation (the default) leaves these faults of a skipped item's containers
# unchecked (docs/guarantees.md#validation): where the reference fails and it does not, full
# validation must fail with one of them.
UNCHECKED = re.compile(
    r"invalid number|invalid literal|expected a value|expected ',' or|expected ':'|"
    r"expected a key|unpaired low surrogate"
)
DEADLINE = 20.0  # seconds per extraction (they take about 10 ms)
COUNTS = ("items_seen", "items_matched", "rate_rows", "provider_rows", "unresolved_references")
# An error names a byte offset, or says that the input ends early, what was expected, or what
# an in-network file is.
CLEAR = re.compile(r"\bbytes? \d+|ends early|expected|an in-network file is|not an in-network")

BASES = {
    name: synth.generate(synth.SynthConfig(items=4, references=3, **knobs)).to_bytes(pretty=pretty)
    for name, knobs, pretty in (
        ("plain", {"seed": 1}, False),
        ("after", {"seed": 2, "refs_position": "after", "inline_groups": True}, False),
        ("variety", {"seed": 3, "id_style": "float", "arrangements": True}, True),
        ("unknown", {"seed": 4, "unknown_keys": True, "shuffle_keys": True}, False),
    )
}
FINAL = {"rates.parquet", "providers.parquet", "status.json"}


pytestmark = pytest.mark.usefixtures("quiet_logs")  # tests/conftest.py


class Hang(BaseException):
    """An extraction ran past DEADLINE."""


def _hang(signum: int, frame: FrameType | None) -> None:
    raise Hang


@dataclass
class Outcome:
    result: ExtractionResult
    rates: Any
    providers: Any


def extract(
    data: bytes, folder: Path, label: str, whitelist: list[str] | None = WHITELIST
) -> Outcome:
    """One extraction in this process, with a deadline; checks what it left in its folder."""
    source = folder / "in.json.gz"
    folder.mkdir()
    source.write_bytes(data)
    out = folder / "out"
    # Python-level: SIGALRM raises Hang. Stuck in C: faulthandler ends the whole run.
    previous = signal.signal(signal.SIGALRM, _hang)
    faulthandler.dump_traceback_later(DEADLINE * 3, exit=True)
    signal.setitimer(signal.ITIMER_REAL, DEADLINE)
    try:
        result = run_extraction(
            str(source),
            out,
            ExtractionOptions(
                engine=ENGINES[label], transport=TransportSettings(attempts=1, remote_timeout=1.0)
            ),
            network_id=NET,
            cpt_whitelist=whitelist,
        )
    except Hang:
        pytest.fail(f"{label}: the extraction took more than {DEADLINE} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)
    left = {p.name for p in (out / NET).iterdir()}
    status = json.loads((out / NET / "status.json").read_text(encoding="utf-8"))
    assert status == json.loads(json.dumps(result.to_dict())), f"{label}: status.json differs"
    if result.ok:
        assert left == FINAL, f"{label}: {sorted(left)}"
        return Outcome(
            result,
            pq.read_table(out / NET / "rates.parquet"),
            pq.read_table(out / NET / "providers.parquet"),
        )
    error = result.error or ""
    assert left == {"status.json"}, f"{label} failed ({error}) and left {sorted(left)}"
    assert not error.startswith(("internal error", "interrupted")), f"{label}: {error}"
    assert CLEAR.search(error), f"{label}: an error that says neither where nor what: {error}"
    return Outcome(result, None, None)


def check_engines(data: bytes, folder: Path, whitelist: list[str] | None = WHITELIST) -> None:
    outcomes = {
        label: extract(data, folder / str(i), label, whitelist) for i, label in enumerate(ENGINES)
    }
    reference, full = outcomes["reference"], outcomes["fast, full validation"]
    for label, outcome in outcomes.items():
        pair = f"{label}: {outcome.result.error!r}; reference: {reference.result.error!r}"
        if "full" not in label and outcome.result.ok and not reference.result.ok:
            assert UNCHECKED.search(full.result.error or ""), (
                f"{label} accepted what full validation rejects for a structural fault: "
                f"{full.result.error!r}"
            )
            continue
        assert outcome.result.ok == reference.result.ok, f"one engine failed, not the other: {pair}"
        if reference.result.ok:
            for name in COUNTS:
                assert getattr(outcome.result, name) == getattr(reference.result, name), (
                    f"{label}: {name} differs from the reference"
                )
            assert outcome.rates.equals(reference.rates), f"{label}: rates differ"
            assert outcome.providers.equals(reference.providers), f"{label}: providers differ"


# Byte-level mutations; positions are taken modulo the length of what they apply to.
_TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\u", b"\xff", b"\xc3", b"-", b"e"]
mutations = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
        st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 12)),
        st.tuples(
            st.just("insert"),
            st.integers(0, 1 << 20),
            st.one_of(st.sampled_from(_TOKENS), st.binary(min_size=1, max_size=6)),
        ),
        st.tuples(st.just("truncate"), st.integers(0, 1 << 20)),
    ),
    min_size=1,
    max_size=3,
)


def mutate(data: bytes, changes: list[tuple[Any, ...]]) -> bytes:
    buf = bytearray(data)
    for kind, position, *arg in changes:
        at = position % (len(buf) + 1)
        if kind == "flip" and at < len(buf):
            buf[at] ^= arg[0]
        elif kind == "delete":
            del buf[at : at + arg[0]]
        elif kind == "insert":
            buf[at:at] = arg[0]
        elif kind == "truncate":
            del buf[at:]
    return bytes(buf)


FUZZ = settings(
    max_examples=max_examples(250),
    deadline=None,
    database=None,
    # No database keeps a failure found in CI: its report carries the @reproduce_failure blob.
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(
    base=st.sampled_from(sorted(BASES)),
    gzipped=st.booleans(),
    changes=mutations,
    everything=st.booleans(),
)
# Found by this test: the top level made a string (no offset, but it says what a file is);
# an overlong UTF-8 sequence in a key, which the reference engine once placed "somewhere".
@example(base="after", gzipped=False, changes=[("delete", 0, 1)], everything=False)
@example(base="after", gzipped=False, changes=[("insert", 2, b"\xc0\x80")], everything=False)
def test_run_extraction_mutated_json_fails_clearly_in_every_engine(
    tmp_path_factory: pytest.TempPathFactory,
    base: str,
    gzipped: bool,
    changes: list[Any],
    everything: bool,
) -> None:
    """Mutations of the JSON text, given as plain JSON or gzipped; with the whitelist, or
    none (`everything`: every item extracted, read in C from what the scanner only skimmed)."""
    data = mutate(BASES[base], changes)
    check_engines(
        gzip.compress(data, mtime=0) if gzipped else data,
        tmp_path_factory.mktemp("c"),
        None if everything else WHITELIST,
    )


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), members=st.integers(1, 3), changes=mutations)
def test_run_extraction_mutated_gzip_fails_clearly_in_every_engine(
    tmp_path_factory: pytest.TempPathFactory, base: str, members: int, changes: list[Any]
) -> None:
    """Mutations of the gzip stream (one or several members): its header, deflate data,
    CRC and length trailers, and what follows it."""
    data = mutate(containers.gzip_bytes(BASES[base], members=members), changes)
    check_engines(data, tmp_path_factory.mktemp("c"))


def test_run_extraction_unmutated_bases_succeed(tmp_path: Path) -> None:
    """The fuzzing starts from valid files, which extract as the generator expects."""
    for i, data in enumerate(BASES.values()):
        outcome = extract(data, tmp_path / str(i), "fast")
        assert outcome.result.ok, outcome.result.error
        assert outcome.result.items_seen == 4
