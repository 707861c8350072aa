"""`loramem bench partitions`: one large LoRA or many small ones, routing and merging (the seed
paper's Q8-Q11).

From N partition files (say sectors of the 128K PhoneBook), the first `entries` records of each:

* are written into one memory per partition (rank r, collection `partitions`), and all of them
  into one memory of rank r x N: the same parameter budget;
* every question (or `questions` per partition, evenly spread) is asked closed book with the
  large memory, with its own partition's memory (the oracle router), and with each router's top 1;
* `merge`: the hybrid router's top `top_k` memories active together, combined by each method;
* `interference`: the question's own memory merged with N-1 others (N = 2 ... `max_merge`; N = 1
  is the oracle).

Rows are appended to `results.jsonl` block by block, so an interrupted run resumes; the settings
they depend on are saved in `settings.json`, and a rerun with other ones is refused
(`loramem.bench.resume`), as is a stored memory written otherwise. `report.md` and
`partitions.png` summarize the rows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from loramem.bench.datasets.base import spread
from loramem.bench.resume import check_reused, claim_folder, model_name
from loramem.bench.rows import append_jsonl, qa_rows, read_jsonl, read_results
from loramem.errors import LoramemError
from loramem.routing import ROUTERS
from loramem.training import TrainConfig

MERGES = ("sum", "linear", "ties", "dare_ties", "svd")  # the study's default: PEFT's methods less the dare_linear variant
LARGE = "one-large"
_PHONE = re.compile(r"^\d{3}-\d{3}-\d{4}$")


def run_partitions(
    files: list[Path], out: Path, entries: int = 24, rank: int = 4, epochs: int = 60, questions: int | None = None,
    routers: Sequence[str] | None = None, merges: Sequence[str] = MERGES, top_k: int = 3, max_merge: int = 4,
    model: str | None = None, device: str | None = None, log: Callable[[str], None] = print,
) -> Path:
    """Run (or resume) the study into `out`; returns the report's path. `routers`: default every registered one."""
    from loramem.api import Memory
    from loramem.bench.metrics import METRICS
    from loramem.supervision.sources import read_source

    routers = ROUTERS.names() if routers is None else list(routers)
    for router in routers:
        ROUTERS.get(router)
    if len(files) < 2:
        raise LoramemError("the partition study needs at least two partition files")
    if not 1 <= top_k <= len(files) or not 1 <= max_merge <= len(files):
        raise LoramemError(f"top-k and the largest merge must lie between 1 and the {len(files)} partitions")
    parts: dict[str, list] = {}
    digests = []
    for i, path in enumerate(files):
        source = read_source(path)
        if not source.records:
            raise LoramemError(f"{path}: partitions must be question-answer records (.csv or .jsonl)")
        parts[f"part-{i:02d}"] = source.records[:entries]
        digests.append(source.digest)
    answers = [r.target for rs in parts.values() for r in rs]
    metric_name = "phone_digits" if all(_PHONE.match(a) for a in answers) else "token_f1"
    metric = METRICS.get(metric_name)
    names = list(parts)
    small, large = TrainConfig(rank=rank, epochs=epochs), TrainConfig(rank=rank * len(names), epochs=epochs)
    training = {k: v for k, v in asdict(small).items() if k not in ("rank", "epochs")}
    claim_folder(out, {"files": [Path(f).name for f in files], "file_sha256": digests, "entries": entries,
                       "rank": rank, "epochs": epochs, "training": training, "questions": questions, "top_k": top_k,
                       "metric": metric_name, "model": model_name(model)}, results=[out / "results.jsonl"])

    mem = Memory(store=out / "store", model=model, device=device, progress=True)
    memories = {name: (qa_rows(parts[name]), small) for name in names}
    memories[LARGE] = ([row for name in names for row in memories[name][0]], large)
    for name, (rows, config) in memories.items():
        if mem.store.exists(name):  # written by an interrupted run of these settings: check, then reuse
            check_reused(mem.show(name), {**asdict(config), "examples": len(rows)}, out)
            continue
        log(f"writing {name} ({len(rows)} records, rank {config.rank}"
            + (": the same parameters as the small ones together)" if name == LARGE else ")"))
        mem.write(records=rows, name=name, collection="" if name == LARGE else "partitions", config=config)

    asked = [(name, r) for name in names for r in spread(parts[name], questions)]
    results = out / "results.jsonl"
    done = {r["block"] for r in read_jsonl(results)}

    def block(key: str, part: str, setting: str, pick: Callable[[str, object], tuple[list[str], str]],
              **extra) -> None:
        if key in done:
            return
        log(f"{part}: {setting}")
        rows = []
        for own, record in asked:
            memories, merge = pick(own, record)
            answer = mem.ask(record.prompt, memories=memories, merge=merge, max_new_tokens=24).answer
            rows.append({"block": key, "part": part, "setting": setting, "own": own, "memories": memories,
                         "hit": own in memories, "question": record.prompt, "gold": record.target,
                         "answer": answer, "score": metric(answer, record.target), **extra})
        append_jsonl(results, rows)

    block("single|large", "single", f"one large memory (rank {rank * len(names)})", lambda own, r: ([LARGE], "sum"))
    block("single|oracle", "single", "oracle router", lambda own, r: ([own], "sum"))
    for router in routers:
        block(f"single|{router}", "single", f"{router} router",
              lambda own, r, router=router: ([x.name for x in mem.route(r.prompt, router, 1, "partitions")], "sum"))
    if top_k > 1:
        for method in merges:
            block(f"merge|{method}", "merge", f"hybrid top-{top_k}, {method}",
                  lambda own, r, m=method: ([x.name for x in mem.route(r.prompt, "hybrid", top_k, "partitions")], m),
                  method=method)
    for method in merges:
        for n in range(2, max_merge + 1):  # N = 1 is the oracle row
            others = lambda own, n=n: [names[(names.index(own) + j) % len(names)] for j in range(1, n)]  # noqa: E731
            block(f"interference|{method}|{n}", "interference", f"own + {n - 1} others, {method}",
                  lambda own, r, m=method, others=others: ([own, *others(own)], m), method=method, merged=n)
    return write_partitions_report(out)


def _mean(rows: list[dict], key=lambda r: r["score"]) -> float:
    return sum(key(r) for r in rows) / len(rows)


def _digits(r: dict) -> float:
    from loramem.bench.metrics import phone_digit_share

    return phone_digit_share(r["answer"], r["gold"])


def write_partitions_report(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, settings = read_results(out)
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["part"], r["setting"])].append(r)
    questions = len({(r["own"], r["question"]) for r in rows})
    phones = settings["metric"] == "phone_digits"  # then also the share of digits in place: a graded view
    graded = " | digits in place" if phones else ""
    lines = ["# One large memory or many small ones: routing and merging", "",
             f"{len(settings['files'])} partitions x {settings['entries']} records, rank {settings['rank']} each "
             f"(the large memory: rank {settings['rank'] * len(settings['files'])}), at most {settings['epochs']} "
             f"epochs; {questions} questions; metric {settings['metric']}.", "",
             f"| part | setting | accuracy{graded} | own memory among those used |",
             "|---|---|---|---|" + ("---|" if phones else "")]
    for (part, setting), g in by.items():
        if part != "interference":
            hit = "-" if g[0]["memories"] == [LARGE] else f"{sum(r['hit'] for r in g) / len(g):.1%}"
            digits = f" | {_mean(g, _digits):.3f}" if phones else ""
            lines.append(f"| {part} | {setting} | {_mean(g):.3f}{digits} | {hit} |")
    # method -> N -> (accuracy, digits in place or None); N = 1 is the oracle row
    curves: dict[str, dict[int, tuple[float, float | None]]] = defaultdict(dict)
    oracle = by.get(("single", "oracle router"))
    for (part, _), g in by.items():
        if part == "interference":
            for n, rs in ((g[0]["merged"], g), (1, oracle)):
                if rs:
                    curves[g[0]["method"]][n] = (_mean(rs), _mean(rs, _digits) if phones else None)
    if curves:
        ns = sorted({n for c in curves.values() for n in c})
        lines += ["", "Interference: the question's own memory merged with N-1 others"
                  + (" (in brackets: the share of digits in place)." if phones else "."), "",
                  "| method | " + " | ".join(f"N={n}" for n in ns) + " |", "|" + "---|" * (len(ns) + 1)]
        for method, c in curves.items():
            cells = [f"{c[n][0]:.3f}" + (f" ({c[n][1]:.2f})" if phones else "") if n in c else "" for n in ns]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for method, c in curves.items():  # plotted: digits in place, else the metric
            xs = sorted(c)
            ax.plot(xs, [c[x][1] if phones else c[x][0] for x in xs], marker="o", label=method)
        ax.set_xlabel("memories merged (own + others)")
        ax.set_ylabel("share of phone digits in place" if phones else settings["metric"])
        ax.set_xticks(ns)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "partitions.png", dpi=120)
        plt.close(fig)
        lines += ["", "![accuracy vs memories merged](partitions.png)"]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
