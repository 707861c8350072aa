"""The bench commands' tables: targets marked met or missed in the right direction."""

from __future__ import annotations

import io

from rich.console import Console

from loramem.bench.route import ROUTE_TARGETS
from loramem.bench.tables import routers_table, serve_table, targets_table


def render(table) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_targets_are_marked_in_their_direction():
    text = render(targets_table("t", {"route_p50_ms": 5.0, "open_s": 2.5, "memories": 500, "tokens_per_s": 90.0},
                                {**ROUTE_TARGETS, "tokens_per_s": (100.0, True)}))
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 2}
    assert "met ≤ 20" in lines["route_p50_ms"] and "missed ≤ 1" in lines["open_s"]
    assert "missed ≥ 100" in lines["tokens_per_s"] and "500" in lines["memories"] and "met" not in lines["memories"]


def test_routers_and_serve_tables():
    table = routers_table({"partitions": 3, "questions": 1200,
                           "routers": {"bm25": {"hit@1": 0.5, "hit@3": 1.0, "p50_ms": 2.25}}}, [1, 3])
    assert table.title == "router accuracy: 3 partitions, 1,200 questions"
    routers = render(table)
    assert "50.0%" in routers and "100.0%" in routers and "2.2" in routers
    row = {f"{k}_{c}": v for c in (1, 8) for k, v in
           (("requests", 8), ("requests_per_s", 1.5), ("p50_ms", 420.0), ("correct", 1.0), ("cross_talk", 0.0))}
    served = render(serve_table(row))
    assert served.count("1.50") == 2 and "100%" in served and "420" in served
