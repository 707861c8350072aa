"""The knowledge-base study's report: one row per arm, the seed's comparisons, a plot (report.md, knowledge-base.png)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from loramem.bench.rows import read_results


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def arm_summaries(rows: list[dict]) -> dict[str, dict]:
    """Per block: arm label, questions, ROUGE-L (overall and per level), the oracle memory's ROUGE-L on the
    same questions (blocks may ask a subset: `--questions`), judge, hit and abstention rates, p50 s."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["block"]].append(r)
    oracle = {(r["paper"], r["question"]): r["rouge_l"] for r in by.get("oracle", [])}
    out = {}
    for block, rs in by.items():
        same = [oracle[r["paper"], r["question"]] for r in rs if (r["paper"], r["question"]) in oracle]
        levels = sorted({r["level"] for r in rs if r["level"] is not None})
        hits = [r["hit"] for r in rs if r["hit"] is not None]
        out[block] = {
            "arm": rs[0]["arm"], "questions": len(rs), "rouge_l": _mean(r["rouge_l"] for r in rs),
            "oracle_same": _mean(same) if len(same) == len(rs) else None,
            "levels": {str(lv): _mean(r["rouge_l"] for r in rs if r["level"] == lv) for lv in levels},
            **({"judge": _mean(r["judge"] for r in rs)} if all("judge" in r for r in rs) else {}),
            "hit": _mean(hits) if hits else None, "abstained": _mean(bool(r.get("abstained")) for r in rs),
            "p50_s": statistics.median(r["seconds"] for r in rs),
        }
    return out


def _curves(summary: dict) -> dict[str, dict[int, float]]:
    curves: dict[str, dict[int, float]] = defaultdict(dict)
    for block, s in summary.items():
        if block.startswith("interference|"):
            _, method, n = block.split("|")
            curves[method][int(n)] = s["rouge_l"]
            if s["oracle_same"] is not None:
                curves[method][1] = s["oracle_same"]
    return curves


def _gap(s: dict) -> float:
    return s["rouge_l"] - s["oracle_same"] if s["oracle_same"] is not None else float("-inf")


def _against_oracle(s: dict) -> str:
    """'0.292 against the oracle memory's 0.303 on the same 240 questions (-1.1 points)'."""
    if s["oracle_same"] is None:
        return f"{s['rouge_l']:.3f} ({s['questions']} questions, the oracle memory not asked them all)"
    return (f"{s['rouge_l']:.3f} against the oracle memory's {s['oracle_same']:.3f} on the same {s['questions']} "
            f"questions ({100 * _gap(s):+.1f} points)")


def findings(summary: dict) -> list[str]:
    """The seed paper's questions, answered from the rows present."""
    lines = []
    oracle = summary.get("oracle", {}).get("rouge_l")
    routed = {b: s for b, s in summary.items() if b.startswith("routed|")}
    if oracle is not None and routed:
        for s in sorted(routed.values(), key=lambda s: -_gap(s)):
            lines.append(f"* Routing, {s['arm']}: {_against_oracle(s)}.")
    merged = {b: s for b, s in summary.items() if b.startswith("merge|")}
    for s in merged.values():
        lines.append(f"* {s['arm']}: {_against_oracle(s)}.")
    for block in ("parametric+rag|routed", "parametric+rag|routed-1"):
        if block in summary and "rag|collection" in summary:
            p, r = summary[block], summary["rag|collection"]
            lines.append(f"* Complementarity: {p['arm']} {p['rouge_l']:.3f} against rag over the whole collection "
                         f"{r['rouge_l']:.3f} ({100 * (p['rouge_l'] - r['rouge_l']):+.1f} points"
                         + (f"; {p['questions']} and {r['questions']} questions" if p["questions"] != r["questions"] else "")
                         + ").")
    if "large" in summary and oracle is not None:
        lines.append(f"* One large memory vs many small: {_against_oracle(summary['large'])}.")
    for method, curve in _curves(summary).items():
        ns = sorted(curve)
        lines.append(f"* Interference ({method}): " + ", ".join(f"N={n} {curve[n]:.3f}" for n in ns) + ".")
    held = summary.get("held-out|auto")
    if held:
        inside = summary.get("routed|auto", {}).get("abstained")
        lines.append(f"* Abstention: questions of papers outside the collection abstained {held['abstained']:.0%}"
                     + (f"; the collection's own questions {inside:.0%}." if inside is not None else "."))
    return lines


def write_report(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, settings = read_results(out)
    summary = arm_summaries(rows)
    levels = sorted({lv for s in summary.values() for lv in s["levels"]})
    judged = any("judge" in s for s in summary.values())
    head = ["arm", "questions", "ROUGE-L", "oracle, same questions", *[f"level {lv}" for lv in levels],
            *(["judge"] if judged else []),
            "own memory used", "abstained", "p50 s"]
    lines = ["# A knowledge base: routing, merging and abstention over paper memories", "",
             f"{len(settings['papers'])} papers (PaperQA introductions), one memory each, default write settings "
             f"(rank {settings['training']['rank']}); routed top k = {settings['top_k']}; model {settings['model']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary.values():
        lines.append("| " + " | ".join([
            s["arm"], str(s["questions"]), f"{s['rouge_l']:.3f}",
            "" if s["oracle_same"] is None else f"{s['oracle_same']:.3f}",
            *[f"{s['levels'].get(lv, float('nan')):.3f}" for lv in levels],
            *([f"{s['judge']:.2f}" if "judge" in s else ""] if judged else []),
            "" if s["hit"] is None else f"{s['hit']:.0%}", f"{s['abstained']:.0%}", f"{s['p50_s']:.2f}"]) + " |")
    lines += ["", *findings(summary)]
    scale = json.loads((out / "scale.json").read_text()) if (out / "scale.json").exists() else {}
    for n, by_router in scale.items():
        lines.append(f"* Routing among {int(n):,} memories: " + ", ".join(
            f"{router} p50 {v['p50_ms']:.1f} ms (p90 {v['p90_ms']:.1f})" for router, v in by_router.items()
            if isinstance(v, dict)) + ".")
    curves = _curves(summary)
    if curves:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for method, c in curves.items():
            xs = sorted(c)
            ax.plot(xs, [c[x] for x in xs], marker="o", label=method)
        ax.set_xlabel("memories merged (own + others)")
        ax.set_ylabel("ROUGE-L")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "knowledge-base.png", dpi=120)
        plt.close(fig)
        lines += ["", "![ROUGE-L vs memories merged](knowledge-base.png)"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
