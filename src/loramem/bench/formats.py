"""Which supervision format stores a paper best? Closed-book ROUGE-L on PaperQA questions.

For each paper, its introduction is written into one memory per format (same rank, seed and
training budget), then every gold question is asked with that memory alone (no document in
context) and the answer scored with ROUGE-L F1 against the gold answer. The base model with no
memory is the floor. Rows are appended to `results.jsonl` as each (paper, format) finishes,
so an interrupted run resumes where it stopped; the settings they depend on are saved in
`settings.json`, and a rerun with other ones is refused (`loramem.bench.resume`). Papers and
formats may grow.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from loramem.bench.datasets.paperqa import choose_papers, paper_text
from loramem.bench.metrics import rouge_l
from loramem.bench.resume import claim_folder, model_name
from loramem.bench.rows import append_jsonl, read_jsonl
from loramem.modes import default_mode
from loramem.training import TrainConfig

BASELINE = "base (no memory)"


def _done(results: Path) -> set[tuple[str, str]]:
    return {(r["paper"], r["format"]) for r in read_jsonl(results)}


def memory_name(i: int, fmt: str) -> str:
    """The memory of paper `i` written with format `fmt` (bench kv reuses these by name)."""
    return f"paper-{i}-{''.join(c if c.isalnum() else '-' for c in fmt)}"


def run_format_comparison(
    data: Path, out: Path, formats: list[str], papers: list[int] | None = None,
    config: TrainConfig | None = None, model: str | None = None, device: str | None = None,
    generator: str = "auto", generator_options: dict | None = None, log: Callable[[str], None] = print,
    judge=None,
) -> list[dict]:
    """Run (or resume) the comparison into `out`; returns the summary rows.

    With a `judge` (loramem.bench.judge.Judge), every answer is also graded by the rubric judge.
    """
    from loramem.api import Memory

    all_papers, chosen = choose_papers(data, papers)
    config = config or TrainConfig(epochs=20)
    results = out / "results.jsonl"
    claim_folder(out, {"data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(), "training": asdict(config),
                       "model": model_name(model), "generator": generator, "generator_options": generator_options or {}},
                 results=[results])
    done = _done(results)
    mem = Memory(store=out / "store", model=model, device=device, progress=True)
    for i in chosen:
        paper = all_papers[i]
        pid = str(paper.get("id", i))
        doc = {f"paper-{i}.md": paper_text(paper)}
        for fmt in [BASELINE, *formats]:
            if (pid, fmt) in done:
                continue
            write = {}
            memories: list[str] = []
            if fmt != BASELINE:
                name = memory_name(i, fmt)
                log(f"paper {i} ({paper['title'][:50]}): writing with format {fmt}")
                w = mem.write(documents=doc, name=name, format=fmt, config=config, replace=True, generator=generator,
                              generator_options=generator_options)
                write = {"examples": w.record.examples, "kinds": w.kinds, "epochs": w.epochs,
                         "recall": w.record.recall, "write_s": round(w.seconds, 1), "tokens": w.record.tokens}
                memories = [name]
            log(f"paper {i}: asking {len(paper['QA'])} questions ({fmt})")
            tick = time.perf_counter()
            rows = []
            for qa in paper["QA"]:
                answer = mem.ask(qa["question"], memories=memories, mode=default_mode(bool(memories))).answer
                rows.append({"paper": pid, "title": paper["title"], "format": fmt, "level": qa.get("level"),
                             "question": qa["question"], "gold": qa["answer"], "answer": answer,
                             "rouge_l": rouge_l(answer, qa["answer"]), **write})
            log(f"paper {i}: {fmt}: ROUGE-L {sum(r['rouge_l'] for r in rows) / len(rows):.3f} "
                f"({time.perf_counter() - tick:.0f} s to answer)")
            append_jsonl(results, rows)
    if judge is not None:
        judge_results(results, judge, log=log)
    summary = summarize(results, [BASELINE, *formats])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def judge_results(results: Path, judge, batch: int = 32, log: Callable[[str], None] = print) -> int:
    """Grade every row of `results` that has no `judge` score yet (0-10, the rubric's mean); resumable.

    The file is rewritten atomically after each batch, so an interrupted pass keeps what it graded.
    """
    import os

    rows = read_jsonl(results)
    todo = [r for r in rows if "judge" not in r]
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        for r, scores in zip(part, judge.score_many([(r["question"], r["answer"], r["gold"]) for r in part])):
            r["judge"] = round(scores["overall"], 3)
        tmp = results.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, results)
        log(f"judge: graded {min(start + batch, len(todo))} of {len(todo)} answers")
    return len(todo)


def summarize(results: Path, formats: list[str]) -> list[dict]:
    rows = read_jsonl(results)
    by_format: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_format[r["format"]].append(r)
    summary = []
    for fmt in formats:
        rs = by_format.get(fmt, [])
        if not rs:
            continue
        levels = sorted({r["level"] for r in rs if r["level"] is not None})
        per_paper = {}
        for r in rs:
            per_paper.setdefault(r["paper"], r)
        summary.append({
            "format": fmt,
            "papers": len(per_paper),
            "questions": len(rs),
            "rouge_l": sum(r["rouge_l"] for r in rs) / len(rs),
            **({"judge": sum(r["judge"] for r in rs) / len(rs)} if all("judge" in r for r in rs) else {}),
            **{f"rouge_l_level_{lv}": sum(r["rouge_l"] for r in rs if r["level"] == lv)
               / max(1, sum(r["level"] == lv for r in rs)) for lv in levels},
            "examples_per_paper": sum(r.get("examples", 0) for r in per_paper.values()) / len(per_paper),
            "write_s_per_paper": sum(r.get("write_s", 0) for r in per_paper.values()) / len(per_paper),
            "recall": sum(r.get("recall", 0) for r in per_paper.values()) / len(per_paper) if fmt != BASELINE else None,
        })
    return summary


def summary_markdown(summary: list[dict]) -> str:
    levels = sorted({k for s in summary for k in s if k.startswith("rouge_l_level_")})
    judged = any("judge" in s for s in summary)
    head = ["format", "papers", "questions", "ROUGE-L", *[f"level {k.rsplit('_', 1)[1]}" for k in levels],
            *(["judge (0-10)"] if judged else []), "examples/paper", "write s/paper", "read-back recall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = [s["format"], str(s["papers"]), str(s["questions"]), f"{s['rouge_l']:.3f}",
                 *[f"{s.get(k, 0):.3f}" for k in levels],
                 *([f"{s['judge']:.2f}" if "judge" in s else ""] if judged else []), f"{s['examples_per_paper']:.0f}",
                 f"{s['write_s_per_paper']:.0f}", "" if s["recall"] is None else f"{s['recall']:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
