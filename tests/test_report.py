"""The run report (mrfbatch.report, with rate_stats and figures): what the page and the SVGs say.

The `rates` view is built from tables written here: the real extraction of the bundled
examples, or literal rows written to Parquet with the extraction's own schema. Expected values
come from those rows, counted by hand or by plain Python over them.
"""

from __future__ import annotations

import logging
import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrfbatch import report
from mrfbatch.rate_stats import code_summaries, rate_boxes
from mrfbatch.report import write_report
from mrfbatch.run_extraction import run_extraction
from mrfbatch.tables import RATES_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "alpha": ROOT / "examples" / "in-network-sample.json.gz",
    "beta": ROOT / "examples" / "behavioral-sample.zip",
}
MANIFEST = {
    "extraction_run": "2025-03-01T12:00:00+00:00",
    "source_type": "csv",
    "source_input": "examples/plans.csv",
    "output_dir": "results",
    "total_tasks": 2,
}
FILES_COLUMNS = """
    network_id VARCHAR, url VARCHAR, status VARCHAR, error VARCHAR, retryable BOOLEAN,
    incomplete VARCHAR[], warnings VARCHAR[], plans BIGINT, duration_seconds DOUBLE,
    bytes_read BIGINT, bytes_decoded BIGINT, retries BIGINT, resumes BIGINT, restarts BIGINT,
    items_seen BIGINT, items_matched BIGINT, rate_rows BIGINT, provider_rows BIGINT,
    unresolved_references BIGINT, remote_references_failed BIGINT, log_file VARCHAR
"""


@pytest.fixture(scope="module")
def example_tables(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The rates tables of both bundled examples, extracted without a whitelist."""
    out = tmp_path_factory.mktemp("extracted")
    logging.disable(logging.CRITICAL)
    try:
        for network_id, path in EXAMPLES.items():
            result = run_extraction(str(path), out, network_id=network_id)
            assert result.status == "success"
    finally:
        logging.disable(logging.NOTSET)
    return [out / name / "rates.parquet" for name in EXAMPLES]


def example_rows(tables: Sequence[Path]) -> list[dict[str, Any]]:
    return [row for table in tables for row in pq.read_table(table).to_pylist()]


def file_row(network_id: str, status: str = "success", **values: Any) -> dict[str, Any]:
    row = {"network_id": network_id, "url": f"https://example.test/{network_id}.json.gz"}
    row.update(status=status, incomplete=[], warnings=[], plans=1, duration_seconds=2.5)
    row.update(bytes_read=1_000_000, rate_rows=10, provider_rows=5, log_file=f"{network_id}.log")
    row.update(values)
    return row


def connect(
    rate_tables: Sequence[Path], files: Sequence[dict[str, Any]] | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with the views write_report reads: `rates` over the tables, `files`."""
    con = duckdb.connect()
    listed = ", ".join(f"'{path}'" for path in rate_tables)
    con.execute(f"CREATE VIEW rates AS SELECT * FROM read_parquet([{listed}])")
    con.execute(f"CREATE TABLE files ({FILES_COLUMNS})")
    names = [line.split()[0] for line in FILES_COLUMNS.replace("\n", " ").split(",")]
    for row in files if files is not None else [file_row(n) for n in EXAMPLES]:
        con.execute(
            f"INSERT INTO files VALUES ({', '.join('?' * len(names))})",
            [row.get(name) for name in names],
        )
    return con


def rate(network: str, code: str, value: float | None, **fields: Any) -> dict[str, Any]:
    """A rate row: CPT, professional, negotiated, unless `fields` say otherwise."""
    row = {
        "network_id": network,
        "billing_code_type": "CPT",
        "billing_code": code,
        "name": f"Procedure {code}",
        "negotiated_type": "negotiated",
        "negotiated_rate": value,
        "billing_class": "professional",
    }
    row.update(fields)
    return row


def rate_table(tmp_path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path = tmp_path / "rates.parquet"
    pq.write_table(pa.Table.from_pylist(list(rows), schema=RATES_SCHEMA), path)
    return path


def make_report(
    tmp_path: Path,
    con: duckdb.DuckDBPyConnection,
    codes: list[str] | None,
    name: str = "out",
) -> tuple[str, list[Path]]:
    svgs = write_report(con, MANIFEST, codes, tmp_path / name / "report.html", tmp_path / name)
    return (tmp_path / name / "report.html").read_text(encoding="utf-8"), svgs


def svg_texts(svg: str) -> list[str]:
    """The texts drawn in a figure: matplotlib writes each beside its glyphs as a comment."""
    return re.findall(r"<!-- (.*?) -->", svg)


def figure_captions(page: str) -> dict[str, str]:
    return dict(
        re.findall(r'<figure id="fig-([^"]+)".*?<figcaption>(.*?)</figcaption>', page, re.S)
    )


def test_write_report_draws_whitelisted_codes_and_says_which_have_no_rates(
    tmp_path: Path, example_tables: list[Path]
) -> None:
    con = connect(example_tables)
    page, svgs = make_report(tmp_path, con, ["27447", "99213", "J1885", "00000"])

    assert sorted(p.name for p in svgs) == ["cpt-27447.svg", "cpt-99213.svg", "hcpcs-j1885.svg"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.svg")) == sorted(p.name for p in svgs)
    assert re.search(r'<td class="code">00000</td>\s*<td[^>]*>no rates found</td>', page)
    assert "3 have rates, 1 has none" in page
    assert page.count("<figure ") == 3
    # Every box's count is printed on its figure, as counted here from the rows.
    counts: Counter[tuple[str, str, str]] = Counter(
        (row["billing_code"], row["network_id"], row["billing_class"])
        for row in example_rows(example_tables)
        if row["billing_code"] in {"27447", "99213", "J1885"}
    )
    for path in svgs:
        code = path.stem.split("-")[1].upper()
        expected = sorted(str(n) for (c, _, _), n in counts.items() if c == code)
        drawn = [t for t in svg_texts(path.read_text()) if t.isdigit()]
        assert sorted(drawn) == expected
        svg = path.read_text()
        assert svg[svg.index("<svg") :].rstrip() in page


def test_rate_boxes_match_the_rows_counted_and_quantiles_computed_here(
    example_tables: list[Path],
) -> None:
    con = connect(example_tables)
    rows = [r for r in example_rows(example_tables) if r["billing_code"] == "27447"]
    by_box: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        by_box[(row["network_id"], row["billing_class"])].append(row["negotiated_rate"])

    (summary,) = code_summaries(con, ["27447"])
    boxes = rate_boxes(con, [summary])[("CPT", "27447")]

    assert summary.rate_rows == len(rows)
    assert summary.files == len({r["network_id"] for r in rows})
    assert {(b.network_id, b.billing_class): b.count for b in boxes} == {
        k: len(v) for k, v in by_box.items()
    }
    for box in boxes:
        values = sorted(by_box[(box.network_id, box.billing_class)])
        assert box.median == pytest.approx(statistics.median(values))
        assert (box.lowest, box.highest) == (values[0], values[-1])
        if len(values) > 1:  # statistics' "inclusive" method is the linear interpolation
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
            assert (box.q1, box.q3) == (pytest.approx(q1), pytest.approx(q3))
    # Networks with the most rates first.
    totals = Counter(r["network_id"] for r in rows)
    order = [b.network_id for b in boxes]
    assert sorted(set(order), key=order.index) == [n for n, _ in totals.most_common()]


def test_write_report_without_whitelist_shows_the_ten_codes_with_most_rate_rows(
    tmp_path: Path, example_tables: list[Path]
) -> None:
    counted = Counter(
        (r["billing_code_type"], r["billing_code"]) for r in example_rows(example_tables)
    )
    top = counted.most_common()
    assert top[9][1] > top[10][1]  # the fixture has no tie at the cut
    expected = sorted(f"{t}-{c}".lower() + ".svg" for (t, c), _ in top[:10])

    page, svgs = make_report(tmp_path, connect(example_tables), None)

    assert sorted(p.name for p in svgs) == expected
    assert "no whitelist" in page
    assert page.count("<figure ") == 10


def test_write_report_leaves_percentages_out_of_the_figure_and_counts_them(
    tmp_path: Path,
) -> None:
    rows = [rate("net-a", "99213", v) for v in (80.0, 90.0, 100.0, 110.0)]
    rows += [rate("net-a", "99213", v, negotiated_type="percentage") for v in (65.0, 70.0, 75.0)]
    page, svgs = make_report(tmp_path, connect([rate_table(tmp_path, rows)], []), ["99213"])

    (svg,) = svgs
    assert [t for t in svg_texts(svg.read_text()) if t.isdigit()] == ["4"]
    caption = figure_captions(page)["cpt-99213"]
    assert caption.startswith("4 dollar rates from 1 network.")
    assert "3 percentage rates (percents, not dollars)" in caption
    # The median is of the dollar rates: (90 + 100) / 2.
    assert "professional $95.00" in page


def test_write_report_uses_a_log_axis_only_where_rates_span_orders_of_magnitude(
    tmp_path: Path,
) -> None:
    wide = [rate("net-a", "11111", v) for v in (2.0, 20.0, 200.0, 2000.0)]  # 3 decades
    wide += [rate("net-a", "11111", v) for v in (0.0, -5.0)]  # not on a log axis
    narrow = [rate("net-a", "22222", v) for v in (100.0, 150.0, 290.0)]  # within a factor 3
    con = connect([rate_table(tmp_path, wide + narrow)], [])
    page, svgs = make_report(tmp_path, con, ["11111", "22222"])

    texts = {p.stem: svg_texts(p.read_text()) for p in svgs}
    assert "negotiated rate, US dollars (log scale)" in texts["cpt-11111"]
    assert "negotiated rate, US dollars" in texts["cpt-22222"]
    assert "negotiated rate, US dollars (log scale)" not in texts["cpt-22222"]
    captions = figure_captions(page)
    assert "Log scale: the highest rate is 1,000 times the lowest" in captions["cpt-11111"]
    assert "2 rates of $0 or less" in captions["cpt-11111"]
    assert captions["cpt-11111"].startswith("4 dollar rates")
    assert "Log scale" not in captions["cpt-22222"]
    assert captions["cpt-22222"].startswith("3 dollar rates")


def test_write_report_caps_the_networks_of_a_figure_and_says_how_many_are_left_out(
    tmp_path: Path,
) -> None:
    # Network n00 has 1 rate, n01 has 2, ... n34 has 35: the 30 shown are n05 to n34.
    rows = [rate(f"n{i:02d}", "27447", 100.0 + j) for i in range(35) for j in range(i + 1)]
    page, svgs = make_report(tmp_path, connect([rate_table(tmp_path, rows)], []), ["27447"])

    texts = svg_texts(svgs[0].read_text())
    assert [t for t in texts if re.fullmatch(r"n\d\d", t)] == [
        f"n{i:02d}" for i in range(34, 4, -1)
    ]
    assert sorted(int(t) for t in texts if t.isdigit()) == list(range(6, 36))
    caption = figure_captions(page)["cpt-27447"]
    assert "5 more networks with 15 rates (the figure shows the 30 with the most)" in caption


def test_write_report_draws_billing_classes_apart_with_a_legend(tmp_path: Path) -> None:
    rows = [rate("net-a", "27447", v) for v in (900.0, 1000.0)]
    rows += [rate("net-a", "27447", v, billing_class="institutional") for v in (9e3, 1e4, 2e4)]
    _, (svg,) = make_report(tmp_path, connect([rate_table(tmp_path, rows)], []), ["27447"])

    text = svg.read_text()
    assert {"professional", "institutional"} <= set(svg_texts(text))
    assert "#0072b2" in text.lower() and "#d55e00" in text.lower()
    assert sorted(t for t in svg_texts(text) if t.isdigit()) == ["2", "3"]


def test_write_report_lists_failed_and_incomplete_files_with_their_reason(
    tmp_path: Path, example_tables: list[Path]
) -> None:
    files = [
        file_row("alpha"),
        file_row("gone", "failed", error="HTTP 404 Not Found for /gone.json", retryable=False),
        file_row("flaky", "failed", error="connection reset by peer", retryable=True),
        file_row(
            "half", "incomplete", incomplete=["1 of 2 remote provider-reference files failed"]
        ),
        file_row("lacking", "incomplete", incomplete=["HTTP 404"], retryable=False),
    ]
    page, _ = make_report(tmp_path, connect(example_tables, files), None)

    assert re.search(r'<tr id="files-total"><th>files</th><td>5</td>', page)
    assert re.search(r'<tr id="files-failed"><th>[^<]*failed</th><td>2</td>', page)
    assert re.search(r'<tr id="files-incomplete"><th>[^<]*incomplete</th><td>2</td>', page)
    assert re.search(r'<tr id="rate-rows"><th>rate rows</th><td>50</td>', page)  # 10 a file
    listed = page[page.index('<table id="not-done">') :]
    listed = listed[: listed.index("</table>")]
    rows = re.findall(r"<tr><td.*?</tr>", listed, re.S)
    ids = [re.findall(r'class="id">([^<]*)', r)[0] for r in rows]
    assert ids == ["flaky", "gone", "half", "lacking"]
    assert "connection reset by peer</td><td>likely" in rows[0]
    assert "HTTP 404 Not Found for /gone.json</td><td>no: fix the cause first" in rows[1]
    assert "1 of 2 remote provider-reference files failed</td><td>perhaps" in rows[2]
    assert "HTTP 404</td><td>no: the missing parts failed for reasons a retry" in rows[3]
    assert "4 files not done. Run the same command again" in page


def test_write_report_caps_the_listing_and_points_to_the_manifest(
    tmp_path: Path, example_tables: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "MAX_LISTED", 2)
    files = [file_row(f"f{i}", "failed", error="HTTP 500") for i in range(5)]
    page, _ = make_report(tmp_path, connect(example_tables, files), None)

    assert page.count("HTTP 500</td>") == 2
    assert "3 more not listed here: <code>manifest.json</code> has every file." in page


def test_write_report_escapes_every_string_from_the_data(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    rows = [rate(f"net{evil}", f"27447{evil}", 10.0, name=f"knee {evil}", billing_class=evil)]
    files = [
        file_row(f"net{evil}", "failed", error=f"bad {evil}", url=f"http://x/{evil}"),
        file_row("half", "incomplete", incomplete=[evil], log_file=evil),
        file_row("odd", evil),
    ]
    con = connect([rate_table(tmp_path, rows)], files)
    manifest = {k: f"{v}{evil}" for k, v in MANIFEST.items()}
    html_path = tmp_path / "out" / "report.html"
    write_report(con, manifest, [f"27447{evil}".upper(), evil.upper()], html_path, tmp_path)

    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<figure ") == 1


def test_write_report_gives_the_same_bytes_for_the_same_data(
    tmp_path: Path, example_tables: list[Path]
) -> None:
    codes = ["27447", "J1885"]
    page1, first = make_report(tmp_path, connect(example_tables), codes, "one")
    page2, second = make_report(tmp_path, connect(example_tables), codes, "two")

    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert page1 == page2


def test_write_report_on_no_rates_says_so(tmp_path: Path) -> None:
    empty = rate_table(tmp_path, [])
    page, svgs = make_report(tmp_path, connect([empty], [file_row("a")]), None)
    assert svgs == []
    assert "No rates in this run." in page
    assert "No figures" in page

    page, svgs = make_report(tmp_path, connect([empty], [file_row("a")]), ["27447", "J1885"])
    assert svgs == []
    assert page.count("no rates found") == 2


def test_write_report_removes_stale_figures_and_leaves_no_temporary_file(
    tmp_path: Path, example_tables: list[Path]
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cpt-old.svg").write_text("<svg/>")
    (tmp_path / "out" / "notes.txt").write_text("mine")
    make_report(tmp_path, connect(example_tables), ["27447"])

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cpt-27447.svg",
        "notes.txt",
        "report.html",
    ]


def test_write_report_caps_the_figures_and_says_which_codes_have_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "MAX_FIGURES", 2)
    rows = [rate("net-a", code, 10.0) for code, n in (("A1", 3), ("B2", 2), ("C3", 1))
            for _ in range(n)]  # fmt: skip
    page, svgs = make_report(tmp_path, connect([rate_table(tmp_path, rows)], []), None)

    assert [p.name for p in svgs] == ["cpt-a1.svg", "cpt-b2.svg"]
    assert "the other 1 are in this table only" in page
    assert "no figure (over the 2 drawn)" in page


def test_figure_slugs_are_file_names_and_unique(tmp_path: Path) -> None:
    rows = [
        rate("n", " a/b ", 1.0),
        rate("n", "A/B", 2.0, billing_code_type="cpt"),
        rate("n", "0450", 3.0, billing_code_type="RC"),
    ]
    slugs = report.figure_slugs(code_summaries(connect([rate_table(tmp_path, rows)], []), None))
    # Most rate rows first, then by type: CPT, RC, cpt.
    assert slugs[:2] == ["cpt-a-b", "rc-0450"]
    assert re.fullmatch(r"cpt-a-b-[0-9a-f]{10}", slugs[2])
    assert all(re.fullmatch(r"[a-z0-9-]+", s) for s in slugs)


def test_importing_mrfbatch_does_not_import_matplotlib() -> None:
    code = (
        "import sys, mrfbatch.report, mrfbatch.run_extraction, mrfbatch.workflow;"
        "sys.exit('matplotlib' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
