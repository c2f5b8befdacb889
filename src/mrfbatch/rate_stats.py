"""The statistics a report shows about the run's rates, computed by DuckDB over the `rates` view.

Every number here comes from a GROUP BY in SQL, so a run of millions of rate rows never
brings a rate row into Python: what comes back is one row per billing code, and one per
(code, network, billing class) for the codes that get a figure.

Codes are compared as `mrfbatch.whitelist.normalize_code` makes them (trimmed, upper case);
a billing code type and a code together name one code (CPT 0450 and RC 0450 are two).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

LOG_RATIO = 50.0  # a code whose highest rate is over 50 times its lowest is drawn on a log axis
TOP_CODES = 10  # codes shown when the run has no whitelist: those with the most rate rows

# One rate row, its code normalized; `percent` marks rates that are percents, not dollars.
_RATES = """
    SELECT coalesce(billing_code_type, '') AS code_type,
           upper(trim(coalesce(billing_code, ''))) AS code,
           coalesce(network_id, '') AS network_id, name, negotiated_rate AS rate,
           coalesce(billing_class, '') AS billing_class,
           coalesce(lower(trim(negotiated_type)) = 'percentage', false) AS percent
    FROM rates
"""


@dataclass(frozen=True)
class CodeSummary:
    """One billing code's rates over the whole run."""

    code_type: str
    code: str
    name: str | None  # the most common name (ties: the first in text order)
    rate_rows: int
    files: int  # distinct network ids with a rate for the code
    percentages: int  # rows whose negotiated_type is `percentage`
    without_rate: int  # dollar rows whose negotiated_rate is null (an invalid value)
    nonpositive: int  # dollar rates <= 0
    lowest: float | None  # the lowest and highest dollar rate above 0
    highest: float | None
    medians: tuple[tuple[str, float], ...]  # (billing class, median dollar rate), by class

    @property
    def dollar_rates(self) -> int:
        """Rows with a dollar rate: what a figure can show."""
        return self.rate_rows - self.percentages - self.without_rate

    @property
    def log_scale(self) -> bool:
        """True when the dollar rates above 0 span more than LOG_RATIO."""
        if self.lowest is None or self.highest is None:
            return False
        return self.highest > LOG_RATIO * self.lowest

    @property
    def left_out_of_figure(self) -> int:
        """Dollar rates a figure leaves out: those <= 0 when its axis is logarithmic."""
        return self.nonpositive if self.log_scale else 0


@dataclass(frozen=True)
class Box:
    """The rates of one code in one network and billing class: a box of a figure."""

    network_id: str
    billing_class: str  # '' when the rates have none
    count: int
    lowest: float
    p05: float
    q1: float
    median: float
    q3: float
    p95: float
    highest: float


def code_summaries(
    con: duckdb.DuckDBPyConnection, codes: Collection[str] | None, top: int = TOP_CODES
) -> list[CodeSummary]:
    """The summaries of the whitelisted `codes` that have rates, or of the `top` codes with
    the most rate rows when `codes` is None; most rate rows first (then type, code).

    `codes` are normalized already; a whitelisted code may appear under several types.
    """
    if codes is None:
        chosen = con.execute(
            f"""
            SELECT code_type, code FROM ({_RATES})
            GROUP BY ALL ORDER BY count(*) DESC, code_type, code LIMIT ?
            """,
            [top],
        ).fetchall()
        wanted = sorted({code for _, code in chosen})
        pairs = set(chosen)
    else:
        wanted = sorted(codes)
        pairs = None
    if not wanted:
        return []
    rows = con.execute(
        f"""
        WITH r AS (SELECT * FROM ({_RATES}) WHERE code IN (SELECT unnest(?::VARCHAR[]))),
        names AS (
            SELECT code_type, code, first(name ORDER BY n DESC, name) AS name
            FROM (SELECT code_type, code, name, count(*) AS n FROM r
                  WHERE name IS NOT NULL GROUP BY ALL)
            GROUP BY ALL
        ),
        medians AS (
            SELECT code_type, code,
                   list({{'cls': billing_class, 'median': median}} ORDER BY billing_class)
                       AS medians
            FROM (SELECT code_type, code, billing_class, quantile_cont(rate, 0.5) AS median
                  FROM r WHERE NOT percent AND rate IS NOT NULL GROUP BY ALL)
            GROUP BY ALL
        ),
        counts AS (
            SELECT code_type, code, count(*) AS rate_rows,
                   count(DISTINCT network_id) AS files,
                   count(*) FILTER (percent) AS percentages,
                   count(*) FILTER (NOT percent AND rate IS NULL) AS without_rate,
                   count(*) FILTER (NOT percent AND rate <= 0) AS nonpositive,
                   min(rate) FILTER (NOT percent AND rate > 0) AS lowest,
                   max(rate) FILTER (NOT percent AND rate > 0) AS highest
            FROM r GROUP BY ALL
        )
        SELECT c.code_type, c.code, n.name, c.rate_rows, c.files, c.percentages,
               c.without_rate, c.nonpositive, c.lowest, c.highest, m.medians
        FROM counts c
        LEFT JOIN names n USING (code_type, code)
        LEFT JOIN medians m USING (code_type, code)
        ORDER BY c.rate_rows DESC, c.code_type, c.code
        """,
        [wanted],
    ).fetchall()
    summaries = [_summary(row) for row in rows]
    if pairs is not None:
        summaries = [s for s in summaries if (s.code_type, s.code) in pairs]
    return summaries


def _summary(row: tuple[Any, ...]) -> CodeSummary:
    code_type, code, name, rate_rows, files, percentages, without, nonpositive = row[:8]
    lowest, highest, medians = row[8:]
    return CodeSummary(
        code_type=code_type,
        code=code,
        name=name,
        rate_rows=rate_rows,
        files=files,
        percentages=percentages,
        without_rate=without,
        nonpositive=nonpositive,
        lowest=lowest,
        highest=highest,
        medians=tuple((m["cls"], m["median"]) for m in medians or ()),
    )


def rate_boxes(
    con: duckdb.DuckDBPyConnection, summaries: Sequence[CodeSummary]
) -> dict[tuple[str, str], list[Box]]:
    """The boxes of each summary's figure, keyed by (code type, code): one per network and
    billing class with a dollar rate (above 0 when the code's axis is logarithmic); networks
    with the most rates first, then by id and class."""
    boxes: dict[tuple[str, str], list[Box]] = {(s.code_type, s.code): [] for s in summaries}
    if not summaries:
        return boxes
    rows = con.execute(
        f"""
        WITH want AS (
            SELECT unnest(?::VARCHAR[]) AS code_type, unnest(?::VARCHAR[]) AS code,
                   unnest(?::BOOLEAN[]) AS log_scale
        ),
        r AS (
            SELECT r.* FROM ({_RATES}) r JOIN want w USING (code_type, code)
            WHERE NOT r.percent AND r.rate IS NOT NULL AND (NOT w.log_scale OR r.rate > 0)
        ),
        groups AS (
            SELECT code_type, code, network_id, billing_class, count(*) AS n, min(rate) AS lo,
                   quantile_cont(rate, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q, max(rate) AS hi
            FROM r GROUP BY ALL
        )
        SELECT code_type, code, network_id, billing_class, n, lo, q, hi
        FROM groups
        ORDER BY code_type, code,
                 sum(n) OVER (PARTITION BY code_type, code, network_id) DESC,
                 network_id, billing_class
        """,
        [
            [s.code_type for s in summaries],
            [s.code for s in summaries],
            [s.log_scale for s in summaries],
        ],
    ).fetchall()
    for code_type, code, network_id, billing_class, n, lo, q, hi in rows:
        p05, q1, median, q3, p95 = q
        boxes[(code_type, code)].append(
            Box(network_id, billing_class, n, lo, p05, q1, median, q3, p95, hi)
        )
    return boxes
