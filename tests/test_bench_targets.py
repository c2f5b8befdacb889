"""bench/targets.py: issue #18's goals read from benchmark rows written here by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TARGETS = Path(__file__).resolve().parent.parent / "bench" / "targets.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_targets", TARGETS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


targets = _load()
SHAPES = {"X": "main shape (X)"}
LIMIT_MBPS = 1000.0  # ISA-L on A, MB/s


def _row(label: str, letter: str, mb: float, seconds: float, **more: Any) -> Any:
    return targets.Row(label, letter, {"json_bytes": int(mb * 1e6), "seconds": seconds, **more})


def _rows() -> list[Any]:
    return [
        _row("(c) fast engine", "A", 400, 1.0),  # 400 MB/s: 0.4x the limit
        _row("(c) fast engine, --validate full", "A", 400, 4.0),  # must not be taken for (c)
        _row("(d) fast engine, threads=2", "A", 500, 1.0),  # 0.5x
        _row("(g) extract all, fast engine", "X", 300, 2.0),  # 150 MB/s
        _row("(g) extract all, reference engine", "X", 300, 3.0),  # 100 MB/s
        _row(targets.CLI_LABEL, "X", 300, 2.5, peak_rss_mb=301.0),
        _row(targets.PEER_LABEL, "X", 300, 7.5),  # 3x the command's wall
    ]


def _by_label(goals: list[Any]) -> dict[str, Any]:
    return {g.label: g for g in goals}


def test_goals_measure_each_target_from_its_rows() -> None:
    found = _by_label(targets.goals(_rows(), lambda row: LIMIT_MBPS, SHAPES, 0.25, None))
    expected = {
        "skip path, one thread": (0.4, "yes"),
        "skip path, threads=2": (0.5, "no"),
        "extract-all, main shape (X)": (150.0, "yes"),
        "fast vs cms-mrf-extractor, main shape (X)": (3.0, "yes"),
        "fast vs reference, main shape (X)": (1.5, "yes"),
        "extract-all peak RSS, main shape (X)": (301.0, "no"),
        "start-up": (0.25, "yes"),
    }
    assert set(found) == set(expected)
    for label, (value, meets) in expected.items():
        assert found[label].measured == pytest.approx(value), label
        assert found[label].meets == meets, label


def test_goals_without_the_peer_say_why() -> None:
    rows = [r for r in _rows() if r.label != targets.PEER_LABEL]
    why = "cms-mrf-extractor 0.1.2 could not be installed: no network"
    goal = _by_label(targets.goals(rows, lambda row: None, SHAPES, None, why))
    peer = goal["fast vs cms-mrf-extractor, main shape (X)"]
    assert (peer.measured, peer.meets) == (None, "-")
    assert why in peer.how
    # no ISA-L row: the skip-path ratios are not measured either; nor is the start-up
    assert goal["skip path, one thread"].meets == "-"
    assert goal["start-up"].meets == "-"


@pytest.mark.parametrize(
    ("measured", "sense", "goal", "unit", "shown", "meets"),
    [
        (0.3996, ">=", 0.4, "x", "0.399 x", "no"),  # never shown equal to a goal it misses
        (0.4, ">=", 0.4, "x", "0.400 x", "yes"),
        (0.2501, "<=", 0.25, "s", "0.251 s", "no"),
        (0.25, "<=", 0.25, "s", "0.250 s", "yes"),
        (1.456, ">=", 3, "x", "1.45 x", "no"),
        (299.6, "<=", 300, "MB", "300 MB", "yes"),
        (300.2, "<=", 300, "MB", "301 MB", "no"),
    ],
)
def test_goal_table_rounds_away_from_the_goal(
    measured: float, sense: str, goal: float, unit: str, shown: str, meets: str
) -> None:
    header, line = targets.goal_table([targets.Goal("g", measured, sense, goal, unit, "how")])
    assert header.split()[:3] == ["goal", "(issue", "#18)"]
    assert line.split() == ["g", *shown.split(), sense, f"{goal:g}", unit, meets, "how"]
