"""The embedded strong generator (Qwen2.5-Coder-1.5B by llama.cpp): QA from a passage and the offline judge.

Marked `real_generator`: it loads the 1.1 GB model (about 6 s) and decodes on 2 cores.
"""

from __future__ import annotations

import pytest

from loramem.bench.judge import Judge
from loramem.supervision.chunking import Chunk
from loramem.supervision.formats import FORMATS
from loramem.supervision.formats.base import Part
from loramem.supervision.generators import make_generator

pytestmark = pytest.mark.real_generator

PASSAGE = (
    "The harbour of Kessreth was built in 1642 by the merchant Ilse Varnhagen to ship salt from the inland "
    "mines. It has three stone piers and a lighthouse painted green, which was added in 1688 after two ships "
    "were lost on the reef. In 1710 a storm destroyed the eastern pier; the town rebuilt it in granite, "
    "which is why it still stands while the wooden quays of nearby Orlund have rotted away."
)


@pytest.fixture(scope="module")
def generator():
    return make_generator("embedded", lambda: None)


def test_qa_pairs_at_every_level_are_grounded_in_the_passage(generator):
    made = FORMATS.get("qa")().make(Part(Chunk(0, PASSAGE), 1, "The Harbour of Kessreth"), 8, generator, 0)
    qa = [e for e in made.examples if e.kind == "qa"]
    assert len(qa) >= 6, made.note
    # Sampled text differs between CPUs (float order), so the check counts the passage's specifics
    # anywhere in the pairs, questions included, and asks for a third of them.
    text = " ".join(e.prompt + " " + e.target for e in qa)
    facts = ("1642", "Varnhagen", "salt", "three", "green", "1688", "reef", "1710", "granite", "Orlund")
    assert sum(fact in text for fact in facts) >= 4, text


def test_the_offline_judge_scores_gold_answers_above_wrong_ones():
    judge = Judge()  # no URL: the embedded generator, offline
    cases = [
        ("Who built the harbour of Kessreth?", "Ilse Varnhagen, a merchant, built it.",
         "It was built by the merchant Ilse Varnhagen.", "It was built by the Roman army."),
        ("When was the lighthouse added?", "In 1688.", "The lighthouse was added in 1688.",
         "The lighthouse was added in 1920."),
        ("Why does the eastern pier still stand?", "It was rebuilt in granite after the 1710 storm.",
         "Because it was rebuilt in granite after a storm destroyed it in 1710.",
         "Because it is made of wood, which never rots."),
        ("What colour is the lighthouse?", "Green.", "The lighthouse is painted green.", "It is painted red."),
    ]
    gold = judge.score_many([(q, right, ref) for q, right, ref, _ in cases])
    wrong = judge.score_many([(q, bad, ref) for q, _, ref, bad in cases])
    assert all(g["overall"] > w["overall"] for g, w in zip(gold, wrong)), (gold, wrong)
