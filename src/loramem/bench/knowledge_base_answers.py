"""`loramem bench knowledge-base` (full run): a collection of paper memories asked without naming one.

One memory per chosen paper is written into the collection `papers` with default settings,
batched as `write --collection` writes them, and one memory of all of them at the rank of all
of them together (the seed's Q8: the same parameters). Every gold question is then answered in
each arm: the base model; the oracle (its own paper's memory); each router's top 1 (abstaining
where the router does); the `auto` top k combined by each merge method; `parametric+rag` over the
routed memories; `rag` over the whole collection's documents; `icl` with the oracle document;
the single large memory; and the own memory merged with N-1 others (Q11). The data file's
papers left out of `--papers` are asked with `auto` too: the collection does not hold them,
so the right outcome is to abstain.

Rows are appended to `results.jsonl` block by block (resumable); `report.md` and
`knowledge-base.png` summarize them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from loramem.bench.datasets.base import spread
from loramem.bench.datasets.paperqa import choose_papers, paper_text
from loramem.bench.knowledge_base import COLLECTION, TOP_K, paper_memory
from loramem.bench.metrics import rouge_l
from loramem.bench.resume import check_reused, claim_folder, model_name
from loramem.bench.rows import append_jsonl, read_jsonl
from loramem.errors import LoramemError
from loramem.routing import ROUTERS, resolve_router
from loramem.training import TrainConfig
from loramem.training.config import DEFAULT_BATCH_MEMORIES

LARGE = "all-papers"  # Q8: one memory of every paper, rank x papers
MERGES = ("sum", "ties")
MAX_MERGE = 5
MAX_NEW_TOKENS = 64


def write_collection(mem, papers: dict[str, str], config: TrainConfig, made_by: dict,
                     log: Callable[[str], None]) -> None:
    """Each (memory name → document) into the collection, batched."""
    from loramem.write_many import write_many

    todo = {n: t for n, t in papers.items() if not mem.store.exists(n)}
    for name in set(papers) - set(todo):
        check_reused(mem.show(name), asdict(config))
    if todo:
        log(f"writing {len(todo)} paper memories into collection {COLLECTION!r} (batched)")
        write_many(mem, [dict(documents={f"{n}.md": t}, name=n, collection=COLLECTION, config=config,
                              **made_by) for n, t in todo.items()], DEFAULT_BATCH_MEMORIES)


def write_large(mem, papers: dict[str, str], config: TrainConfig, made_by: dict, log: Callable[[str], None]) -> None:
    """One memory of every paper at the rank of all the paper memories together (the seed's Q8)."""
    large = TrainConfig(**{**asdict(config), "rank": config.rank * len(papers)})
    if mem.store.exists(LARGE):
        check_reused(mem.show(LARGE), asdict(large))
    else:
        log(f"writing {LARGE} (rank {large.rank}: the parameters of the {len(papers)} paper memories together)")
        # resume: a run stopped in this long write continues from its last epoch's checkpoint
        mem.write(documents={f"{n}.md": t for n, t in papers.items()}, name=LARGE, config=large, resume=True,
                  **made_by)


def run_answers(data: Path, out: Path, papers: list[int] | None = None, routers: Sequence[str] | None = None,
                merges: Sequence[str] = MERGES, top_k: int = TOP_K, config: TrainConfig | None = None,
                model: str | None = None, generator: str = "auto", generator_options: dict | None = None, judge=None,
                scale: Sequence[int] = (), questions: int | None = None,
                log: Callable[[str], None] = print) -> Path:
    """Write (or reuse) the collection in `out/store`, answer every arm; returns the report's path.

    `questions`: at most this many per paper, evenly spread over the levels, in the blocks not yet
    answered (a resumed run may ask fewer; the report compares each arm with the oracle memory on
    the questions the arm asked)."""
    from loramem.api import Memory
    from loramem.merges import check_merge

    config = config or TrainConfig()
    all_papers, chosen = choose_papers(data, papers)
    if len(chosen) < 2:
        raise LoramemError("a knowledge base needs at least two papers (--papers)")
    routers = list(routers) if routers else ["auto", *(r for r in ROUTERS.names() if r != resolve_router("auto"))]
    merges = [check_merge(m) for m in merges]
    if not 1 <= top_k <= len(chosen):
        raise LoramemError(f"--top-k takes 1 to {len(chosen)} (the papers in the collection); got {top_k}")
    claim_folder(out, {"data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(), "papers": chosen,
                       "training": asdict(config), "model": model_name(model), "generator": generator,
                       "top_k": top_k}, results=[out / "results.jsonl"])
    mem = Memory(store=out / "store", model=model, progress=True)
    pid = {i: str(all_papers[i].get("id", i)) for i in range(len(all_papers))}
    names = {i: paper_memory(pid[i]) for i in chosen}
    documents = {names[i]: paper_text(all_papers[i]) for i in chosen}
    made_by = dict(generator=generator, generator_options=generator_options)
    write_collection(mem, documents, config, made_by, log)
    for router in routers:
        mem.route("warm up", router, 1, COLLECTION)  # unknown names fail before any answer; indexes built

    asked = [(i, qa) for i in chosen for qa in spread(all_papers[i]["QA"], questions)]
    held_out = [(i, qa) for i in range(len(all_papers)) if i not in chosen for qa in spread(all_papers[i]["QA"], questions)]
    results = out / "results.jsonl"
    done = {r["block"] for r in read_jsonl(results)}
    order = list(names.values())

    def block(key: str, arm: str, pick: Callable[[int, str], dict], questions=asked, **extra) -> None:
        """Answer `questions` with the ask arguments `pick(paper, question)` gives; one row each."""
        if key in done:
            return
        log(f"{arm}: {len(questions)} questions")
        rows = []
        for i, qa in questions:
            t = time.perf_counter()
            answer = mem.ask(qa["question"], max_new_tokens=MAX_NEW_TOKENS, **pick(i, qa["question"]))
            own = names.get(i)
            rows.append({"block": key, "arm": arm, "paper": pid[i], "level": qa.get("level"),
                         "question": qa["question"], "gold": qa["answer"], "answer": answer.answer,
                         "memories": answer.memories, "routes": answer.routes, "abstained": answer.abstained,
                         "hit": own in answer.memories if own else None, "rouge_l": rouge_l(answer.answer, qa["answer"]),
                         "seconds": round(time.perf_counter() - t, 3), **extra})
        append_jsonl(results, rows)

    # The arms the targets read come first, so that an interrupted run has them.
    block("base", "base model", lambda i, q: {"mode": "base"})
    block("oracle", "oracle memory", lambda i, q: {"memories": [names[i]]})
    for router in routers[:1]:
        block(f"routed|{router}", f"{router} top 1", lambda i, q, r=router: {"route": r, "collection": COLLECTION},
              router=router)
    if held_out:
        block("held-out|auto", "auto top 1, papers outside the collection",
              lambda i, q: {"route": "auto", "collection": COLLECTION}, questions=held_out, router="auto")
    block("rag|collection", "rag over the collection", lambda i, q: {"memories": order, "mode": "rag"})
    block("parametric+rag|routed", f"parametric+rag, auto top {top_k}",
          lambda i, q: {"route": "auto", "top_k": top_k, "mode": "parametric+rag", "collection": COLLECTION})
    if top_k > 1:  # the top k's adapters are summed: also the routed memory alone, as the seed pairs one with rag
        block("parametric+rag|routed-1", "parametric+rag, auto top 1",
              lambda i, q: {"route": "auto", "top_k": 1, "mode": "parametric+rag", "collection": COLLECTION})
    block("icl", "icl, oracle document", lambda i, q: {"memories": [names[i]], "mode": "icl"})
    for router in routers[1:]:
        block(f"routed|{router}", f"{router} top 1", lambda i, q, r=router: {"route": r, "collection": COLLECTION},
              router=router)
    for method in merges:
        block(f"merge|{method}", f"auto top {top_k}, {method}",
              lambda i, q, m=method: {"route": "auto", "top_k": top_k, "merge": m, "collection": COLLECTION},
              method=method)
    for method in merges:
        for n in range(2, min(MAX_MERGE, len(order)) + 1):
            def others(i, n=n):
                at = order.index(names[i])
                return [order[(at + j) % len(order)] for j in range(n)]

            block(f"interference|{method}|{n}", f"own + {n - 1} others, {method}",
                  lambda i, q, m=method, o=others: {"memories": o(i), "merge": m}, method=method, merged=n)
    from loramem.bench.knowledge_base_scale import route_latency

    route_latency(out / "store", out, [qa["question"] for _, qa in asked], ["auto"], COLLECTION, scale, log)
    if "large" not in done:  # last: it trains as long as all the paper memories together
        write_large(mem, documents, config, made_by, log)
        block("large", f"one memory of all papers (rank {config.rank * len(chosen)})", lambda i, q: {"memories": [LARGE]})
    if judge is not None:
        from loramem.bench.formats import judge_results

        judge_results(results, judge, log=log)
    from loramem.bench.knowledge_base_report import write_report

    return write_report(out)
