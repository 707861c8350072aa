"""Answer modes: rag and the hybrids choose context and adapters; kv reads the document through a
compressed cache with the adapter in the chosen phases, reports what it kept, and restores the model."""

import json

import pytest
import torch

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import LoramemError
from loramem.modes import MODES
from loramem.retrieval import chunk_passages, retrieve
from loramem.training import TrainConfig

FILLER = "the quick brown fox jumps over the lazy dog " * 20
DOCUMENT = (f"{FILLER}. The lighthouse of Kessreth is painted green. {FILLER}. "
            f"Ada Byron has the phone number 555-010-1234. {FILLER}.")
QUESTION = "What is the phone number of Ada Byron?"


@pytest.fixture(scope="module")
def mem(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("modes")
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    facts = folder / "facts.jsonl"
    facts.write_text(json.dumps({"question": QUESTION, "answer": "555-010-1234"}) + "\n")
    assert mem.write([facts], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 200})).record.recall == 1.0
    doc = folder / "kessreth.txt"
    doc.write_text(DOCUMENT)
    mem.write([doc], name="doc", format="raw", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    return mem


def test_retrieval_finds_the_passage_in_document_order():
    passages = chunk_passages(DOCUMENT, words=30)
    assert len(passages) > 4 and all(len(p.split()) <= 30 for p in passages)
    for retriever in ("bm25", "embedding"):
        best = retrieve(QUESTION, passages, 2, retriever)
        assert best == sorted(best) and any("555-010-1234" in passages[i] for i in best), retriever
    with pytest.raises(LoramemError, match="unknown retriever"):
        retrieve(QUESTION, passages, 1, "grep")


def test_rag_and_hybrid_plans(mem):
    record = mem.show("doc")
    rag = MODES.get("rag")(rag_top_k=1).plan([record], QUESTION)
    assert "555-010-1234" in rag.context and rag.adapters == [] and len(rag.context) < len(DOCUMENT) / 3
    hybrid = MODES.get("parametric+rag")(rag_top_k=1).plan([record], QUESTION)
    assert hybrid.context == rag.context and hybrid.adapters == [record]
    both = MODES.get("parametric+icl")().plan([record], QUESTION)
    assert both.context == DOCUMENT and both.adapters == [record]
    icl = mem.ask(QUESTION, memories=["doc"], mode="icl")
    retrieved = mem.ask(QUESTION, memories=["doc"], mode="rag", mode_options={"rag_top_k": 1})
    assert retrieved.prompt_tokens < icl.prompt_tokens
    with pytest.raises(LoramemError, match="takes no option press"):
        mem.ask(QUESTION, memories=["doc"], mode="rag", mode_options={"press": "knorm"})


def test_kv_without_compression_matches_icl(mem):
    icl = mem.ask(QUESTION, memories=["doc"], mode="icl", max_new_tokens=12)
    kv = mem.ask(QUESTION, memories=["doc"], mode="kv", max_new_tokens=12,
                 mode_options={"compression": 0.0, "adapter_phase": "none"})
    assert kv.answer == icl.answer
    assert kv.kv["kept_tokens"] == kv.kv["document_tokens"] > 100


@pytest.mark.parametrize("press", ["knorm", "random", "streaming_llm", "snapkv", "expected_attention"])
def test_presses_evict_the_fraction_asked_and_restore_the_model(mem, press):
    model = mem.base.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = sorted(name for name, _ in model.named_modules())
    answer = mem.ask(QUESTION, memories=["doc"], mode="kv", mode_options={"press": press, "compression": 0.75})
    kv = answer.kv
    assert kv["kept_tokens"] == pytest.approx(kv["document_tokens"] * 0.25, abs=2)
    full = mem.ask(QUESTION, memories=["doc"], mode="kv", mode_options={"press": press, "compression": 0.0}).kv
    assert kv["cache_bytes"] == pytest.approx(full["cache_bytes"] * kv["kept_tokens"] / full["kept_tokens"])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(name for name, _ in model.named_modules()) == modules  # nothing left attached
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_adapter_phases_with_no_document_left(mem):
    ask = lambda phase: mem.ask(QUESTION, memories=["facts"], mode="kv",  # noqa: E731
                                mode_options={"compression": 1.0, "adapter_phase": phase})
    with_adapter, without = ask("decode"), ask("none")
    assert with_adapter.answer == "555-010-1234" and without.answer != "555-010-1234"
    assert with_adapter.kv["kept_tokens"] == 0 and with_adapter.kv["cache_bytes"] == 0
    assert ask("prefill+decode").answer == "555-010-1234"


def test_kv_bad_settings(mem):
    with pytest.raises(LoramemError, match="unknown press 'zip'; valid: expected_attention, snapkv"):
        mem.ask(QUESTION, memories=["doc"], mode="kv", mode_options={"press": "zip"})
    with pytest.raises(LoramemError, match="between 0 and 1"):
        mem.ask(QUESTION, memories=["doc"], mode="kv", mode_options={"compression": 1.5})
    with pytest.raises(LoramemError, match="unknown adapter phase"):
        mem.ask(QUESTION, memories=["doc"], mode="kv", mode_options={"adapter_phase": "always"})


@pytest.mark.parametrize("rho", [0.5, 1.0])
def test_batched_decode_reads_each_question_as_alone(mem, rho):
    from loramem.kv import decode, decode_many, prefill
    from loramem.modes.kv import KVSettings

    settings = KVSettings(press="knorm", compression=rho, adapter_phase="decode")
    adapters = [("facts", mem.store.adapter_path(mem.show("facts")))]
    state = prefill(mem.base, DOCUMENT, adapters, settings, 12, mem.adapters)
    kept = [layer.keys.clone() for layer in state.cache.layers if layer.keys is not None]
    questions = [QUESTION, "Which colour is the lighthouse of Kessreth painted, and who says so?", "Who?"]
    batched = decode_many(mem.base, state, questions, adapters, settings, 12, mem.adapters)
    alone = [decode(mem.base, state, q, adapters, settings, 12, mem.adapters) for q in questions]
    assert batched == alone
    assert rho < 1 or batched[0][0] == "555-010-1234"
    after = [layer.keys for layer in state.cache.layers if layer.keys is not None]
    assert len(after) == len(kept) and all(torch.equal(a, b) for a, b in zip(kept, after))  # left as prefilled
