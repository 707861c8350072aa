"""`loramem bench kv`: when does a paper's LoRA help beyond its (compressed) KV cache? And the hybrids.

For each paper, its introduction is written into one memory per supervision format (named
`paper-<i>-<format>` in `<out>/store`, as `bench formats` names them, so pointing both at one
folder reuses the memories). Then, for every press and compression RHO, the document is
prefilled once per setting — by the base model (adapter phases `none` and `decode`) or with
the adapter (`prefill+decode`) — and the gold questions are decoded on that cache, `batch` at a
time. RHO = 1 means no document. The hybrid part asks the same questions in the modes
parametric, icl, rag, parametric+icl and parametric+rag. Scores are ROUGE-L F1 against the gold answers; rows are
appended per block, so an interrupted run resumes. The settings the rows depend on are saved in
`kv-settings.json`, and a rerun with other ones is refused, as is a stored memory (bench formats'
included) written with other training settings (`loramem.bench.resume`); papers, presses and
RHO values may grow.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from loramem.bench.datasets.base import spread
from loramem.bench.datasets.paperqa import choose_papers, paper_text
from loramem.bench.formats import memory_name
from loramem.bench.metrics import rouge_l
from loramem.bench.resume import check_reused, claim_folder, model_name
from loramem.bench.rows import append_jsonl, read_jsonl
from loramem.errors import LoramemError
from loramem.training import TrainConfig

RHOS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
PRESSES = ("expected_attention", "knorm")
FORMATS = ("qa", "raw")
HYBRID_MODES = ("parametric", "icl", "rag", "parametric+icl", "parametric+rag")


def run_kv_study(
    data: Path, out: Path, papers: list[int] | None = None, rhos=RHOS, presses=PRESSES, formats=FORMATS,
    questions: int | None = None, config: TrainConfig | None = None, model: str | None = None,
    device: str | None = None, max_new_tokens: int = 64, batch: int = 16, log: Callable[[str], None] = print,
) -> Path:
    """Run (or resume) the study into `out`; returns the report's path."""
    from loramem.api import Memory
    from loramem.kv import decode_many, prefill
    from loramem.modes.kv import KVSettings
    from loramem.supervision import parse_format

    all_papers, chosen = choose_papers(data, papers)
    if any(not 0 <= r <= 1 for r in rhos):
        raise LoramemError(f"compression values must lie in [0, 1]; got {list(rhos)}")
    for press in presses:
        KVSettings(press=press).check()
    config = config or TrainConfig(epochs=20)
    results = out / "kv-results.jsonl"
    claim_folder(out, {"data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(), "formats": list(formats),
                       "questions": questions, "training": asdict(config), "model": model_name(model),
                       "max_new_tokens": max_new_tokens, "batch": batch}, results=[results], filename="kv-settings.json")
    done = {r["block"] for r in read_jsonl(results)}
    mem = Memory(store=out / "store", model=model, device=device, progress=True)
    for i in chosen:
        paper = all_papers[i]
        qas = spread(paper["QA"], questions)
        document = paper_text(paper)
        names = {}
        for fmt in formats:
            names[fmt] = memory_name(i, fmt)
            if mem.store.exists(names[fmt]):  # this study's, or bench formats' in a shared folder
                check_reused(mem.show(names[fmt]), {**asdict(config), "format": str(parse_format(fmt))}, out)
            else:
                log(f"paper {i}: writing memory {names[fmt]} (format {fmt})")
                mem.write(documents={f"paper-{i}.md": document}, name=names[fmt], format=fmt, config=config)
        adapters = {fmt: [(n, mem.store.adapter_path(mem.show(n)))] for fmt, n in names.items()}

        def emit(block: str, rows: list[dict], paper: int = i) -> None:
            append_jsonl(results, [{"block": block, "paper": paper, **r} for r in rows])

        for press in presses:
            for rho in rhos:
                label = press if 0 < rho < 1 else "-"  # no press acts at RHO 0 (all kept) or 1 (no document)
                block = f"{i}|kv|{label}|{rho}"
                if block in done:
                    continue
                done.add(block)
                log(f"paper {i}: {label if 0 < rho < 1 else 'full cache' if rho == 0 else 'no document'} at rho {rho}")
                rows = []
                # (prefill adapter, decode adapter) per phase; the base prefill serves `none` and `decode`.
                runs = [("none", None)] + [(phase, fmt) for fmt in formats for phase in ("decode", "prefill+decode")]
                states = {}
                for phase, fmt in runs:
                    settings = KVSettings(press=press, compression=rho, adapter_phase=phase)
                    key = fmt if phase == "prefill+decode" else None
                    if key not in states:
                        states[key] = prefill(mem.base, document, adapters[fmt] if key else [], settings,
                                              max_new_tokens, mem.adapters)
                    state = states[key]
                    answers = []
                    for start in range(0, len(qas), batch):
                        answers += decode_many(mem.base, state, [qa["question"] for qa in qas[start:start + batch]],
                                               adapters[fmt] if fmt else [], settings, max_new_tokens, mem.adapters)
                    for qa, (text, _, _) in zip(qas, answers):
                        rows.append({"part": "kv", "press": label, "rho": rho, "phase": phase,
                                     "format": fmt or "-", "question": qa["question"], "gold": qa["answer"],
                                     "answer": text, "rouge_l": rouge_l(text, qa["answer"]),
                                     "document_tokens": state.stats.document_tokens,
                                     "kept_tokens": state.stats.kept_tokens, "cache_bytes": state.stats.cache_bytes})
                emit(block, rows)
        block = f"{i}|modes"
        if block not in done:
            log(f"paper {i}: parametric, icl, rag and the hybrids")
            rows = []
            for mode in HYBRID_MODES:
                for fmt in (formats if mode.startswith("parametric") else formats[:1]):
                    for qa in qas:
                        a = mem.ask(qa["question"], memories=[names[fmt]], mode=mode, max_new_tokens=max_new_tokens)
                        rows.append({"part": "modes", "mode": mode, "format": fmt if mode.startswith("parametric")
                                     else "-", "question": qa["question"], "gold": qa["answer"], "answer": a.answer,
                                     "rouge_l": rouge_l(a.answer, qa["answer"]), "prompt_tokens": a.prompt_tokens})
            emit(block, rows)
    return write_kv_report(out)


def _mean(rows: list[dict]) -> float:
    return sum(r["rouge_l"] for r in rows) / len(rows)


def write_kv_report(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_jsonl(out / "kv-results.jsonl")
    if not rows:
        raise LoramemError(f"{out}: no kv-results.jsonl rows yet")
    kv = [r for r in rows if r["part"] == "kv"]
    papers = sorted({r["paper"] for r in rows})
    lines = ["# Adapters and compressed KV caches on PaperQA", "",
             f"Papers {papers}; {len({(r['paper'], r['question']) for r in kv})} questions; ROUGE-L F1 "
             "(closed book apart from the cache). RHO = fraction of the document's KV pairs evicted; "
             "phase = when the adapter is on.", ""]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in kv:
        groups[(r["press"], r["phase"], r["format"], r["rho"])].append(r)
    rhos = sorted({r["rho"] for r in kv})
    # "-": no press acts at RHO 0 or 1, so a sweep of only those has no press of its own
    presses = sorted({r["press"] for r in kv if r["press"] != "-"}) or ["-"]
    settings = sorted({(p, f) for (_, p, f, _) in groups})
    lines += ["| press | adapter phase | supervision | " + " | ".join(f"RHO {x:g}" for x in rhos) + " |",
              "|" + "---|" * (3 + len(rhos))]
    for press in presses:
        for phase, fmt in settings:
            cells = []
            for rho in rhos:
                g = groups.get((press if 0 < rho < 1 else "-", phase, fmt, rho))
                cells.append(f"{_mean(g):.3f}" if g else "")
            lines.append(f"| {press} | {phase} | {fmt} | " + " | ".join(cells) + " |")
    def cell(press: str, phase: str, fmt: str, rho: float) -> list[dict] | None:
        return groups.get((press if 0 < rho < 1 else "-", phase, fmt, rho))

    lines += ["", "Adapter gain: ROUGE-L with the adapter minus without it, at the same press and RHO "
              "(mean over the presses).", "",
              "| adapter phase | supervision | " + " | ".join(f"RHO {x:g}" for x in rhos) + " |",
              "|" + "---|" * (2 + len(rhos))]
    for phase, fmt in settings:
        if phase == "none":
            continue
        cells = []
        for rho in rhos:
            gains = [_mean(cell(p, phase, fmt, rho)) - _mean(cell(p, "none", "-", rho)) for p in presses
                     if cell(p, phase, fmt, rho) and cell(p, "none", "-", rho)]
            cells.append(f"{sum(gains) / len(gains):+.3f}" if gains else "")
        lines.append(f"| {phase} | {fmt} | " + " | ".join(cells) + " |")
    kept = defaultdict(list)
    for r in kv:
        if r["phase"] == "none":
            kept[r["rho"]].append((r["kept_tokens"], r["document_tokens"], r["cache_bytes"]))
    lines += ["", "What the cache holds (phase none, mean over papers and presses):", "",
              "| RHO | document tokens kept | of | cache MiB |", "|---|---|---|---|"]
    for rho, v in sorted(kept.items()):
        lines.append(f"| {rho:g} | {sum(k for k, _, _ in v) / len(v):.0f} | {sum(d for _, d, _ in v) / len(v):.0f} | "
                     f"{sum(b for _, _, b in v) / len(v) / 2**20:.1f} |")
    lines.append("")
    modes = [r for r in rows if r["part"] == "modes"]
    if modes:
        lines += ["## Parametric, in-context, retrieval and the hybrids", "", "| mode | supervision | ROUGE-L | prompt tokens |",
                  "|---|---|---|---|"]
        by_mode: dict[tuple, list[dict]] = defaultdict(list)
        for r in modes:
            by_mode[(r["mode"], r["format"])].append(r)
        for (mode, fmt), g in by_mode.items():
            lines.append(f"| {mode} | {fmt} | {_mean(g):.3f} | {sum(r['prompt_tokens'] for r in g) / len(g):.0f} |")
    fig, axes = plt.subplots(1, max(1, len(presses)), figsize=(5.5 * max(1, len(presses)), 4), squeeze=False)
    for ax, press in zip(axes[0], presses):
        for phase, fmt in settings:
            ys = [(_mean(groups[(press if 0 < rho < 1 else "-", phase, fmt, rho)]), rho) for rho in rhos
                  if groups.get((press if 0 < rho < 1 else "-", phase, fmt, rho))]
            label = "no adapter" if phase == "none" else f"{fmt} adapter, {phase}"
            ax.plot([x for _, x in ys], [y for y, _ in ys], marker="o", label=label,
                    linestyle="--" if phase == "none" else "-")
        ax.set_title(press if press != "-" else "RHO 0 and 1 only (no press acts)")
        ax.set_xlabel("RHO (fraction of document KV evicted)")
        ax.set_ylabel("ROUGE-L")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rouge-vs-rho.png", dpi=120)
    plt.close(fig)
    lines += ["", "![ROUGE-L vs RHO](rouge-vs-rho.png)", ""]
    report = out / "kv-report.md"
    report.write_text("\n".join(lines))
    return report
