import pytest
import torch

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import BaseModelMismatchError, LoramemError, UnknownMemoryError
from loramem.training import TrainConfig


@pytest.fixture
def mem(tmp_path, tiny_model_dir):
    return Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)


def test_write_then_ask_back(mem, facts_jsonl):
    result = mem.write([facts_jsonl], name="facts", config=TrainConfig(**FAST_TRAIN))
    assert result.record.recall == 1.0 and result.kinds == {"record": 3}
    answer = mem.ask("What is the phone number of Alan Turing?", memories=["facts"])
    assert answer.answer == "555-867-5309" and answer.mode == "parametric" and answer.memories == ["facts"]
    base = mem.ask("What is the phone number of Alan Turing?")
    assert base.mode == "base" and base.memories == [] and base.answer != "555-867-5309"
    assert [r.name for r in mem.list()] == ["facts"]


def test_ask_leaves_the_model_unchanged(mem, facts_jsonl):
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 2}))
    before = {k: v.clone() for k, v in mem.base.model.state_dict().items()}
    mem.ask("What is the phone number of Alan Turing?", memories=["facts"])
    after = mem.base.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_icl_puts_the_document_in_context(mem, facts_jsonl):
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    plain = mem.ask("Who?", memories=["facts"], mode="base")
    icl = mem.ask("Who?", memories=["facts"], mode="icl")
    assert icl.prompt_tokens > plain.prompt_tokens + 20


def test_document_write_with_deterministic_generator(mem, tmp_path):
    doc = tmp_path / "velmont.txt"
    doc.write_text("The Velmont Observatory opened in 1887 on the ridge. Its first director was Edda Falkenrath.")
    result = mem.write([doc], format="cloze", config=TrainConfig(**FAST_TRAIN))
    assert result.record.name == "velmont" and result.kinds == {"cloze": 2}
    assert "1887" in mem.show("velmont").document


def test_memory_on_another_base_model_is_refused(mem, facts_jsonl, other_tiny_model_dir):
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    other = Memory(store=mem.store.path, model=str(other_tiny_model_dir), progress=False)
    with pytest.raises(BaseModelMismatchError, match="'facts' was written on base model"):
        other.ask("Who?", memories=["facts"])


def test_errors(mem, facts_jsonl):
    with pytest.raises(UnknownMemoryError):
        mem.ask("Who?", memories=["nope"])
    with pytest.raises(LoramemError, match="needs at least one memory"):
        mem.ask("Who?", mode="icl")
    with pytest.raises(LoramemError, match="unknown answer mode"):
        mem.ask("Who?", mode="telepathy")
    with pytest.raises(LoramemError, match="unknown generator"):
        mem.write([facts_jsonl], generator="gpt-9")
    assert mem._base is None  # bad input fails before the model is loaded
    with pytest.raises(LoramemError, match="invalid memory name"):
        mem.write([facts_jsonl], name="../escape")


def test_forget(mem, facts_jsonl):
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    folder = mem.store.adapter_path(mem.show("facts"))
    mem.forget("facts")
    assert mem.list() == [] and not folder.exists()
