"""Deterministic, streaming generator of realistic in-network-rates files (CMS TiC schema 2.0).

The JSON text is written straight into a gzip stream, one negotiated rate at a time, from
pre-rendered fragments and cheap randomness (``random.Random(seed)`` over precomputed pools);
the document is never held in memory. About 1 GB of JSON takes 20-30 s on one core.

What the files look like (the "shape"):

- about 2,000 ``in_network`` items per GB (never fewer than 50), whose sizes follow a Pareto
  law: most items are a few hundred kB, a few are tens of MB at 1 GB;
- ``provider_references`` (100 per MB unless told otherwise) with 10-digit NPIs (valid check
  digit), EIN TINs ``"12-3456789"`` and business names; one id in ten is a float with a
  trailing zero (``"4207.13570"``), whose exact text must survive;
- CPT, HCPCS, RC and MS-DRG codes; prices with two decimals, expiration dates, service codes,
  sometimes a ``billing_code_modifier``; mostly ``ffs`` items, a few ``bundle`` items with
  ``bundled_codes`` and ``capitation`` items with ``covered_services``, whose nested codes
  include whitelisted ones (they must not make the item match);
- about 3 % of the items carry a code of :data:`WHITELIST` (50 codes, the same for every seed):
  one "popular code" item of 10 MB (5 % of smaller files), the others drawn among smaller
  items, so the heaviest matching item is the same at 200 MB and at 1 GB;
- payer quirks, on a small share of items: the billing code as a JSON number (``99213``) or
  with stray case/space (``"j1885"``, ``"99213 "``), which a whitelist still matches after
  trimming and upper-casing; ``negotiated_rates`` before ``billing_code``; ``bundled_codes``
  before the item's own ``billing_code``; TIN-only groups (``"type": "npi"``).

The generator counts what a correct extraction must report (:class:`Expected`): items seen
and matched, rate rows (one per negotiated price of a matched item), provider rows (one per
NPI of every group a written rate references) and rate rows per billing code.

Command line (writes the file, its ``.meta.json`` and prints the expectations)::

    python bench/generate.py --mb 20 --seed 1 --out /tmp/in-network.json.gz
    python bench/generate.py --mb 20 --refs after --indent 2 --crlf --out /tmp/pretty.json.gz
    python bench/generate.py --mb 200 --refs-per-mb 1000 --out /tmp/many-refs.json.gz
    python bench/generate.py --mb 60 --shape small-items --out /tmp/small-items.json.gz
    python bench/generate.py --mb 60 --no-quirks --int-ids --out /tmp/peer-readable.json.gz

``--shape small-items`` writes what most payer files look like instead: many small items, one
per line (compact JSON with a line break between items and between provider references), each
with one negotiated rate of exactly three provider references and 3 to 5 prices (4 on
average), every price with an ``additional_information``; all ``ffs``, no quirks, 3 % of the
items whitelisted. About 1,350 bytes per item: 44,000 items at 60 MB.

The expectations of both shapes also give the counts of an extraction with no whitelist
(``all_rate_rows``, ``all_provider_rows``). ``--int-ids`` writes every provider_group_id as an
integer (no ``"4207.13570"``), the form cms-mrf-extractor 0.1.2 reads; nothing else changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from jsontext import RawNumber, Sink, Style, open_gzip
from vocabulary import (
    BUSINESS,
    DESCRIPTIONS,
    MODIFIERS,
    NEGOTIATED_TYPES,
    NETWORKS,
    PLACES_OF_SERVICE,
    WHITELIST,
    npi_pool,
    other_code,
    weighted,
    whitelist_code,
)

# Bump when the output for given parameters changes, so cached files are regenerated.
GENERATOR_VERSION = 3
MB = 1_000_000

_ITEMS_PER_GB = 2000
_MIN_ITEMS = 50
_REFS_PER_MB = 100
_MATCH_SHARE = 0.03
_PARETO_ALPHA = 1.15
_MAX_ITEM_SHARE = 0.05  # no item above 5 % of the file
_POPULAR_ITEM_BYTES = 10 * MB  # the one big matching item (5 % of files under 200 MB)


@dataclass(frozen=True)
class Shape:
    """The generator's knobs; a file is a pure function of them (and of GENERATOR_VERSION)."""

    mb: float  # target size of the uncompressed JSON, in MB (10**6 bytes)
    seed: int = 1
    refs: Literal["before", "after"] = "before"  # provider_references before/after in_network
    indent: int = 0  # 0: compact, one line; N: pretty-printed with N spaces
    crlf: bool = False  # pretty-printed with \r\n line ends
    quirks: bool = True  # payer quirks (numeric / untidy billing codes, key order)
    refs_per_mb: int = _REFS_PER_MB  # provider_references per MB of JSON
    # "pareto" (the module docstring's shape) or "small-items" (many small items, one a line)
    items: Literal["pareto", "small-items"] = "pareto"
    # one provider_group_id in ten a float ("4207.13570"); False: integers only, which
    # cms-mrf-extractor 0.1.2 needs (it stops on a float id among integer ones)
    float_ids: bool = True

    def file_name(self) -> str:
        """A cache file name that spells out every knob."""
        style = (
            "compact" if self.indent == 0 else f"indent{self.indent}{'-crlf' if self.crlf else ''}"
        )
        quirks = "" if self.quirks else "-noquirks"
        refs = f"refs{self.refs}"
        if self.refs_per_mb != _REFS_PER_MB:
            refs += f"-{self.refs_per_mb}permb"
        items = "-smallitems" if self.items == "small-items" else ""
        ids = "" if self.float_ids else "-intids"
        return (
            f"in-network-{self.mb:g}mb-seed{self.seed}-{refs}-{style}{quirks}{items}{ids}.json.gz"
        )

    def as_meta(self) -> dict[str, Any]:
        """The knobs as stored in `.meta.json`; `items` and `float_ids` only when not the
        default, so the cached files written before they existed are still recognised."""
        knobs = dataclasses.asdict(self)
        if self.items == "pareto":
            del knobs["items"]
        if self.float_ids:
            del knobs["float_ids"]
        return knobs


@dataclass
class Expected:
    """What the generator wrote, and what a correct extraction with WHITELIST reports."""

    items: int = 0
    items_matched: int = 0
    rate_rows: int = 0
    provider_rows: int = 0
    provider_references: int = 0
    referenced_groups: int = 0
    json_bytes: int = 0
    gzip_bytes: int = 0
    largest_item_bytes: int = 0
    largest_matched_item_bytes: int = 0
    bundle_items: int = 0
    capitation_items: int = 0
    quirky_code_items: int = 0  # numeric or untidy billing codes
    rates_first_items: int = 0  # negotiated_rates before billing_code
    rate_rows_by_code: dict[str, int] = field(default_factory=dict)  # normalized code -> rows
    all_rate_rows: int = 0  # rate rows of an extraction with no whitelist
    all_provider_rows: int = 0  # its provider rows
    seconds: float = 0.0


@dataclass
class Generated:
    """A generated file on disk with its parameters and expectations."""

    path: Path
    shape: Shape
    expected: Expected


def _budgets(weights: list[float], total: int, cap: float) -> list[int]:
    """Split `total` bytes in proportion to `weights`, no share above `cap` (water-filling)."""
    capped: set[int] = set()
    while True:
        free = sum(w for i, w in enumerate(weights) if i not in capped)
        scale = (total - cap * len(capped)) / free
        over = {i for i, w in enumerate(weights) if i not in capped and w * scale > cap}
        if not over:
            return [
                int(cap) if i in capped else max(1, int(w * scale)) for i, w in enumerate(weights)
            ]
        capped |= over


# The generator


class _Document:
    """Writes one file of a given shape; see the module docstring for what is in it."""

    def __init__(self, shape: Shape):
        if shape.mb <= 0:
            raise ValueError(f"target size must be positive, got {shape.mb} MB")
        if shape.items == "small-items" and (shape.indent or not shape.quirks):
            raise ValueError("the small-items shape is compact, one item a line, no quirks knob")
        self.shape = shape
        self.style = Style(shape.indent, shape.crlf)
        self.target = int(shape.mb * MB)
        self.expected = Expected()
        rng = random.Random(f"pools-{shape.seed}")
        self.n_items = max(_MIN_ITEMS, round(_ITEMS_PER_GB * shape.mb / 1000))
        self.n_refs = max(20, round(shape.refs_per_mb * shape.mb))
        self.npis = npi_pool(rng, 20_000)
        self.id_texts = [
            f"{i + 1}.{rng.randrange(1000, 10000)}0" if rng.random() < 0.1 else str(i + 1)
            for i in range(self.n_refs)
        ]
        if not shape.float_ids:  # the same draws, so the rest of the file is unchanged
            self.id_texts = [str(i + 1) for i in range(self.n_refs)]
        self.provider_rows_of_ref: list[int] = [0] * self.n_refs
        self.referenced: set[int] = set()
        self.referenced_all: set[int] = set()  # by any item
        self._build_rate_pools(rng)
        self._build_reference_templates()

    # pools for the hot loop

    def _build_rate_pools(self, rng: random.Random) -> None:
        st = self.style
        types = weighted(NEGOTIATED_TYPES)
        dollars = [f"{rng.lognormvariate(5.0, 1.3):.2f}" for _ in range(1 << 14)]
        percents = [f"{rng.choice((60, 65, 70, 75, 80, 85, 90, 110, 120, 150))}.00"] * (1 << 14)
        templates: list[tuple[str, str, list[str]]] = []
        for _ in range(1 << 12):
            billing_class = "professional" if rng.random() < 0.65 else "institutional"
            negotiated_type = rng.choice(types)
            price: dict[str, Any] = {
                "negotiated_type": negotiated_type,
                "negotiated_rate": RawNumber("\x00"),
                "expiration_date": rng.choice(("9999-12-31",) * 8 + ("2025-12-31", "2026-06-30")),
            }
            if billing_class == "professional":
                price["service_code"] = sorted(rng.sample(PLACES_OF_SERVICE, rng.randint(1, 9)))
            price["billing_class"] = billing_class
            price["setting"] = rng.choice(("outpatient", "outpatient", "inpatient", "both"))
            if rng.random() < 0.15:
                price["billing_code_modifier"] = rng.choice(MODIFIERS)
            if rng.random() < 0.02:
                price["additional_information"] = "Rate applies when billed with modifier 25"
            prefix, suffix = st.render(price, 6).split("\x00")
            pool = percents if negotiated_type == "percentage" else dollars
            templates.append((prefix, suffix, pool))
        self.price_templates = templates
        # provider_references per rate: median 2-3, long tail; prices per rate: 1 to ~8
        # Real files repeat the same provider_references lists across many rates: draw them
        # from a pool (about one list per two groups), each list as (text, id indexes).
        self.ref_lists: list[tuple[str, tuple[int, ...]]] = []
        for _ in range(max(4096, self.n_refs // 2)):
            count = min(60, 1 + int(rng.lognormvariate(0.6, 0.9)))
            idx = tuple(sorted({rng.randrange(self.n_refs) for _ in range(count)}))
            self.ref_lists.append((st.comma.join(self.id_texts[i] for i in idx), idx))
        self.price_counts = [min(12, 1 + int(rng.expovariate(0.7))) for _ in range(4096)]
        pad = st.pad
        self.rate_open = "{" + pad(5) + '"provider_references"' + st.colon + "["
        self.rate_mid = "]," + pad(5) + '"negotiated_prices"' + st.colon + "[" + pad(6)
        self.price_sep = "," + pad(6)
        self.rate_close = pad(5) + "]" + pad(4) + "}"
        self.rate_sep = "," + pad(4)

    def _rate(self, rng: random.Random, matched: bool) -> tuple[str, int]:
        """One negotiated_rates entry at depth 4, and how many prices it has."""
        bits = rng.getrandbits
        ids, idx = self.ref_lists[int(rng.random() * len(self.ref_lists))]
        self.referenced_all.update(idx)
        if matched:
            self.referenced.update(idx)
        templates = self.price_templates
        prices = []
        for _ in range(self.price_counts[bits(12)]):
            prefix, suffix, pool = templates[bits(12)]
            prices.append(prefix + pool[bits(14)] + suffix)
        text = self.rate_open + ids + self.rate_mid + self.price_sep.join(prices) + self.rate_close
        return text, len(prices)

    # provider_references

    def _build_reference_templates(self) -> None:
        st = self.style
        pad, colon = st.pad, st.colon
        self.ref_open = "{" + pad(3) + '"provider_group_id"' + colon
        self.ref_names = "," + pad(3) + '"network_name"' + colon
        self.ref_groups = "," + pad(3) + '"provider_groups"' + colon + "[" + pad(4)
        self.ref_close = pad(3) + "]" + pad(2) + "}"
        self.group_sep = "," + pad(4)
        self.group_open = "{" + pad(5) + '"npi"' + colon + "["
        self.group_tin = "]," + pad(5) + '"tin"' + colon + "{" + pad(6) + '"type"' + colon
        self.tin_value = "," + pad(6) + '"value"' + colon
        self.tin_business = "," + pad(6) + '"business_name"' + colon
        self.group_close = pad(5) + "}" + pad(4) + "}"

    def _reference(self, rng: random.Random, i: int) -> tuple[str, int]:
        """The provider_references entry of id index `i` at depth 2, and its provider rows."""
        groups = []
        rows = 0
        npis = self.npis
        for _ in range(1 if rng.random() < 0.85 else rng.randint(2, 3)):
            if rng.random() < 0.02:  # TIN-only contract: the TIN is an NPI
                npi = npis[rng.randrange(len(npis))]
                tin = f'"npi"{self.tin_value}"{npi}"'
                rows += 1
                listed = [npi]
            else:
                k = min(500, 1 + int(rng.lognormvariate(1.3, 1.1)))
                start = rng.randrange(len(npis) - k)
                listed = npis[start : start + k]
                ein = f"{rng.randrange(10, 99)}-{rng.randrange(10**7):07d}"
                business = BUSINESS[rng.randrange(len(BUSINESS))]
                tin = f'"ein"{self.tin_value}"{ein}"{self.tin_business}"{business}"'
                rows += k
            groups.append(
                self.group_open
                + self.style.comma.join(listed)
                + self.group_tin
                + tin
                + self.group_close
            )
        text = self.ref_open + self.id_texts[i]
        if rng.random() < 0.7:
            text += self.ref_names + f'["{NETWORKS[rng.randrange(len(NETWORKS))]}"]'
        text += self.ref_groups + self.group_sep.join(groups) + self.ref_close
        return text, rows

    def _write_references(self, sink: Sink) -> None:
        rng = random.Random(f"refs-{self.shape.seed}")
        sep = "," + self.style.pad(2) if self.shape.items == "pareto" else ",\n"
        sink.write('"provider_references"' + self.style.colon + "[" + self.style.pad(2))
        for i in range(self.n_refs):
            text, self.provider_rows_of_ref[i] = self._reference(rng, i)
            sink.write(sep + text if i else text)
        sink.write(self.style.pad(1) + "]")
        self.expected.provider_references = self.n_refs

    def _reference_bytes_estimate(self) -> int:
        """Bytes provider_references will take (a sample, from a throwaway random state)."""
        rng = random.Random(f"estimate-{self.shape.seed}")
        sample = min(500, self.n_refs)
        size = sum(len(self._reference(rng, i)[0]) for i in range(sample))
        return int(size / sample * self.n_refs)

    # in_network

    def _plan_items(self, rng: random.Random, budget: int) -> list[dict[str, Any]]:
        """Every item's code, arrangement, key order and byte budget."""
        n = self.n_items
        excluded = set(WHITELIST)
        n_match = max(2, round(_MATCH_SHARE * n))
        order = list(range(n))
        rng.shuffle(order)
        # One matching item is "the popular code" of a fixed size; the other matching items are
        # drawn among smaller ones. So the heaviest item an extraction must decode is the same
        # in a 200 MB and a 1 GB file, and their peak RSS compares the engines, not the draw.
        popular = order[0]
        popular_bytes = int(min(_POPULAR_ITEM_BYTES, _MAX_ITEM_SHARE * self.target))
        others = _budgets(
            [rng.paretovariate(_PARETO_ALPHA) for _ in range(n - 1)],
            budget - popular_bytes,
            _MAX_ITEM_SHARE * budget,
        )
        budgets = others[:popular] + [popular_bytes] + others[popular:]
        smaller = [i for i in order[1:] if budgets[i] < popular_bytes]
        matching = [popular, *smaller[: n_match - 1]]
        matched = set(matching)
        rest = [i for i in order if i not in matched]
        bundles = rest[: max(2, round(0.015 * n))]
        capitations = rest[len(bundles) : len(bundles) + max(1, round(0.01 * n))]
        arrangement = dict.fromkeys(range(n), "ffs")
        arrangement.update(dict.fromkeys(bundles, "bundle"))
        arrangement.update(dict.fromkeys(capitations, "capitation"))
        if rng.random() < 0.5:  # sometimes a matching item is itself a bundle
            arrangement[matching[-1]] = "bundle"
        plans = []
        for i in range(n):
            if i in matched:
                code = rng.choice(WHITELIST)
                kind, version = whitelist_code(code)
            else:
                kind, version, code = other_code(rng, excluded)
            plan: dict[str, Any] = {
                "matched": i in matched,
                "code": code,
                "published": code,
                "kind": kind,
                "version": version,
                "arrangement": arrangement[i],
                "budget": budgets[i],
                "rates_first": self.shape.quirks and rng.random() < 0.10,
                "nested_first": self.shape.quirks and rng.random() < 0.5,
            }
            if self.shape.quirks:
                r = rng.random()
                if kind == "CPT" and r < 0.03:
                    plan["published"] = RawNumber(code)  # "billing_code": 99213
                elif r < 0.05:
                    plan["published"] = code.lower() if code[0].isalpha() else f"{code} "
            plans.append(plan)
        # make sure the quirks are exercised by matched items too, whatever the seed
        if self.shape.quirks:
            cpt = [i for i in matching[1:] if plans[i]["kind"] == "CPT"]
            if cpt:
                plans[cpt[0]]["published"] = RawNumber(plans[cpt[0]]["code"])
            untidy = matching[-1]
            plans[untidy]["published"] = f" {plans[untidy]['code'].lower()} "
            plans[untidy]["rates_first"] = True
        return plans

    def _nested_codes(self, rng: random.Random, count: int) -> list[dict[str, Any]]:
        """bundled_codes / covered_services entries, at least one of them whitelisted."""
        codes = [rng.choice(WHITELIST)] + [
            other_code(rng, set(WHITELIST))[2] for _ in range(count - 1)
        ]
        rng.shuffle(codes)
        out = []
        for code in codes:
            kind, version = whitelist_code(code)
            out.append(
                {
                    "billing_code_type": kind,
                    "billing_code_type_version": version,
                    "billing_code": code,
                    "description": rng.choice(DESCRIPTIONS),
                }
            )
        return out

    def _item_members(
        self, rng: random.Random, plan: dict[str, Any]
    ) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        """The item's members before and after negotiated_rates."""
        code_members: list[tuple[str, Any]] = [
            ("billing_code_type", plan["kind"]),
            ("billing_code_type_version", plan["version"]),
            ("billing_code", plan["published"]),
            ("description", rng.choice(DESCRIPTIONS)),
        ]
        nested: list[tuple[str, Any]] = []
        if plan["arrangement"] == "bundle":
            nested = [("bundled_codes", self._nested_codes(rng, rng.randint(2, 5)))]
        elif plan["arrangement"] == "capitation":
            nested = [("covered_services", self._nested_codes(rng, rng.randint(3, 8)))]
        head = [
            ("negotiation_arrangement", plan["arrangement"]),
            ("name", f"Service {plan['code']}"),
        ]
        if plan["nested_first"]:
            head += nested + code_members
            tail: list[tuple[str, Any]] = []
        else:
            head += code_members
            tail = nested
        if plan["rates_first"]:  # negotiated_rates first, every other key after it
            return [], head + tail
        return head, tail

    def _write_item(
        self, sink: Sink, rng: random.Random, plan: dict[str, Any], first: bool
    ) -> None:
        st = self.style
        exp = self.expected
        head, tail = self._item_members(rng, plan)
        text = ("," + st.pad(2) if not first else "") + "{"
        if head:
            text += st.members(head, 3) + ","
        text += st.pad(3) + '"negotiated_rates"' + st.colon + "[" + st.pad(4)
        size = len(text)
        sink.write(text, size)
        matched = plan["matched"]
        prices = 0
        budget = plan["budget"]
        n = 0
        while n == 0 or size < budget:
            rate, count = self._rate(rng, matched)
            if n:
                rate = self.rate_sep + rate
            sink.write(rate, len(rate))
            size += len(rate)
            prices += count
            n += 1
        text = st.pad(3) + "]"
        if tail:
            text += "," + st.members(tail, 3)
        text += st.pad(2) + "}"
        sink.write(text)
        size += len(text)
        exp.items += 1
        exp.all_rate_rows += prices
        exp.largest_item_bytes = max(exp.largest_item_bytes, size)
        exp.bundle_items += plan["arrangement"] == "bundle"
        exp.capitation_items += plan["arrangement"] == "capitation"
        exp.quirky_code_items += plan["published"] != plan["code"] or isinstance(
            plan["published"], RawNumber
        )
        exp.rates_first_items += plan["rates_first"]
        if matched:
            exp.items_matched += 1
            exp.rate_rows += prices
            exp.largest_matched_item_bytes = max(exp.largest_matched_item_bytes, size)
            by_code = exp.rate_rows_by_code
            by_code[plan["code"]] = by_code.get(plan["code"], 0) + prices

    def _write_in_network(self, sink: Sink, budget: int) -> None:
        if self.shape.items == "small-items":
            self._write_small_items(sink, budget)
            return
        rng = random.Random(f"items-{self.shape.seed}")
        st = self.style
        sink.write('"in_network"' + st.colon + "[" + st.pad(2))
        for i, plan in enumerate(self._plan_items(rng, budget)):
            self._write_item(sink, rng, plan, first=i == 0)
        sink.write(st.pad(1) + "]")

    # in_network of the small-items shape

    def _small_price_templates(self, rng: random.Random) -> list[tuple[str, str, list[str]]]:
        """Compact price texts around the rate, every one with additional_information."""
        dollars = [f"{rng.lognormvariate(4.0, 1.2):.2f}" for _ in range(1 << 14)]
        infos = (
            "Rate applies when billed with modifier 25",
            "Professional component only; technical component billed separately",
            "Includes all supplies and routine services on the date of service",
            "Applies to services rendered at a participating facility",
        )
        templates = []
        for _ in range(1 << 10):
            professional = rng.random() < 0.65
            price: dict[str, Any] = {
                "negotiated_type": rng.choice(("negotiated",) * 8 + ("fee schedule",) * 2),
                "negotiated_rate": RawNumber("\x00"),
                "expiration_date": "9999-12-31",
            }
            if professional:
                price["service_code"] = sorted(rng.sample(PLACES_OF_SERVICE, rng.randint(1, 4)))
            price["billing_class"] = "professional" if professional else "institutional"
            price["setting"] = rng.choice(("outpatient", "inpatient", "both"))
            if rng.random() < 0.2:
                price["billing_code_modifier"] = rng.choice(MODIFIERS)
            price["additional_information"] = rng.choice(infos)
            prefix, suffix = self.style.render(price, 0).split("\x00")
            templates.append((prefix, suffix, dollars))
        return templates

    def _write_small_items(self, sink: Sink, budget: int) -> None:
        """Items of one rate (three provider references, 3-5 prices) until `budget` bytes."""
        rng = random.Random(f"small-items-{self.shape.seed}")
        templates = self._small_price_templates(rng)
        exp = self.expected
        excluded = set(WHITELIST)
        sink.write('"in_network":[\n')
        size = 0
        while size < budget or exp.items == 0:
            matched = rng.random() < _MATCH_SHARE
            if matched:
                code = rng.choice(WHITELIST)
                kind, version = whitelist_code(code)
            else:
                kind, version, code = other_code(rng, excluded)
            idx = sorted(rng.sample(range(self.n_refs), 3))
            self.referenced_all.update(idx)
            prices = []
            for _ in range(rng.randint(3, 5)):
                prefix, suffix, pool = templates[rng.getrandbits(10)]
                prices.append(prefix + pool[rng.getrandbits(14)] + suffix)
            text = (",\n" if exp.items else "") + self.style.render(
                {
                    "negotiation_arrangement": "ffs",
                    "name": f"Service {code}",
                    "billing_code_type": kind,
                    "billing_code_type_version": version,
                    "billing_code": code,
                    "description": rng.choice(DESCRIPTIONS),
                    "negotiated_rates": [RawNumber("\x00")],
                },
                0,
            ).replace(
                "\x00",
                '{"provider_references":['
                + ",".join(self.id_texts[i] for i in idx)
                + '],"negotiated_prices":['
                + ",".join(prices)
                + "]}",
            )
            sink.write(text)
            size += len(text)
            exp.items += 1
            exp.all_rate_rows += len(prices)
            exp.largest_item_bytes = max(exp.largest_item_bytes, len(text))
            if matched:
                self.referenced.update(idx)
                exp.items_matched += 1
                exp.rate_rows += len(prices)
                exp.largest_matched_item_bytes = max(exp.largest_matched_item_bytes, len(text))
                exp.rate_rows_by_code[code] = exp.rate_rows_by_code.get(code, 0) + len(prices)
        sink.write("\n]")

    # the whole file

    def write(self, raw: IO[bytes]) -> Expected:
        st = self.style
        sink = Sink(raw)
        header = {
            "reporting_entity_name": "Synthetic Health Plan Inc.",
            "reporting_entity_type": "health insurance issuer",
            "plan_name": "Synthetic Choice PPO",
            "plan_id_type": "hios",
            "plan_id": f"{12000 + self.shape.seed % 1000}VA0010001",
            "plan_market_type": "group",
            "issuer_name": "Synthetic Health Plan Inc.",
            "last_updated_on": "2025-01-01",
            "version": "2.0.0",
        }
        sink.write("{" + st.members(list(header.items()), 1) + "," + st.pad(1))
        if self.shape.refs == "before":
            self._write_references(sink)
            sink.write("," + st.pad(1))
            sink.flush()
            self._write_in_network(sink, self.target - sink.written - 10)
        else:
            refs = self._reference_bytes_estimate()
            sink.flush()
            self._write_in_network(sink, self.target - sink.written - refs - 10)
            sink.write("," + st.pad(1))
            self._write_references(sink)
        sink.write(st.pad(0) + "}" + st.nl)
        sink.flush()
        exp = self.expected
        exp.json_bytes = sink.written
        exp.referenced_groups = len(self.referenced)
        exp.provider_rows = sum(self.provider_rows_of_ref[i] for i in self.referenced)
        exp.all_provider_rows = sum(self.provider_rows_of_ref[i] for i in self.referenced_all)
        exp.rate_rows_by_code = dict(sorted(exp.rate_rows_by_code.items()))
        return exp


def generate(shape: Shape, path: Path) -> Expected:
    """Write the file of `shape` to `path` (atomically) and return what it contains."""
    started = time.monotonic()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open_gzip(tmp) as raw:
            expected = _Document(shape).write(raw)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    expected.gzip_bytes = path.stat().st_size
    expected.seconds = round(time.monotonic() - started, 2)
    return expected


def write_whitelist(path: Path) -> Path:
    """Write WHITELIST to `path`, one code per line (the format --cpt-whitelist reads)."""
    lines = ["# mrfbatch benchmark whitelist (bench/generate.py WHITELIST)", *WHITELIST]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ensure(shape: Shape, data_dir: Path, log: Callable[[str], None] = lambda _: None) -> Generated:
    """The file of `shape` in `data_dir`: reused when its `.meta.json` matches, else generated."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / shape.file_name()
    meta_path = path.with_name(path.name + ".meta.json")
    wanted = {"generator_version": GENERATOR_VERSION, "shape": shape.as_meta()}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        same = {k: meta.get(k) for k in wanted} == wanted
        if same and meta["expected"]["gzip_bytes"] == path.stat().st_size:
            return Generated(path, shape, Expected(**meta["expected"]))
    log(f"generating {path.name} ({shape.mb:g} MB of JSON) ...")
    expected = generate(shape, path)
    log(
        f"  {expected.json_bytes / MB:,.1f} MB JSON, {expected.gzip_bytes / MB:,.1f} MB gzip, "
        f"{expected.items:,} items, {expected.items_matched} matched, {expected.seconds:.1f} s"
    )
    _write_meta(meta_path, {**wanted, "expected": dataclasses.asdict(expected)})
    return Generated(path, shape, expected)


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=20, help="target MB of uncompressed JSON")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--refs", choices=("before", "after"), default="before")
    p.add_argument("--indent", type=int, default=0, help="0: compact; N: pretty, N spaces")
    p.add_argument("--crlf", action="store_true", help="\\r\\n line ends (with --indent)")
    p.add_argument("--no-quirks", action="store_true", help="no untidy codes or key orders")
    p.add_argument(
        "--refs-per-mb", type=int, default=_REFS_PER_MB, help="provider_references per MB"
    )
    p.add_argument(
        "--shape",
        choices=("pareto", "small-items"),
        default="pareto",
        help="pareto: few large items (the default); small-items: many small ones, one a line",
    )
    p.add_argument(
        "--int-ids", action="store_true", help="integer provider_group_ids only (no floats)"
    )
    p.add_argument("--out", type=Path, required=True, help="the .json.gz to write")
    p.add_argument("--whitelist", type=Path, help="also write the whitelist here")
    args = p.parse_args(argv)
    if args.crlf and not args.indent:
        p.error("--crlf needs --indent (a compact file has no line breaks)")
    if args.refs_per_mb < 1:
        p.error("--refs-per-mb must be at least 1")
    shape = Shape(
        args.mb,
        args.seed,
        args.refs,
        args.indent,
        args.crlf,
        not args.no_quirks,
        args.refs_per_mb,
        args.shape,
        not args.int_ids,
    )
    expected = generate(shape, args.out)
    meta = {"generator_version": GENERATOR_VERSION, "shape": shape.as_meta()}
    _write_meta(
        args.out.with_name(args.out.name + ".meta.json"),
        {**meta, "expected": dataclasses.asdict(expected)},
    )
    if args.whitelist:
        write_whitelist(args.whitelist)
    json.dump(dataclasses.asdict(expected), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
