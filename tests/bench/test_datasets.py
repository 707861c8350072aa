"""Dataset loaders on the shared data and on the packages that ship real facts."""

from pathlib import Path

import pytest

from loramem.bench.datasets import DATASETS, generate_phonebook
from loramem.errors import LoramemError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lora-knowledge-memory"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared data not beside the repository")


def test_generated_phonebook_is_seeded_and_unique():
    a, b = generate_phonebook(300, seed=4), generate_phonebook(300, seed=4)
    assert a == b and len({e.prompt for e in a}) == 300
    assert generate_phonebook(300, seed=5) != a
    d = DATASETS.get("phonebook")(n=12, seed=1)
    assert len(d.records) == len(d.questions) == 12 and d.metric == "phone_digits"
    with pytest.raises(LoramemError, match="needs a size"):
        DATASETS.get("phonebook")()


@needs_shared
def test_shared_phonebook_counterfact_and_paperqa():
    pb = DATASETS.get("phonebook")(size="1K", data=str(SHARED))
    assert len(pb.records) == 48 and pb.records[0].target.count("-") == 2 and pb.records[0].prompt.endswith("?")
    cf = DATASETS.get("counterfact")(size="1K", data=str(SHARED))
    assert len(cf.documents) > 100 and len(cf.questions) > 90
    statements = {d.text for d in cf.documents}
    assert all(f"{q.question} {q.answer}" in statements for q in cf.questions)
    cf_qa = DATASETS.get("counterfact")(size="1K", data=str(SHARED), form="qa")  # the same edits as records
    assert not cf_qa.documents and [(r.prompt, r.target) for r in cf_qa.records] == [
        (q.question, q.answer) for q in cf.questions]
    with pytest.raises(LoramemError, match="raw or qa"):
        DATASETS.get("counterfact")(size="1K", data=str(SHARED), form="cloze")
    pq = DATASETS.get("paperqa")(papers=[0, 2], data=str(SHARED))
    assert len(pq.documents) == 2 and len(pq.questions) == 60 and {q.meta["level"] for q in pq.questions} == {1, 2, 3}
    with pytest.raises(LoramemError, match="not found"):
        DATASETS.get("phonebook")(size="1K", data="/nonexistent")


def test_packaged_real_facts():
    wiki = DATASETS.get("wiki")(n=3, seed=0)
    assert len(wiki.documents) == 3 and all(len(d.text.split()) >= 40 for d in wiki.documents)
    countries = DATASETS.get("countries")(n=400, seed=0)
    capitals = {q.question: q.answer for q in countries.questions}
    assert capitals.get("What is the capital of France?") == "Paris"
    fanout = DATASETS.get("fanoutqa")(n=20, seed=0)
    assert len(fanout.questions) == 20 and all(q.question and 0 < len(q.answer.split()) <= 6 for q in fanout.questions)
