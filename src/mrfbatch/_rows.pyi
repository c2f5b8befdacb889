"""Types of the C extension mrfbatch._rows (src/mrfbatch/_rows.c)."""

from collections.abc import Sequence

NEED_MORE: int  # add_records stopped at a record not whole in the data given
FULL: int  # add_records stopped because `limit` rows are gathered

Buffer = bytes | bytearray | memoryview
# A bundled or covered code: billing_code_type, billing_code_type_version, billing_code and
# description, in this order, to their text or None (mrfbatch.tables.Code).
Code = dict[str, str | None]

def spill_references(
    text: Buffer,
    found: list[tuple[int, int, int, int, int]],
    at: int,
    only: set[str] | None,
    out: bytearray,
    limit: int,
    /,
) -> tuple[int, int]:
    """Spill-file records of the plain entries found[at:], appended to `out` until one that is
    not plain, has an id Python must decode, or `out` holds `limit` bytes: (where it stopped,
    whether a record it wrote may name a location)."""

class ProviderRows:
    """Provider rows of many group lists, gathered into Arrow buffers."""

    count: int  # rows gathered so far

    def add_text(self, text: Buffer, group_id: str, /) -> bool:
        """The rows of one provider_references entry of the usual shape, from its JSON text;
        False (nothing added) when it is not of that shape."""

    def add_groups(
        self,
        groups: Sequence[tuple[Sequence[int], str | None, str | None, str | None]],
        network_name: Sequence[str] | None,
        group_id: str,
        source: str,
        /,
    ) -> None:
        """The rows of groups decoded in Python."""

    def add_records(
        self, data: bytes, at: int, end: int, keys: set[str], defined: set[str], limit: int, /
    ) -> tuple[int, int]:
        """`add_text` for spill-file records from data[at]: (where it stopped, why: NEED_MORE,
        FULL, or the kind of the record there, which Python must read)."""

    def take(
        self,
    ) -> tuple[tuple[int, int, int, int], tuple[bytes, ...], list[str], list[str]]:
        """((rows, groups, lists, names), 16 buffers, group ids, sources): see the C source;
        starts afresh."""

ItemHead = tuple[
    str | None,  # negotiation_arrangement
    str | None,  # name
    str | None,  # billing_code_type
    str | None,  # billing_code_type_version
    str | None,  # description
    str | None,  # severity_of_illness
    str | int | None,  # billing_code
    list[Code] | None,  # bundled_codes
    list[Code] | None,  # covered_services
    int,  # where the rates start (just after negotiated_rates' `[`), or -1
]

class RateRows:
    """Rate rows of matched items, gathered into Arrow buffers."""

    count: int  # rows gathered so far

    def item_head(self, text: Buffer, /) -> ItemHead | None:
        """An item's own values, every rate checked; None when it is not of the usual shape."""

    def add_items(
        self,
        text: Buffer,
        found: list[tuple[int, int, int, int, int]],
        at: int,
        limit: int,
        referenced: set[str],
        codes: list[tuple[int, int, object, object]],
        /,
    ) -> tuple[int, int, ItemHead | None]:
        """The rows of the items text[start:end] of found[at:] of the usual shape, until
        `limit` rows are gathered, each with its item's own texts; appends (first row, end
        row, bundled_codes, covered_services) to `codes` for each item with rows and either
        list: (i, resume, head). resume -1: the items before i are read, and item i (if any)
        is not of the usual shape unless `limit` rows are gathered; else `limit` rows were
        gathered inside item i, whose rates go on at `resume`, and head is its `item_head`."""

    def add_rates(
        self,
        text: Buffer,
        at: int,
        limit: int,
        referenced: set[str],
        item: tuple[str | None, ...],
        /,
    ) -> tuple[int, bool]:
        """The rows of the rates from `at`, at least `limit` unless they end first, each with
        the item's own texts `item` (billing_code_type, its version, billing_code,
        negotiation_arrangement, name, description, severity_of_illness): (where the next
        rate starts, whether they ended)."""

    def take(self) -> tuple[tuple[int, int, int, int, int], tuple[bytes, ...]]:
        """((rows, rates, service codes, modifiers, ids), 50 buffers): see the C source;
        starts afresh."""
