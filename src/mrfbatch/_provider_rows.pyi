"""Types of the C extension mrfbatch._provider_rows (src/mrfbatch/_provider_rows.c)."""

from collections.abc import Sequence

NEED_MORE: int  # add_records stopped at a record not whole in the data given
FULL: int  # add_records stopped because `limit` rows are gathered

class Rows:
    """Provider rows of many group lists, gathered into Arrow buffers."""

    count: int  # rows gathered so far

    def add_text(self, text: bytes | bytearray | memoryview, group_id: str, /) -> bool:
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
