"""`loramem bench report DIR`: an experiment's rows as markdown tables and PNG plots."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from loramem.bench.metrics import METRICS
from loramem.bench.rows import read_jsonl
from loramem.errors import LoramemError

PARAMS = ("size", "entries", "rank", "format", "placement", "objective", "seed")


def read_rows(folder: Path) -> list[dict]:
    path = folder / "results.jsonl"
    if not path.exists():
        raise LoramemError(f"{folder}: no results.jsonl (run `loramem bench run CONFIG --out {folder}` first)")
    return read_jsonl(path)


def score_key(rows: list[dict]) -> str:
    """The first metric the rows carry, else read-back recall."""
    for name in METRICS.names():
        if any(name in r for r in rows):
            return name
    return "recall"


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def efficiency(row: dict, score: str) -> float:
    """Entries stored per million adapter parameters."""
    return row.get(score, 0.0) * row.get("entries", 0) / max(1, row["parameters"]) * 1e6


def write_report(folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(folder)
    score = score_key(rows)
    metric_cols = [m for m in METRICS.names() if any(m in r for r in rows)]
    columns = [c for c in PARAMS if len({_cell(r.get(c)) for r in rows}) > 1 or c in ("entries", "rank")]
    columns += ["parameters", "examples", "epochs", "recall", *metric_cols, "write_s"]
    parts = [f"# {folder.name}\n", f"{len(rows)} runs; score: `{score}`.\n", markdown_table(rows, columns)]

    by_rank: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_rank[r["rank"]].append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    for rank, rs in sorted(by_rank.items()):
        rs = sorted(rs, key=lambda r: r["entries"])
        ax.plot([r["entries"] for r in rs], [r[score] for r in rs], marker="o", label=f"rank {rank}")
    ax.set(xlabel="entries written", ylabel=score, title="accuracy vs. data size", ylim=(0, 1.05))
    ax.set_xscale("log", base=2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "accuracy_vs_size.png", dpi=120)
    plt.close(fig)
    parts.append("\n![accuracy vs. data size](accuracy_vs_size.png)\n")

    fig, ax = plt.subplots(figsize=(6, 4))
    ranks = sorted(by_rank)
    best = [max(efficiency(r, score) for r in by_rank[k]) for k in ranks]
    ax.plot(ranks, best, marker="o")
    ax.set(xlabel="rank", ylabel="entries stored per million parameters", title="efficiency vs. rank")
    ax.set_xscale("log", base=2)
    fig.tight_layout()
    fig.savefig(folder / "efficiency_vs_rank.png", dpi=120)
    plt.close(fig)
    parts.append("\n![efficiency vs. rank](efficiency_vs_rank.png)\n")

    formats = sorted({r["format"] for r in rows})
    if len(formats) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        means = [sum(r[score] for r in rows if r["format"] == f) / sum(r["format"] == f for r in rows) for f in formats]
        ax.bar(formats, means)
        ax.set(ylabel=score, title="format comparison")
        fig.tight_layout()
        fig.savefig(folder / "formats.png", dpi=120)
        plt.close(fig)
        parts.append("\n![format comparison](formats.png)\n")
    report = folder / "report.md"
    report.write_text("\n".join(parts))
    return report
