"""`loramem bench knowledge-base --index-only`: do the routers find a paper's memory for its questions?

Every PaperQA paper becomes one memory of a collection, indexed exactly as `write` indexes it
(its passages and the supervision a write generates for it, generated once and cached in the
store as a write caches it) but not trained: first-stage routers read only the catalogue. N
distractor memories are added the same way from Wikipedia lead paragraphs that ship in a package
(`wiki`). Every gold question is routed by every first-stage router; a hit at k is its own
paper's memory among the router's top k. Rows go to `routes.jsonl`, one per question and router.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from loramem.bench.datasets.base import spread
from loramem.bench.datasets.paperqa import choose_papers, paper_text
from loramem.bench.resume import claim_folder, model_name
from loramem.bench.rows import append_jsonl, read_jsonl
from loramem.errors import LoramemError
from loramem.routing import ROUTERS, first_stage_routers
from loramem.routing.index import memory_index

COLLECTION = "papers"
TOP_K = 3
SCALE_ROUTER = "fused"  # the first stage of auto: what --scale times among thousands of memories


def paper_memory(pid: str) -> str:
    return f"paper-{pid}"


def distractor_memory(i: int) -> str:
    return f"wiki-{i:05d}"


def wiki_documents(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (title, text) Wikipedia lead paragraphs of 40+ words (`wiki`), refused past what the package holds."""
    from loramem.bench.datasets.packaged import load_wiki

    everything = load_wiki(n=None, seed=seed).documents
    if n > len(everything):
        raise LoramemError(f"--distractors takes 0 to {len(everything)} (the Wikipedia paragraphs the wiki "
                           f"package holds); got {n}")
    return [(d.title, d.text) for d in load_wiki(n=n, seed=seed).documents]


def index_memories(mem, documents: Sequence[tuple[str, str, str]], generator: str = "auto",
                   generator_options: dict | None = None, log: Callable[[str], None] = print) -> None:
    """List (name, label, text) documents as index-only memories of COLLECTION, each indexed as a write
    indexes it: its passages and its generated supervision (cached in the store, as a write caches it)."""
    from tqdm.auto import tqdm

    from loramem.store import MemoryRecord
    from loramem.supervision.sources import read_sources

    have = set(mem.store.names())
    todo = [d for d in documents if d[0] not in have]
    entries = []
    for name, label, text in tqdm(todo, desc="indexing", unit="memory", disable=not todo, leave=False):
        sources = read_sources([], documents={label: text})
        sup = mem.supervision(documents={label: text}, generator=generator, generator_options=generator_options)
        record = MemoryRecord(
            name=name, folder=f"adapters/index-only-{name}", source_hash=sources[0].digest, sources=[label],
            base_model="index-only", base_fingerprint="", rank=0, formats=sorted(sup.kinds),
            examples=len(sup.examples), tokens=0, parameters=0, recall=0.0, created="", document=text,
            collection=COLLECTION,
        )
        entries.append((record, memory_index(sources, sup.examples)))
        if len(entries) == 50:  # listed as it goes: an interrupted run keeps what it indexed
            mem.store.add_index_only(entries)
            entries = []
    if entries:
        mem.store.add_index_only(entries)
    if todo:
        log(f"indexed {len(todo)} memories")


def route_questions(mem, questions: Sequence[dict], routers: Sequence[str], top_k: int, owner: dict[str, str],
                    rows_path: Path, log: Callable[[str], None] = print) -> None:
    """Route each question (`paper`, `level`, `question`) with each router; append a row per pair to `rows_path`."""
    from tqdm.auto import tqdm

    done = {(r["router"], r["question"]) for r in read_jsonl(rows_path)}
    for router in routers:
        todo = [q for q in questions if (router, q["question"]) not in done]
        if not todo:
            continue
        mem.route(todo[0]["question"], router, top_k, COLLECTION)  # builds the router's index
        rows = []
        for q in tqdm(todo, desc=router, unit="q", leave=False):
            t = time.perf_counter()
            routes = mem.route(q["question"], router, top_k, COLLECTION)
            ms = (time.perf_counter() - t) * 1000
            rows.append({**q, "router": router, "ms": round(ms, 2),
                         "routes": [{"name": r.name, "score": round(r.score, 4), "paper": owner.get(r.name)}
                                    for r in routes]})
        append_jsonl(rows_path, rows)
        log(f"{router}: routed {len(todo)} questions")


def hit_rates(rows: Sequence[dict]) -> dict:
    """hit@1, hit@3 and p50 ms per router, overall and per level, from routes.jsonl rows."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["router"]].append(r)
    out = {}
    for router, rs in by.items():
        def rates(subset):
            hit = [[route["paper"] == r["paper"] for route in r["routes"]] for r in subset]
            return {"hit_at_1": round(sum(h[:1] == [True] for h in hit) / len(hit), 4),
                    "hit_at_3": round(sum(any(h[:3]) for h in hit) / len(hit), 4)}

        levels = sorted({r["level"] for r in rs})
        out[router] = {**rates(rs), "p50_ms": round(statistics.median(r["ms"] for r in rs), 2),
                       "levels": {str(level): rates([r for r in rs if r["level"] == level]) for level in levels}}
    return out


def run_index_only(data: Path, out: Path, papers: list[int] | None = None, distractors: int = 0,
                   routers: Sequence[str] | None = None, top_k: int = TOP_K, model: str | None = None,
                   generator: str = "auto", generator_options: dict | None = None, scale: Sequence[int] = (),
                   questions: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Index (or resume) the papers and distractors in `out/store`, route every gold question; the results."""
    from loramem.api import Memory

    routers = list(routers) if routers else first_stage_routers()
    for router in routers:
        ROUTERS.get(router)
    all_papers, chosen = choose_papers(data, papers)
    wiki = wiki_documents(distractors)
    if top_k < 1 or top_k > len(chosen) + distractors:
        raise LoramemError(f"--top-k takes 1 to {len(chosen) + distractors} (the memories indexed); got {top_k}")
    claim_folder(out, {"data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(), "papers": chosen,
                       "distractors": distractors, "model": model_name(model), "generator": generator,
                       "top_k": top_k}, filename="index-settings.json")
    mem = Memory(store=out / "store", model=model, progress=True)
    owner = {paper_memory(str(all_papers[i].get("id", i))): str(all_papers[i].get("id", i)) for i in chosen}
    docs = [(paper_memory(str(all_papers[i].get("id", i))), f"paper-{i}.md", paper_text(all_papers[i])) for i in chosen]
    docs += [(distractor_memory(j), f"wiki-{j:05d}.md", f"# {title}\n\n{text}\n") for j, (title, text) in enumerate(wiki)]
    index_memories(mem, docs, generator, generator_options, log)
    questions = [{"paper": str(all_papers[i].get("id", i)), "level": q.get("level"), "question": q["question"]}
                 for i in chosen for q in spread(all_papers[i]["QA"], questions)]
    rows_path = out / "routes.jsonl"
    route_questions(mem, questions, routers, top_k, owner, rows_path, log)
    asked = {(q["paper"], q["question"]) for q in questions}
    rows = [r for r in read_jsonl(rows_path) if r["router"] in routers and (r["paper"], r["question"]) in asked]
    results = {"routers": hit_rates(rows), "papers": len(chosen), "distractors": distractors,
               "questions": len(questions)}
    if scale:
        from loramem.bench.knowledge_base_scale import route_latency

        results["scale"] = route_latency(out / "store", out, [q["question"] for q in questions],
                                         [r for r in routers if r == SCALE_ROUTER] or routers[:1], COLLECTION, scale, log)
    return results
