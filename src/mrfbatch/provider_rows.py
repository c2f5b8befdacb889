"""Provider rows: the groups of a provider_references entry as rows of the providers table.

`ProviderRows` gathers rows in C (mrfbatch._rows) into Arrow buffers: from an entry's JSON text
when it has the usual shape (`add_records`, over the provider store's spill records, or
`add_text`), else from the groups Python read off it (`read_reference`, then `add`), which
converts and counts what the schema does not expect. Both ways give the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from mrfbatch import _rows
from mrfbatch.tables import (
    PROVIDERS_SCHEMA,
    REFERENCE_KEYS,
    Group,
    Quality,
    parse_groups,
    repeat,
    take,
    text_list,
)

NETWORK_NAMES = PROVIDERS_SCHEMA.field("network_name").type
_NO_NPI = (0,)
_DECODE = msgspec.json.Decoder(float_hook=Decimal)

_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


# The usual shape of a provider reference, decoded without a call per value. Anything else
# (an unknown key, a number where text belongs, a fraction as NPI, a missing tin) fails to
# validate and goes through `_decoded`, which converts and counts it.
class _Tin(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    type: str | None = None
    value: str | None = None
    business_name: str | None = None


class _Group(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    tin: _Tin
    npi: list[_Int64] | None = None


class _Reference(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    provider_group_id: msgspec.Raw = msgspec.Raw()  # the key comes with the entry
    provider_groups: list[_Group] | msgspec.UnsetType = msgspec.UNSET
    network_name: list[str] | None = None
    location: str | None = None


_TYPED = msgspec.json.Decoder(_Reference)

# What one provider_references entry stands for: (source, network_name, groups, location);
# `groups` is None for a `remote` entry, whose groups are fetched from `location`.
Reference = tuple[str, list[str] | None, Sequence[Group] | None, str | None]


class ProviderRows:
    """Provider rows of many group lists, gathered in C until taken as a record batch.

    Arrow repeats a group's TIN for each of its NPIs, and a list's id, network names and source
    for each of its rows.
    """

    def __init__(self, network_id: str):
        self.network_id = network_id
        self._c = _rows.ProviderRows()

    @property
    def count(self) -> int:
        """Rows gathered so far."""
        return self._c.count

    def add(
        self,
        group_id: str,
        groups: Sequence[Group],
        network_name: list[str] | None,
        source: str,
    ) -> None:
        """One row per (group, NPI) of one group list read in Python."""
        self._c.add_groups(groups, network_name, group_id, source)

    def add_text(self, group_id: str, text: bytes | memoryview) -> bool:
        """The rows of an entry's JSON text if it has the usual shape (what `read_reference`
        reads without counting anything); else False, and nothing is added."""
        return self._c.add_text(text, group_id)

    def add_records(
        self, data: bytes, at: int, end: int, keys: set[str], defined: set[str], limit: int
    ) -> tuple[int, bool]:
        """`add_text` for the spill records in data[at:end] whose key is in `keys`, adding
        their keys to `defined`, up to the first it cannot take, one not whole in data[:end],
        or `limit` rows: (the offset of that record, whether `limit` rows are gathered)."""
        at, why = self._c.add_records(data, at, end, keys, defined, limit)
        return at, why == _rows.FULL

    def take(self) -> pa.RecordBatch:
        """The rows gathered so far, as a record batch of PROVIDERS_SCHEMA; starts afresh."""
        (n, groups, lists, names), data, group_ids, sources = self._c.take()
        npi, row_group, group_list, *buffers = map(pa.py_buffer, data)
        tins = [pa.Array.from_buffers(pa.string(), groups, buffers[i : i + 3]) for i in (0, 3, 6)]
        list_valid, list_offsets, name_offsets, name_data = buffers[9:]
        network_names = pa.Array.from_buffers(
            NETWORK_NAMES,
            lists,
            [list_valid, list_offsets],
            children=[pa.Array.from_buffers(pa.string(), names, [None, name_offsets, name_data])],
        )
        return provider_batch(
            self.network_id,
            pa.Array.from_buffers(pa.int64(), n, [None, npi]),
            pa.Array.from_buffers(pa.int32(), n, [None, row_group]),
            pa.Array.from_buffers(pa.int32(), groups, [None, group_list]),
            tins,
            [pa.array(group_ids, pa.string()), network_names, pa.array(sources, pa.string())],
        )


def provider_batch(
    network_id: str,
    npi: pa.Array,
    group_of_row: pa.Array,
    list_of_group: pa.Array,
    per_group: Sequence[pa.Array],
    per_list: Sequence[pa.Array],
) -> pa.RecordBatch:
    """A record batch of PROVIDERS_SCHEMA from one NPI per row, the group of each row and the
    list of each group: per group its tin_type, tin_value and business_name; per list its
    provider_group_id, network_name and source. Arrow repeats them for their rows."""
    list_of_row = take(list_of_group, group_of_row)
    group_id, network_name, source = (take(values, list_of_row) for values in per_list)
    tins = (take(values, group_of_row) for values in per_group)
    arrays = [repeat(network_id, pa.string(), len(npi)), group_id, npi, *tins, network_name, source]
    return pa.RecordBatch.from_arrays(arrays, schema=PROVIDERS_SCHEMA)


def read_reference(raw: bytes | memoryview, quality: Quality) -> Reference:
    """What one provider_references entry's JSON text stands for, read in Python; only an
    entry of an unusual shape is decoded generically (and what it holds counted)."""
    try:
        ref = _TYPED.decode(raw)
    except msgspec.ValidationError:
        return _decoded(_DECODE.decode(raw), quality)
    groups = ref.provider_groups
    if groups is msgspec.UNSET:
        if ref.location is not None:
            return "remote", ref.network_name, None, ref.location
        return "file", ref.network_name, [], None
    # NPIs stay the decoded list (Group says tuple): rows only iterate over them.
    usual = [(g.npi or _NO_NPI, (t := g.tin).type, t.value, t.business_name) for g in groups]
    return "file", ref.network_name, usual, None  # type: ignore[return-value]


def _decoded(ref: Mapping[str, Any], quality: Quality) -> Reference:
    """What one decoded reference stands for, counting what the schema does not expect."""
    q = quality
    q.check_keys(ref, REFERENCE_KEYS, "provider_references")
    names = text_list(ref.get("network_name"), q, "network_name")
    location = ref.get("location")
    if "provider_groups" in ref or not isinstance(location, str):
        if location is not None and not isinstance(location, str):
            q.invalid(f"provider_references.location: expected a URL, found {location!r:.40}")
        return "file", names, parse_groups(ref.get("provider_groups"), q), None
    return "remote", names, None, location
