"""Routers pick the memory that holds the answer; embeddings are stored at write time."""

import json

import numpy as np
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import LoramemError
from loramem.training import TrainConfig

TOPICS = {
    "harbour": [("When was the harbour of Kessreth built?", "1642"), ("Who built the harbour of Kessreth?", "Ilse Varnhagen")],
    "orchestra": [("Who conducts the Velmont orchestra?", "Oda Brightwater"),
                  ("How many violinists play in the Velmont orchestra?", "twenty")],
    "volcano": [("How tall is Mount Ferrox?", "3,120 metres"), ("When did Mount Ferrox last erupt?", "1887")],
}


@pytest.fixture(scope="module")
def routed(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("routing")
    mem = Memory(store=root / "store", model=str(tiny_model_dir), progress=False)
    for name, rows in TOPICS.items():
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
        mem.write([path], name=name, config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    return mem


def test_embeddings_are_stored_at_write_time(routed):
    vectors = routed.store.embeddings()
    assert set(vectors) == set(TOPICS) and all(v.shape == (2, 384) for v in vectors.values())
    assert np.allclose(np.linalg.norm(vectors["harbour"].astype(np.float32), axis=1), 1.0, atol=1e-2)


def test_onnx_encoder_gives_the_sentence_transformers_vectors():
    from loramem.retrieval.encoder import encoder, sentence_transformer

    texts = ["What is the phone number of Ada Byron?", "a passage of many words " * 80, "x"]  # 1 token .. truncated
    fast = encoder()
    assert fast.backend == "onnxruntime"
    reference = sentence_transformer().encode(texts, normalize_embeddings=True)
    got = fast(texts)
    assert got.shape == (3, 384) and got.dtype == np.float32
    assert np.all(np.sum(got * reference, axis=1) > 0.9999)
    assert fast([]).shape == (0, 384)


@pytest.mark.parametrize("router", ["embedding", "bm25", "hybrid", "fused", "rerank", "auto"])
def test_routers_find_the_memory_that_holds_the_answer(routed, router):
    questions = {"harbour": "Who built the harbour in Kessreth?", "orchestra": "Which conductor leads the Velmont orchestra?",
                 "volcano": "What is the height of Mount Ferrox?"}
    for expected, question in questions.items():
        routes = routed.route(question, router, top_k=2)
        assert routes[0].name == expected and len(routes) == 2 and routes[0].score >= routes[1].score
        assert routes[1].name != expected and routes[1].name in TOPICS


def test_ask_routes_and_reports_the_routes(routed):
    answer = routed.ask("When did Mount Ferrox last erupt?", route="auto", top_k=2)
    assert answer.memories[0] == "volcano" and len(answer.memories) == 2 and answer.mode == "parametric"
    assert [r["name"] for r in answer.routes] == answer.memories


def test_routing_errors(routed):
    with pytest.raises(LoramemError, match="top-k must be between 1 and the 3 memories in the store"):
        routed.route("Who?", "auto", top_k=4)
    with pytest.raises(LoramemError, match="unknown router 'bm26'.*Did you mean 'bm25'"):
        routed.route("Who?", "bm26")
    with pytest.raises(LoramemError, match="either --memory names or --route"):
        routed.ask("Who?", memories=["volcano"], route="auto")


def test_forget_removes_the_embedding(tmp_path, tiny_model_dir):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    for name in ("harbour", "orchestra", "volcano"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in TOPICS[name]))
        mem.write([path], name=name, config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    assert mem.route("Velmont orchestra conductor", "embedding", top_k=1)[0].name == "orchestra"
    mem.forget("orchestra")
    assert set(mem.store.embeddings()) == {"harbour", "volcano"}
    assert {r.name for r in mem.route("Velmont orchestra conductor", "embedding", top_k=2)} == {"harbour", "volcano"}


def test_bm25_ranks_every_memory_when_one_long_memory_matches_most(tmp_path, tiny_model_dir):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    train = TrainConfig(**{**FAST_TRAIN, "epochs": 1})
    filler = " ".join(f"word{j}" for j in range(12))  # each record within the tiny model's 512-token window
    long_rows = [{"question": f"What did ship {i} carry?",
                  "answer": f"Ship {i} carried salt from the harbour of Kessreth. {filler} Kessreth harbour {filler}"}
                 for i in range(70)]  # ~70 passages, each sharing two words with the question
    rows = {"a-long": long_rows,
            "b-unrelated": [{"question": "How tall is Mount Ferrox?", "answer": "3,120 metres"}],
            "c-related": [{"question": "Who is the harbour master?", "answer": "Oda Brightwater"}]}  # one word shared
    for name, records in rows.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        mem.write([path], name=name, config=train)
    routes = mem.route("Which harbour is Kessreth?", "bm25", top_k=3)
    assert [r.name for r in routes] == ["a-long", "c-related", "b-unrelated"]
    assert routes[1].score > 0 and routes[2].score == 0


def test_collections_split_records_and_restrict_routing(tmp_path, tiny_model_dir):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    rows = [(q, a) for topic in TOPICS.values() for q, a in topic]  # 6 records, 2 per topic in order
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
    train = TrainConfig(**{**FAST_TRAIN, "epochs": 1})
    written = mem.write_collection([path], "atlas", split=3, config=train)
    assert [w.record.name for w in written] == ["atlas-00", "atlas-01", "atlas-02"]
    assert [w.record.examples for w in written] == [2, 2, 2] and {w.record.collection for w in written} == {"atlas"}
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"question": "Who built the harbour of Kessreth?", "answer": "Ilse Varnhagen"}) + "\n")
    mem.write([outside], name="outside", config=train)
    assert mem.route("Who built the harbour of Kessreth?", "embedding", 1, collection="atlas")[0].name == "atlas-00"
    assert mem.route("How tall is Mount Ferrox?", "bm25", 1, collection="atlas")[0].name == "atlas-02"
    assert {r.name for r in mem.route("harbour", "hybrid", 4)} == {"atlas-00", "atlas-01", "atlas-02", "outside"}
    with pytest.raises(LoramemError, match="between 1 and the 3 memories in collection 'atlas'"):
        mem.route("Who?", "auto", 4, collection="atlas")
    with pytest.raises(LoramemError, match="cannot split 6 records into 7"):
        mem.write_collection([path], "atlas2", split=7, config=train)
    per_doc = mem.write_collection([path, outside], "docs", config=train)
    assert [w.record.name for w in per_doc] == ["docs-all", "docs-outside"]


def test_a_routed_question_no_memory_holds_is_answered_without_one(routed):
    unheld = "What is the boiling point of mercury at sea level?"
    answer = routed.ask(unheld, route="auto")
    assert answer.abstained and answer.memories == [] and answer.mode == "base" and answer.routes
    assert routed.ask(unheld, route="auto", abstain="never").memories == [answer.routes[0]["name"]]
    by_rag = routed.ask(unheld, route="auto", abstain="rag")
    assert by_rag.abstained and by_rag.mode == "rag" and sorted(by_rag.memories) == sorted(TOPICS)
    held = routed.ask("Who built the harbour of Kessreth?", route="auto")
    assert not held.abstained and held.memories == ["harbour"]
    with pytest.raises(LoramemError, match="abstain must be one of base, rag, never"):
        routed.ask(unheld, route="auto", abstain="sometimes")
