"""Deterministic synthetic in-network-rates files, for the tests and the bundled examples.

Pure stdlib, and no part of mrfbatch: the rows an extraction should produce come from
:mod:`oracle` (independent of the extractor), the files a document is delivered in from
:mod:`containers`; numbers that must keep their exact text (``690.64470``) are
:class:`rawjson.RawNumber`.

Example::

    sf = generate(SynthConfig(seed=1, items=8, refs_position="after", id_style="float"))
    payload = containers.pack(sf.to_bytes(pretty=True), "gz")  # bytes of a .json.gz
    expected = sf.expected("net", whitelist={"99213"})         # rates/providers rows
    assert oracle.canonical(rates, providers) == oracle.canonical(expected.rates, ...)

From a checkout, ``python -m tests.support.synth OUT --seed 7 ...`` writes one file (the
command of examples/README.md).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from . import oracle
from .containers import Container, pack
from .rawjson import Json, RawNumber, dumps

_CODES: tuple[tuple[str, str, str, str], ...] = (
    ("CPT", "2024", "99213", "Office visit, established patient, low complexity"),
    ("CPT", "2024", "99214", "Office visit, established patient, moderate complexity"),
    ("CPT", "2024", "27447", "Arthroplasty, knee, condyle and plateau"),
    ("CPT", "2024", "70553", "MRI brain without and with contrast"),
    ("CPT", "2024", "45378", "Colonoscopy, diagnostic"),
    ("CPT", "2024", "93000", "Electrocardiogram, complete"),
    ("CPT", "2024", "80053", "Comprehensive metabolic panel"),
    ("CPT", "2024", "97110", "Therapeutic exercises, each 15 minutes"),
    ("HCPCS", "2024", "J1885", "Injection, ketorolac tromethamine, per 15 mg"),
    ("HCPCS", "2024", "J3301", "Injection, triamcinolone acetonide, per 10 mg"),
    ("HCPCS", "2024", "G0283", "Electrical stimulation, unattended"),
    ("HCPCS", "2024", "E0601", "Continuous positive airway pressure device"),
    ("RC", "1", "0450", "Emergency room, general"),
    ("MS-DRG", "41", "470", "Major hip and knee joint replacement"),
)
_NEGOTIATED_TYPES = ("negotiated", "negotiated", "fee schedule", "derived", "per diem")
_UNKNOWN_NAMES = ("x_vendor_note", "internalRowId", "x_synth_flags")
_UNKNOWN_VALUES: tuple[Json, ...] = ("see contract 7", 12345, True, None, ["a", 2])
_CODE_KEYS = ("billing_code_type", "billing_code_type_version", "billing_code", "description")


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of :func:`generate`; every combination is deterministic for a given seed."""

    seed: int = 0
    items: int = 6
    references: int = 4  # provider_references entries (ignored when refs_position="none")
    refs_position: Literal["before", "after", "none"] = "before"
    version: str = "2.0.0"  # "1.x" files have no setting/network_name/business_name
    id_style: Literal["int", "float", "string"] = "int"
    inline_groups: bool = False  # some rates carry inline provider_groups only
    mixed_rates: bool = False  # some rates carry provider_references AND provider_groups
    remote_base_url: str | None = None  # where remote provider-reference files are served
    remote_refs: int = 0  # how many references are {"provider_group_id", "location"}
    remote_locations: int = 0  # distinct location files (0: one per remote reference)
    arrangements: bool = False  # include bundle (bundled_codes) and capitation items
    tin_only: bool = False  # some groups are TIN-only ("npi": [0] or [])
    npi_strings: bool = False  # some npi lists hold numeric strings ("1234567893")
    unknown_keys: bool = False  # insert keys the schema does not define
    dangling_refs: int = 0  # rates that also reference an id no reference defines
    shuffle_keys: bool = False  # random key order inside every object
    large_item_rates: int = 0  # the middle in_network item has this many negotiated_rates
    large_reference_groups: int = 0  # the middle provider reference has this many groups


@dataclass
class SynthFile:
    """A generated document plus what the oracle needs to know about it."""

    config: SynthConfig
    document: dict[str, Any]
    remote_files: dict[str, dict[str, Any]]  # location URL -> provider-reference file
    unknown_outside_items: int = 0  # inserted at top level and in provider references
    unknown_per_item: list[int] = field(default_factory=list)  # parallel to in_network
    unknown_names: set[str] = field(default_factory=set)

    def to_bytes(self, *, pretty: bool = False, crlf: bool = False) -> bytes:
        """Serialize the document (UTF-8; compact, or indented with LF or CRLF)."""
        return dumps(self.document, pretty=pretty, crlf=crlf)

    def remote_bytes(self, *, pretty: bool = False) -> dict[str, bytes]:
        """The remote provider-reference files, serialized, by location URL."""
        return {url: dumps(doc, pretty=pretty) for url, doc in self.remote_files.items()}

    def codes(self) -> list[str]:
        """Billing codes of the in_network items, in file order (may repeat)."""
        return [str(item["billing_code"]) for item in self.document.get("in_network", [])]

    def expected(
        self,
        network_id: str,
        whitelist: Iterable[str] | None = None,
        failed_locations: Collection[str] = (),
    ) -> oracle.Expected:
        """Rows and counts per docs/output.md (:func:`oracle.expected`)."""
        return oracle.expected(self, network_id, whitelist, failed_locations)


# ---------------------------------------------------------------- generation


def generate(config: SynthConfig) -> SynthFile:
    """Build a document from config.seed and the knobs (see :class:`SynthConfig`)."""
    return _Builder(config).build()


class _Builder:
    def __init__(self, config: SynthConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.v2 = not config.version.startswith("1.")
        self.sf = SynthFile(config=config, document={}, remote_files={})
        self.group_count = 0
        self.rate_count = 0
        self.ref_use = 0

    def build(self) -> SynthFile:
        cfg, rng = self.cfg, self.rng
        doc: dict[str, Json] = {
            "reporting_entity_name": "Synthetic Health Plan of Ohio",
            "reporting_entity_type": "health insurance issuer",
            "plan_name": "Synth Choice PPO",
            "plan_id_type": "ein",
            "plan_id": _ein(rng),
            "plan_market_type": "group",
            "last_updated_on": "2024-05-01",
            "version": cfg.version,
        }
        if self.v2:
            doc["issuer_name"] = "Synthetic Issuer Inc."
            doc["plan_sponsor_name"] = "Clínica Ñandú Employees"  # non-ASCII on purpose
        outside = self._unknown(doc)
        refs, ids = self._references() if cfg.refs_position != "none" else ([], [])
        for ref in refs:
            outside += self._unknown(ref)
            for group in ref.get("provider_groups", []):
                outside += self._unknown(group)
        self.inline_pool = [[self._group() for _ in range(1 + i % 2)] for i in range(3)]
        items = [self._item(ids) for _ in range(cfg.items)]
        if cfg.refs_position == "before":
            doc["provider_references"] = refs
        doc["in_network"] = items
        if cfg.refs_position == "after":
            doc["provider_references"] = refs
        if cfg.shuffle_keys:
            doc = _shuffle(doc, random.Random(cfg.seed ^ 0x5EED))
            if cfg.refs_position != "none":  # keep the requested order of the two arrays
                keys = [k for k in doc if k != "provider_references"]
                at = keys.index("in_network") + (cfg.refs_position == "after")
                keys.insert(at, "provider_references")
                doc = {k: doc[k] for k in keys}
        self.sf.document = doc
        self.sf.unknown_outside_items = outside
        return self.sf

    def _unknown(self, obj: dict[str, Json]) -> int:
        if not self.cfg.unknown_keys or self.rng.random() < 0.5:
            return 0
        name = self.rng.choice(_UNKNOWN_NAMES)
        obj[name] = self.rng.choice(_UNKNOWN_VALUES)
        self.sf.unknown_names.add(name)
        return 1

    def _group_id(self, i: int) -> Json:
        match self.cfg.id_style:
            case "int":
                return i + 1
            case "float":  # trailing zero is significant text: 690.64470 != 690.6447
                return RawNumber(f"{690 + i}.{self.rng.randrange(1000, 9999)}0")
            case _:
                return f"PG-{self.rng.randrange(16**6):06x}-{i}"

    def _references(self) -> tuple[list[dict[str, Json]], list[Json]]:
        cfg = self.cfg
        n = max(1, cfg.references)
        n_remote = min(cfg.remote_refs, n) if cfg.remote_base_url else 0
        n_locations = min(cfg.remote_locations or n_remote, n_remote)
        location_groups = [[self._group() for _ in range(1 + j % 2)] for j in range(n_locations)]
        base = (cfg.remote_base_url or "").rstrip("/")
        refs: list[dict[str, Json]] = []
        ids = [self._group_id(i) for i in range(n)]
        for i, gid in enumerate(ids):
            ref: dict[str, Json] = {"provider_group_id": gid}
            j = i - (n - n_remote)
            if j >= 0:
                url = f"{base}/provider-refs/group-{j % n_locations}.json"
                ref["location"] = url
                groups = location_groups[j % n_locations]
                self.sf.remote_files[url] = {"provider_groups": groups, "version": "1.0.0"}
            else:
                if self.v2:
                    ref["network_name"] = ["Synth Network", "Synth Plus"][: 1 + i % 2]
                size = 1 + i % 3
                if cfg.large_reference_groups and i == n // 2:
                    size = cfg.large_reference_groups
                ref["provider_groups"] = [self._group() for _ in range(size)]
            refs.append(ref)
        return refs, ids

    def _group(self) -> dict[str, Json]:
        rng = self.rng
        self.group_count += 1
        tin: dict[str, Json]
        npis: list[Json]
        if self.cfg.tin_only and self.group_count % 3 == 0:
            npis = [0] if self.group_count % 2 else []
            tin = {"type": "ein", "value": _ein(rng)}
        elif rng.random() < 0.25:
            npi = _npi(rng)
            npis, tin = [npi], {"type": "npi", "value": str(npi)}
        else:
            npis = [_npi(rng) for _ in range(rng.randint(1, 4))]
            tin = {"type": "ein", "value": _ein(rng)}
        if self.cfg.npi_strings and self.group_count % 2:
            npis = [str(n) if n else n for n in npis]
        if self.v2 and rng.random() < 0.7:
            tin["business_name"] = rng.choice(["Lakeside Orthopedics", "Ñ Medical Group LLC"])
        return {"npi": npis, "tin": tin}

    def _item(self, ids: list[Json]) -> dict[str, Json]:
        rng = self.rng
        code_type, version, code, name = rng.choice(_CODES)
        arrangement = "ffs"
        if self.cfg.arrangements and len(self.sf.unknown_per_item) % 3 == 1:
            arrangement = rng.choice(["bundle", "capitation"])
        item: dict[str, Json] = {
            "negotiation_arrangement": arrangement,
            "name": name,
            "billing_code_type": code_type,
            "billing_code_type_version": RawNumber(version) if rng.random() < 0.3 else version,
            "billing_code": code,
            "description": name,
        }
        if self.v2 and code_type == "MS-DRG":
            item["severity_of_illness"] = "major"
        unknown = self._unknown(item)
        rates = []
        count = rng.randint(1, 3)
        if self.cfg.large_item_rates and len(self.sf.unknown_per_item) == self.cfg.items // 2:
            count = self.cfg.large_item_rates
        for _ in range(count):
            rate, n = self._rate(ids)
            rates.append(rate)
            unknown += n
        item["negotiated_rates"] = rates
        if arrangement != "ffs":
            key = "bundled_codes" if arrangement == "bundle" else "covered_services"
            codes = [dict(zip(_CODE_KEYS, code, strict=True)) for code in rng.sample(_CODES, 2)]
            if len(self.sf.unknown_per_item) % 2:  # every other one: a code as some payers
                del codes[1]["description"]  # write it, which C leaves to Python
                codes[1]["billing_code_type_version"] = RawNumber(
                    str(codes[1]["billing_code_type_version"])
                )
            item[key] = codes
        self.sf.unknown_per_item.append(unknown)
        return item

    def _rate(self, ids: list[Json]) -> tuple[dict[str, Json], int]:
        cfg, rng = self.cfg, self.rng
        self.rate_count += 1
        kind = "refs"
        if not ids or cfg.inline_groups and self.rate_count % 5 == 1:
            kind = "inline"
        elif cfg.mixed_rates and self.rate_count % 5 == 3:
            kind = "both"
        rate: dict[str, Json] = {}
        if kind != "inline":
            refs = [ids[self.ref_use % len(ids)]]  # round robin: every id gets referenced
            self.ref_use += 1
            other = rng.choice(ids)
            if rng.random() < 0.4 and other not in refs:
                refs.append(other)
            if self.ref_use <= cfg.dangling_refs:
                refs.append(
                    9_000_000 + self.ref_use if cfg.id_style == "int" else f"missing-{self.ref_use}"
                )
            rate["provider_references"] = refs
        if kind != "refs":
            rate["provider_groups"] = self.inline_pool[self.rate_count % len(self.inline_pool)]
        unknown = self._unknown(rate)
        prices = []
        for _ in range(rng.randint(1, 3)):
            price = self._price()
            unknown += self._unknown(price)
            prices.append(price)
        rate["negotiated_prices"] = prices
        return rate, unknown

    def _price(self) -> dict[str, Json]:
        rng = self.rng
        cents = rng.randrange(500, 5_000_000)
        billing_class = rng.choice(["professional", "institutional"])
        price: dict[str, Json] = {
            "negotiated_type": rng.choice(_NEGOTIATED_TYPES),
            "negotiated_rate": RawNumber(f"{cents // 100}.{cents % 100:02d}"),
            "expiration_date": rng.choice(["9999-12-31", "2025-12-31"]),
            "billing_class": billing_class,
        }
        if self.v2:
            price["setting"] = rng.choice(["inpatient", "outpatient", "both"])
        if billing_class == "professional":
            price["service_code"] = rng.choice([["11", "22"], ["CSTM-00"], ["02", "10", "11"]])
        if rng.random() < 0.3:
            price["billing_code_modifier"] = rng.choice([["26"], ["TC", "59"]])
        if self.v2 and rng.random() < 0.2:
            price["additional_information"] = "Rate applies after 3rd visit"
        return price


def complete_npi(body: str) -> str:
    """The 10-digit NPI of a 9-digit body: body and its Luhn check digit, computed over the
    prefix 80840 as CMS specifies (``complete_npi("123456789") == "1234567893"``)."""
    total = 0
    for i, ch in enumerate(reversed("80840" + body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _npi(rng: random.Random) -> int:
    body = rng.choice("12") + "".join(rng.choice("0123456789") for _ in range(8))
    return int(complete_npi(body))


def _ein(rng: random.Random) -> str:
    return f"{rng.randrange(10, 99)}-{rng.randrange(1_000_000, 9_999_999)}"


def _shuffle(value: Json, rng: random.Random) -> Json:
    if isinstance(value, dict):
        pairs = list(value.items())
        rng.shuffle(pairs)
        return {k: _shuffle(v, rng) for k, v in pairs}
    if isinstance(value, list):
        return [_shuffle(v, rng) for v in value]
    return value


def parse_command(argv: list[str] | None = None) -> Any:
    """The command line of :func:`main`; `.config` is the SynthConfig it asks for."""
    import argparse
    from pathlib import Path

    p = argparse.ArgumentParser(
        prog="python -m tests.support.synth", description="Write one synthetic in-network file."
    )
    p.add_argument("out", type=Path, help="file to write; its container follows --container")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--references", type=int, default=12)
    p.add_argument("--refs-position", choices=["before", "after", "none"], default="before")
    p.add_argument("--container", choices=get_args(Container), default="gz")
    p.add_argument("--pretty", action="store_true")
    p.add_argument(
        "--variety",
        action="store_true",
        help="inline and mixed groups, bundles, TIN-only, string NPIs, float ids",
    )
    args = p.parse_args(argv)
    args.config = SynthConfig(
        seed=args.seed,
        items=args.items,
        references=args.references,
        refs_position=args.refs_position,
        id_style="float" if args.variety else "int",
        inline_groups=args.variety,
        mixed_rates=args.variety,
        arrangements=args.variety,
        tin_only=args.variety,
        npi_strings=args.variety,
    )
    return args


def main(argv: list[str] | None = None) -> int:
    """Write one synthetic file: ``python -m tests.support.synth OUT [--seed N ...]``."""
    args = parse_command(argv)
    data = pack(generate(args.config).to_bytes(pretty=args.pretty), args.container)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
