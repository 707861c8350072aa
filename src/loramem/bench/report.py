"""`loramem bench report DIR`: an experiment's rows as markdown tables and PNG plots."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from loramem.bench import TAU
from loramem.bench.metrics import METRICS
from loramem.bench.rows import read_jsonl
from loramem.errors import LoramemError

PARAMS = ("size", "entries", "rank", "format", "placement", "objective", "seed")
CATEGORICAL = ("format", "placement", "objective")  # settings compared side by side


def read_rows(folder: Path) -> list[dict]:
    path = folder / "results.jsonl"
    if not path.exists():
        raise LoramemError(f"{folder}: no results.jsonl (run `loramem bench run CONFIG --out {folder}` first)")
    return read_jsonl(path)


def metric_columns(rows: list[dict]) -> list[str]:
    """The answer scores the rows carry: registered metrics, then the rubric judge's."""
    return [m for m in (*METRICS.names(), "judge") if any(m in r for r in rows)]


def score_key(rows: list[dict], folder: Path | None = None) -> str:
    """The score to rank and plot by: the experiment's primary metric (the first it declares, saved in
    each row), for older rows the first metric of `folder`'s config.yaml or the only one the rows
    carry; read-back recall when nothing was asked."""
    declared = [r["metric"] for r in rows if "metric" in r]
    if declared:
        return declared[0]  # a folder holds one experiment's settings, so one primary metric
    carried = metric_columns(rows)
    config = folder / "config.yaml" if folder is not None else None
    if config is not None and config.is_file():
        import yaml

        metrics = (yaml.safe_load(config.read_text()) or {}).get("metrics") or []
        if metrics and metrics[0] in carried:
            return metrics[0]
    if len(carried) > 1:
        raise LoramemError(f"the rows carry several scores ({', '.join(carried)}) and none is declared primary; "
                           "list the metrics in the experiment's config.yaml")
    return carried[0] if carried else "recall"


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


def capacity_table(by_rank: dict[int, list[dict]], score: str, tau: float = TAU) -> str:
    """Per rank, the largest size whose every run scored >= tau (the paper's T_max) and T_max per
    parameter; "-" where no size reached tau, ">=" where no size failed. A size above T_max that
    failed is the saturation point. The last column is the most entries read back at any size
    (score x entries): it stops growing with size once the adapter is full."""
    lines = [f"\nCapacity at tau = {tau} (`{score}`):\n",
             "| rank | parameters | T_max (entries) | T_max (tokens) | tokens / param | first size below tau "
             "| most entries read back |",
             "|---|---|---|---|---|---|---|"]
    for rank, rs in sorted(by_rank.items()):
        sizes = sorted({r["entries"] for r in rs})
        stored = [n for n in sizes if all(r[score] >= tau for r in rs if r["entries"] == n)]
        failed = [n for n in sizes if n not in stored]
        params = rs[0]["parameters"]
        if stored:
            tokens = max(r["tokens"] for r in rs if r["entries"] == stored[-1])
            bound = "" if failed else ">= "  # nothing failed yet: a lower bound
            cells = [f"{bound}{stored[-1]}", f"{bound}{tokens}", f"{bound}{tokens / params:.2e}"]
        else:
            cells = ["-", "-", "-"]
        cells.append(failed[0] if failed else "not reached")
        read, n = max((statistics.mean(r[score] for r in rs if r["entries"] == n) * n, n) for n in sizes)
        cells.append(f"{round(read)} of {n}")
        lines.append(f"| {rank} | {params:,} | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def write_report(folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(folder)
    score = score_key(rows, folder)
    metric_cols = metric_columns(rows)
    columns = [c for c in PARAMS if len({_cell(r.get(c)) for r in rows}) > 1 or c in ("entries", "rank")]
    columns += ["parameters", "examples", "epochs", "recall", *metric_cols, "write_s"]
    parts = [f"# {folder.name}\n", f"{len(rows)} runs; score: `{score}`.\n", markdown_table(rows, columns)]

    by_rank: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_rank[r["rank"]].append(r)
    if len({r["entries"] for r in rows}) > 1:  # a capacity sweep: curves over size, T_max per rank
        parts.append(capacity_table(by_rank, score))
        fig, ax = plt.subplots(figsize=(6, 4))
        for rank, rs in sorted(by_rank.items()):
            sizes = sorted({r["entries"] for r in rs})
            mean = [statistics.mean(r[score] for r in rs if r["entries"] == n) for n in sizes]
            ax.plot(sizes, mean, marker="o", label=f"rank {rank}")
        ax.set(xlabel="entries written", ylabel=score, title="accuracy vs. data size", ylim=(0, 1.05))
        ax.set_xscale("log", base=2)
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "accuracy_vs_size.png", dpi=120)
        plt.close(fig)
        parts.append("\n![accuracy vs. data size](accuracy_vs_size.png)\n")

    if len(by_rank) > 1:
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

    for param in CATEGORICAL:  # bars per value of each swept setting (formats, placements, ...)
        values = sorted({_cell(r.get(param)) for r in rows})
        if len(values) < 2:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.4 * len(values)), 4))
        # the score, and the epochs the write took: where every setting stores everything, the cost differs
        for ax, key, label in ((axes[0], score, f"{score} (mean over runs)"), (axes[1], "epochs", "epochs to store")):
            means = [statistics.mean(r[key] for r in rows if _cell(r.get(param)) == v) for v in values]
            ax.bar(range(len(values)), means)
            ax.set_xticks(range(len(values)), ["\n".join(x.split("=", 1)[-1] for x in v.split(" ")) for v in values], fontsize=8)
            ax.set(ylabel=label, title=f"{param} comparison")
        axes[0].set_ylim(0, 1.05)
        fig.tight_layout()
        fig.savefig(folder / f"{param}s.png", dpi=120)
        plt.close(fig)
        parts.append(f"\n![{param} comparison]({param}s.png)\n")
    report = folder / "report.md"
    report.write_text("\n".join(parts))
    return report
