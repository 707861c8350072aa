"""How well does the likelihood gain pick a paper's memory? The measurement behind rerank.py's CANDIDATES.

Usage (a store whose collection holds one written memory per paper, named paper-<id>, as
`loramem bench knowledge-base` writes them):

    python benchmarks/knowledge-base/rerank_gains.py --store DIR/store \
        --data ../shared/data/lora-knowledge-memory/paperqa/paperQA_dev.json

For every gold question it takes the fused ranking of all memories, whether its four channels
agree, and every memory's gain (one batched forward of all adapters), then prints hit@1 of the
fused router, of the gain alone, and of rerank's cascade with 2 to 5 candidates.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    from loramem.api import Memory
    from loramem.routing.fused import FusedRouter
    from loramem.routing.rerank import RerankRouter

    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--collection", default="papers")
    args = ap.parse_args()
    mem = Memory(store=args.store, progress=False)
    names = mem.store.names(args.collection)
    papers = [p for p in json.load(open(args.data)) if f"paper-{p['id']}" in names]
    names = [f"paper-{p['id']}" for p in papers]
    questions = [(i, q["question"]) for i, p in enumerate(papers) for q in p["QA"]]
    fused = FusedRouter(mem.store)
    rerank = RerankRouter(mem.store, mem)
    rank = np.zeros((len(questions), len(names)), int)
    gains = np.zeros((len(questions), len(names)))
    agree = np.zeros(len(questions), bool)
    for j, (_, q) in enumerate(questions):
        top, parts = fused.rankings(q, len(names), args.collection)
        for r, route in enumerate(top):
            rank[j, names.index(route.name)] = r
        agree[j] = all(p[0].name == top[0].name for p in parts)
        gains[j] = rerank.gains(q, names)
    gold = np.array([i for i, _ in questions])
    first = rank.argmin(1)
    print(f"{len(questions)} questions, {len(names)} memories; channels agree on {agree.mean():.1%}")
    print(f"fused hit@1 {(first == gold).mean():.3f}; gain alone {(gains.argmax(1) == gold).mean():.3f}")
    for m in range(2, 6):
        candidates = np.argsort(rank, 1)[:, :m]
        pick = candidates[np.arange(len(gold)), np.take_along_axis(gains, candidates, 1).argmax(1)]
        print(f"rerank {m} candidates: hit@1 {(np.where(agree, first, pick) == gold).mean():.3f}")


if __name__ == "__main__":
    main()
