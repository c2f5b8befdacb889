"""report.html: what a run did and what its rates look like, on one page that works offline.

The page is one file: inline CSS, the figures' SVG inline, no script, font or image from
anywhere. Every number comes from SQL over the run's views (`rates`, `files`, see
docs/report.md); every string from the data is escaped. Each figure is also written to
`{figures_dir}/{slug}.svg`; the page and the figures are written atomically.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from mrfbatch.figures import MAX_NETWORKS, Drawing, class_label, draw_code, ordered_classes
from mrfbatch.progress import human_bytes, human_seconds
from mrfbatch.rate_stats import LOG_RATIO, TOP_CODES, CodeSummary, code_summaries, rate_boxes
from mrfbatch.summary import files as n_files

MAX_LISTED = 200  # files not done listed on the page; manifest.json has them all
MAX_FIGURES = 50  # figures drawn, for the codes with the most rate rows
STATUSES = ("success", "incomplete", "failed", "not_run")
_SLUG_CHARS = 60


@dataclass(frozen=True)
class NotDone:
    """A file of the run that is not a success, as the page lists it."""

    network_id: str
    url: str
    status: str
    reason: str
    retry: str  # whether running the same command again may cure it, in words
    log_file: str


@dataclass(frozen=True)
class RunFiles:
    """The `files` view, summed."""

    by_status: dict[str, int]
    rate_rows: int
    provider_rows: int
    bytes_read: int
    seconds: float
    with_warnings: int
    not_done: list[NotDone]  # the first MAX_LISTED: failed, incomplete, not run
    not_done_total: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class Figure:
    """A code's figure on the page."""

    slug: str
    drawing: Drawing


def write_report(
    con: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    codes: Collection[str] | None,
    html_path: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write report.html and one SVG per plotted code into figures_dir; return the SVG paths.

    `con` has the views `rates` and `files`; `manifest` is the run's manifest.json; `codes`
    the run's normalized whitelist, or None (then the TOP_CODES codes with the most rate rows
    are shown). SVG files already in `figures_dir` are removed first: they are an earlier
    run's.
    """
    out_dir = Path(figures_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out_dir.glob("*.svg")):
        stale.unlink()
    summaries = code_summaries(con, codes)
    plotted = [s for s in summaries if s.dollar_rates > 0][:MAX_FIGURES]
    boxes = rate_boxes(con, plotted)
    figures: dict[tuple[str, str], Figure] = {}
    paths = []
    for summary, slug in zip(plotted, figure_slugs(plotted), strict=True):
        key = (summary.code_type, summary.code)
        drawing = draw_code(summary, boxes[key], salt=slug)
        path = out_dir / f"{slug}.svg"
        write_text(path, drawing.svg)
        paths.append(path)
        figures[key] = Figure(slug, drawing)
    page = render_page(manifest, run_files(con), codes, summaries, figures)
    Path(html_path).parent.mkdir(parents=True, exist_ok=True)
    write_text(html_path, page)
    return paths


def figure_slugs(summaries: Sequence[CodeSummary]) -> list[str]:
    """A file name stem per code: `cpt-27447`; a hash is added when two would be the same."""
    slugs: list[str] = []
    for s in summaries:
        base = re.sub(r"[^a-z0-9]+", "-", f"{s.code_type}-{s.code}".lower()).strip("-")
        slug = base[:_SLUG_CHARS].strip("-") or "code"
        if slug in slugs:
            digest = hashlib.sha256(f"{s.code_type}\0{s.code}".encode()).hexdigest()[:10]
            slug = f"{slug}-{digest}"
        slugs.append(slug)
    return slugs


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text` (UTF-8): written under a temporary name beside it, renamed."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def run_files(con: duckdb.DuckDBPyConnection) -> RunFiles:
    """The `files` view's counts by status, sums, and the files not done (failed first)."""
    by_status = dict(
        con.execute(
            "SELECT coalesce(status, 'not_run'), count(*) FROM files GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    sums = con.execute(
        """
        SELECT coalesce(sum(rate_rows), 0)::BIGINT, coalesce(sum(provider_rows), 0)::BIGINT,
               coalesce(sum(bytes_read), 0)::BIGINT, coalesce(sum(duration_seconds), 0)::DOUBLE,
               count(*) FILTER (len(warnings) > 0)
        FROM files
        """
    ).fetchone()
    assert sums is not None  # an aggregate without GROUP BY has one row
    rows = con.execute(
        """
        SELECT network_id, url, coalesce(status, 'not_run') AS status, error, retryable,
               incomplete, log_file, count(*) OVER () AS total
        FROM files WHERE status IS DISTINCT FROM 'success'
        ORDER BY CASE status WHEN 'failed' THEN 0 WHEN 'incomplete' THEN 1 ELSE 2 END,
                 network_id
        LIMIT ?
        """,
        [MAX_LISTED],
    ).fetchall()
    return RunFiles(
        by_status=by_status,
        rate_rows=int(sums[0]),
        provider_rows=int(sums[1]),
        bytes_read=int(sums[2]),
        seconds=float(sums[3]),
        with_warnings=int(sums[4]),
        not_done=[_not_done(*row[:7]) for row in rows],
        not_done_total=rows[0][7] if rows else 0,
    )


def _not_done(
    network_id: str | None,
    url: str | None,
    status: str,
    error: str | None,
    retryable: bool | None,
    incomplete: list[str] | None,
    log_file: str | None,
) -> NotDone:
    if status == "failed":
        reason = error or "failed (no error recorded)"
        if retryable is None:
            retry = "unknown: read the log"
        else:
            retry = "likely: the failure may pass" if retryable else "no: fix the cause first"
    elif status == "incomplete":
        reason = " ".join(incomplete or []) or "incomplete (no reason recorded)"
        if retryable is False:
            retry = "no: the missing parts failed for reasons a retry does not cure"
        else:
            retry = "perhaps: the missing parts are fetched again"
    else:
        reason = "not run: the run stopped before this file"
        retry = "yes"
    return NotDone(network_id or "", url or "", status, reason, retry, log_file or "")


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1a1a1a; margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 66rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05rem; margin: 0 0 0.3rem; }
.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6rem 0; }
th, td { text-align: left; padding: 0.25rem 0.7rem 0.25rem 0; vertical-align: top;
  border-bottom: 1px solid #e4e4e4; }
thead th { border-bottom: 2px solid #bbb; }
#run-summary td { font-variant-numeric: tabular-nums; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { max-width: 30rem; overflow-wrap: anywhere; }
td.log { min-width: 9rem; }
td.code { white-space: nowrap; }
code, .id, td.code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em;
  overflow-wrap: anywhere; }
.next { background: #fff4e0; border-left: 4px solid #d55e00; padding: 0.5rem 0.8rem; }
.status-failed { color: #a40000; font-weight: 600; }
.status-incomplete { color: #8a5a00; font-weight: 600; }
.none { color: #777; }
figure { margin: 1.8rem 0 2.4rem; }
figure svg { display: block; width: 100%; max-width: 60rem; height: auto; }
figcaption { color: #333; font-size: 0.92rem; max-width: 60rem; }
"""


def render_page(
    manifest: Mapping[str, Any],
    run: RunFiles,
    codes: Collection[str] | None,
    summaries: Sequence[CodeSummary],
    figures: Mapping[tuple[str, str], Figure],
) -> str:
    """The whole page, as HTML text."""
    source = " ".join(str(manifest.get(k) or "") for k in ("source_type", "source_input"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>mrfbatch report: {escape(source.strip() or 'run')}</title>",
        f"<style>{_CSS}</style></head>",
        "<body>",
        "<h1>mrfbatch run report</h1>",
        f'<p class="lead">{escape(source.strip())}</p>',
        *_run_section(manifest, run),
        *_codes_section(codes, summaries, figures),
        *_figures_section(summaries, figures),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _run_section(manifest: Mapping[str, Any], run: RunFiles) -> list[str]:
    out = ['<section id="run">', "<h2>The run</h2>"]
    if manifest.get("error"):
        out.append(
            '<p class="next">The source could not be turned into tasks: '
            f"{escape(str(manifest['error']))}</p>"
        )
    rows = [
        ("when", "run-when", escape(str(manifest.get("extraction_run") or "unknown"))),
        ("source", "run-source", escape(str(manifest.get("source_type") or ""))),
        ("input", "run-input", f'<span class="id">{_text(manifest.get("source_input"))}</span>'),
        (
            "output folder",
            "run-output",
            f'<span class="id">{_text(manifest.get("output_dir"))}</span>',
        ),
        ("files", "files-total", f"{run.total:,}"),
    ]
    statuses = [*STATUSES, *sorted(set(run.by_status) - set(STATUSES))]
    for status in statuses:
        count = run.by_status.get(status, 0)
        rows.append(
            (f"&nbsp;&nbsp;{escape(status.replace('_', ' '))}", f"files-{status}", f"{count:,}")
        )
    rows += [
        ("rate rows", "rate-rows", f"{run.rate_rows:,}"),
        ("provider rows", "provider-rows", f"{run.provider_rows:,}"),
        ("bytes read", "bytes-read", escape(human_bytes(run.bytes_read))),
        (
            "extraction time",
            "extraction-time",
            f"{escape(human_seconds(run.seconds))} (summed over files)",
        ),
    ]
    out.append('<table id="run-summary">')
    out += [
        f'<tr id="{escape(key)}"><th>{label}</th><td>{value}</td></tr>'
        for label, key, value in rows
    ]
    out.append("</table>")
    if run.with_warnings:
        out.append(
            f"<p>{n_files(run.with_warnings)} had warnings: see their entries in "
            "<code>manifest.json</code> and their logs.</p>"
        )
    if run.not_done_total:
        out.append(
            f'<p class="next">{n_files(run.not_done_total)} not done. Run the same command '
            "again: it redoes only the files not done and keeps the others (a file marked "
            "&ldquo;no&rdquo; fails again until its cause is fixed).</p>"
        )
        out += _not_done_table(run)
    out.append("</section>")
    return out


def _not_done_table(run: RunFiles) -> list[str]:
    out = [
        '<table id="not-done">',
        "<thead><tr><th>network id</th><th>status</th><th>reason</th>"
        "<th>may a rerun cure it?</th><th>log</th></tr></thead><tbody>",
    ]
    for f in run.not_done:
        out.append(
            f'<tr><td class="id">{escape(f.network_id)}<br><span class="none">'
            f"{escape(f.url)}</span></td>"
            f'<td class="status-{escape(f.status)}">{escape(f.status.replace("_", " "))}</td>'
            f'<td class="reason">{escape(f.reason)}</td><td>{escape(f.retry)}</td>'
            f'<td class="id log">{escape(f.log_file)}</td></tr>'
        )
    out.append("</tbody></table>")
    more = run.not_done_total - len(run.not_done)
    if more > 0:
        out.append(
            f"<p>{more:,} more not listed here: <code>manifest.json</code> has every file.</p>"
        )
    return out


def _codes_section(
    codes: Collection[str] | None,
    summaries: Sequence[CodeSummary],
    figures: Mapping[tuple[str, str], Figure],
) -> list[str]:
    out = ['<section id="codes">', "<h2>Billing codes</h2>"]
    with_rates = {s.code for s in summaries}
    missing = sorted(set(codes or ()) - with_rates)
    if codes is None:
        if not summaries:
            out.append('<p id="no-rates">No rates in this run.</p></section>')
            return out
        out.append(
            f"<p>The run had no whitelist: these are the {len(summaries)} "
            f"code{'' if len(summaries) == 1 else 's'} with the most rate rows "
            f"(at most {TOP_CODES}).</p>"
        )
    else:
        out.append(
            f"<p>Your whitelist has {len(codes):,} codes: {len(codes) - len(missing):,} have "
            f"rates, {len(missing):,} {'has' if len(missing) == 1 else 'have'} none.</p>"
        )
    drawable = sum(1 for s in summaries if s.dollar_rates > 0)
    if drawable > len(figures):
        out.append(
            f"<p>Figures are drawn for the {len(figures)} codes with the most rate rows; "
            f"the other {drawable - len(figures):,} are in this table only.</p>"
        )
    out.append(
        '<table id="code-table"><thead><tr><th>code</th><th>type</th><th>name</th>'
        '<th class="n">rate rows</th><th class="n">files</th><th>median by billing class</th>'
        "<th>notes</th></tr></thead><tbody>"
    )
    for s in summaries:
        figure = figures.get((s.code_type, s.code))
        code = escape(s.code)
        if figure:
            code = f'<a href="#fig-{figure.slug}">{code}</a>'
        by_class = dict(s.medians)
        medians = "; ".join(
            f"{escape(class_label(c))} ${by_class[c]:,.2f}" for c in ordered_classes(set(by_class))
        )
        out.append(
            f'<tr><td class="code">{code}</td><td>{escape(s.code_type)}</td>'
            f'<td>{escape(s.name or "")}</td><td class="n">{s.rate_rows:,}</td>'
            f'<td class="n">{s.files:,}</td><td>{medians or "&ndash;"}</td>'
            f"<td>{escape(_code_note(s, figure is not None))}</td></tr>"
        )
    for code in missing:
        out.append(
            f'<tr class="no-rates"><td class="code">{escape(code)}</td>'
            '<td colspan="6" class="none">no rates found</td></tr>'
        )
    out += ["</tbody></table>", "</section>"]
    return out


def _code_note(s: CodeSummary, drawn: bool) -> str:
    notes = []
    if s.percentages:
        notes.append(f"{s.percentages:,} percentage rates (not in the medians or figure)")
    if s.without_rate:
        notes.append(f"{s.without_rate:,} rows without a rate")
    if s.dollar_rates == 0:
        notes.append("no dollar rate to draw")
    elif not drawn:
        notes.append(f"no figure (over the {MAX_FIGURES} drawn)")
    return "; ".join(notes)


def _figures_section(
    summaries: Sequence[CodeSummary], figures: Mapping[tuple[str, str], Figure]
) -> list[str]:
    out = ['<section id="figures">', "<h2>Rates by network</h2>"]
    if not figures:
        out += ['<p class="none">No figures: no code has dollar rates.</p>', "</section>"]
        return out
    out.append(
        "<p>One figure per code: a row per network (the networks with the most rates at the "
        "top), a box per billing class in it. The box spans the middle half of the rates "
        "(25th to 75th percentile) and the black line is the median; the whiskers reach the "
        "5th and 95th percentiles, and the dots are the lowest and the highest rate. The "
        "number at the right is how many rates the box holds. Professional and institutional "
        "rates are drawn apart: they often differ by a factor of ten.</p>"
    )
    for s in summaries:
        figure = figures.get((s.code_type, s.code))
        if figure is None:
            continue
        title = f"{s.code_type} {s.code}" + (f": {s.name}" if s.name else "")
        svg = figure.drawing.svg
        out += [
            f'<figure id="fig-{figure.slug}" aria-label="{escape(title)}">',
            svg[svg.index("<svg") :].rstrip(),
            f"<figcaption>{escape(_caption(s, figure.drawing))}</figcaption>",
            "</figure>",
        ]
    out.append("</section>")
    return out


def _caption(s: CodeSummary, drawing: Drawing) -> str:
    shown = s.dollar_rates - s.left_out_of_figure - drawing.rates_hidden
    networks = drawing.networks_shown
    text = f"{shown:,} dollar rates from {networks:,} network{'' if networks == 1 else 's'}."
    if drawing.log_scale and s.lowest and s.highest:
        text += (
            f" Log scale: the highest rate is {s.highest / s.lowest:,.0f} times the lowest "
            f"(over {LOG_RATIO:.0f})."
        )
    left_out = []
    if s.percentages:
        left_out.append(f"{s.percentages:,} percentage rates (percents, not dollars)")
    if s.left_out_of_figure:
        left_out.append(f"{s.left_out_of_figure:,} rates of $0 or less (a log axis has no 0)")
    if s.without_rate:
        left_out.append(f"{s.without_rate:,} rows without a rate")
    if drawing.networks_hidden:
        left_out.append(
            f"{drawing.networks_hidden:,} more networks with {drawing.rates_hidden:,} rates "
            f"(the figure shows the {MAX_NETWORKS} with the most)"
        )
    if left_out:
        text += " Not shown: " + "; ".join(left_out) + "."
    return text


def _text(value: Any) -> str:
    return escape(str(value)) if value is not None else ""
