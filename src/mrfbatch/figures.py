"""One figure per billing code: its dollar rates by network, as SVG text.

matplotlib is imported inside `draw_code`, never when mrfbatch is: an extraction does not pay
for it. The figure is drawn on a `matplotlib.figure.Figure` with the SVG canvas (no pyplot, no
display), and the same boxes give the same bytes: `svg.hashsalt` fixes the ids matplotlib
would draw at random, and the SVG carries no date.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrfbatch.rate_stats import Box, CodeSummary

MAX_NETWORKS = 30  # networks in one figure, those with the most rates first
CLASS_ORDER = ("professional", "institutional")  # drawn in this order, other classes after
# Colour-blind safe (Okabe-Ito): blue, vermilion, then green, purple, grey for other classes.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#666666")
_WIDTH_INCHES = 8.0
_LABEL_CHARS = 36  # a longer network id is shortened in the middle on its axis label
_TITLE_CHARS = 70


@dataclass(frozen=True)
class Drawing:
    """A code's figure and what it leaves out, for its caption."""

    svg: str
    networks_shown: int
    networks_hidden: int  # networks over MAX_NETWORKS, not drawn
    rates_hidden: int  # their rates
    classes: tuple[str, ...]  # billing classes drawn, in legend order
    log_scale: bool


def class_label(billing_class: str) -> str:
    """The words for a billing class (`''` when the rates had none)."""
    return billing_class or "no billing class"


def draw_code(
    summary: CodeSummary, boxes: Sequence[Box], salt: str, max_networks: int = MAX_NETWORKS
) -> Drawing:
    """Draw `boxes` (rate_stats.rate_boxes, networks with most rates first) as one figure:
    one row per network, one box per billing class in it, the count of rates at its right.

    `salt` makes the SVG's ids unique when several figures share a page (the figure's slug).
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    totals: dict[str, int] = {}
    for box in boxes:
        totals[box.network_id] = totals.get(box.network_id, 0) + box.count
    networks = list(totals)  # the order of `boxes`
    shown = networks[:max_networks]
    hidden = networks[max_networks:]
    row = {network: i for i, network in enumerate(shown)}
    drawn = [box for box in boxes if box.network_id in row]
    classes = ordered_classes({box.billing_class for box in drawn})
    per_row = len(classes)
    # Rows get taller with more classes side by side; the fixed part holds title, axis, legend.
    height = 1.7 + len(shown) * (0.1 + 0.16 * per_row)

    with rc_context(
        {
            "svg.hashsalt": salt,
            "svg.fonttype": "path",  # glyphs as paths: no font needed where the page is read
            "text.parse_math": False,  # a `$` in a network id is a dollar, not mathtext
            "font.size": 9,
        }
    ):
        fig = Figure(figsize=(_WIDTH_INCHES, height), layout="constrained")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        step = 0.8 / per_row
        for j, billing_class in enumerate(classes):
            colour = COLOURS[min(j, len(COLOURS) - 1)]
            mine = [box for box in drawn if box.billing_class == billing_class]
            positions = [row[box.network_id] + (j - (per_row - 1) / 2) * step for box in mine]
            ax.bxp(
                [_bxp_stats(box) for box in mine],
                positions=positions,
                widths=step * 0.8,
                orientation="horizontal",
                patch_artist=True,
                manage_ticks=False,
                boxprops={"facecolor": colour + "55", "edgecolor": colour},
                whiskerprops={"color": colour},
                capprops={"color": colour},
                medianprops={"color": "#000000", "linewidth": 1.5},
                flierprops={
                    "marker": "o",
                    "markersize": 3,
                    "markerfacecolor": colour,
                    "markeredgecolor": colour,
                },
            )
            for box, y in zip(mine, positions, strict=True):
                ax.text(
                    1.01,
                    y,
                    f"{box.count:,}",
                    transform=ax.get_yaxis_transform(),
                    va="center",
                    ha="left",
                    fontsize=7,
                    color=colour,
                )
        ax.text(1.01, 1.0, "rates", transform=ax.transAxes, va="bottom", ha="left", fontsize=7)
        ax.set_yticks(range(len(shown)), [_short(n, _LABEL_CHARS) for n in shown])
        for y in range(1, len(shown)):
            ax.axhline(y - 0.5, color="#eeeeee", linewidth=0.6)
        ax.set_ylim(len(shown) - 0.5, -0.5)  # the network with most rates on top
        ax.set_ylabel("network")
        _dollar_axis(ax, summary, drawn)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        title = f"{summary.code_type} {summary.code}".strip()
        if summary.name:
            title += f": {summary.name}"
        ax.set_title(_short(title, _TITLE_CHARS), loc="left", fontsize=10)
        if per_row > 1 or classes != ("",):
            _legend(fig, classes)
        out = io.StringIO()
        fig.savefig(
            out,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return Drawing(
        svg=out.getvalue(),
        networks_shown=len(shown),
        networks_hidden=len(hidden),
        rates_hidden=sum(totals[n] for n in hidden),
        classes=classes,
        log_scale=summary.log_scale,
    )


def ordered_classes(classes: set[str]) -> tuple[str, ...]:
    """Professional, institutional, then any other class in text order."""
    known = [c for c in CLASS_ORDER if c in classes]
    return (*known, *sorted(classes - set(CLASS_ORDER)))


def dollars(value: float) -> str:
    """`$12`, `$1,234`, `$0.5`: a tick label."""
    if abs(value) >= 10 or value == int(value):
        return f"${value:,.0f}"
    return "$" + f"{value:,.2f}".rstrip("0").rstrip(".")


def _bxp_stats(box: Box) -> dict[str, Any]:
    # Whiskers at the 5th and 95th percentiles; the lowest and highest rate as dots.
    return {
        "med": box.median,
        "q1": box.q1,
        "q3": box.q3,
        "whislo": box.p05,
        "whishi": box.p95,
        "fliers": [box.lowest, box.highest],
    }


def _dollar_axis(ax: Any, summary: CodeSummary, boxes: Sequence[Box]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    formatter = FuncFormatter(lambda value, _: dollars(value))
    if summary.log_scale:
        ax.set_xscale("log")
        low = min(box.lowest for box in boxes)
        high = max(box.highest for box in boxes)
        decades = math.log10(high) - math.log10(low)
        # Label 1, 2 and 5 times each power of ten while that leaves room, powers alone after.
        subs = (1.0, 2.0, 5.0) if decades <= 4 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("negotiated rate, US dollars (log scale)")
    else:
        ax.set_xlabel("negotiated rate, US dollars")
    ax.xaxis.set_major_formatter(formatter)


def _legend(fig: Any, classes: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(
            facecolor=COLOURS[min(j, len(COLOURS) - 1)] + "55",
            edgecolor=COLOURS[min(j, len(COLOURS) - 1)],
            label=class_label(c),
        )
        for j, c in enumerate(classes)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
