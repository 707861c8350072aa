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
    assert not mem.base.model.training  # training put it in train mode; a model with dropout would answer at random
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


def test_settings_apply_on_top_of_a_given_config(mem, facts_jsonl):
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 80})
    result = mem.write([facts_jsonl], name="facts", config=config, epochs=1, rank=2)
    assert result.epochs == 1 and result.record.config["epochs"] == 1 and result.record.rank == 2
    assert config.epochs == 80  # the caller's config is left as it was
    with pytest.raises(LoramemError, match="unknown training setting.*epoch\\b.*valid:.*epochs"):
        mem.write([facts_jsonl], name="other", config=config, epoch=1)


def _adapter_tensors(mem, name):
    from safetensors.torch import load_file

    return load_file(str(mem.store.adapter_path(mem.show(name)) / "adapter_model.safetensors"))


def test_records_and_documents_in_memory_write_what_their_files_write(mem, facts_jsonl, tmp_path):
    import json

    config = TrainConfig(**{**FAST_TRAIN, "epochs": 3})
    rows = [json.loads(line) for line in facts_jsonl.read_text().splitlines()]
    from_file = mem.write([facts_jsonl], name="from-file", config=config).record
    in_memory = mem.write(records=rows, name="in-memory", config=config).record
    assert (in_memory.examples, in_memory.document, in_memory.source_hash) == \
        (from_file.examples, from_file.document, from_file.source_hash)
    a, b = _adapter_tensors(mem, "from-file"), _adapter_tensors(mem, "in-memory")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert mem.store.embeddings(["in-memory"])["in-memory"].tobytes() == \
        mem.store.embeddings(["from-file"])["from-file"].tobytes()

    text = "# Velmont\n\nThe Velmont Observatory opened in 1887 on the ridge. Its first director was Edda Falkenrath.\n"
    doc = tmp_path / "velmont.md"
    doc.write_text(text)
    from_doc = mem.write([doc], name="doc-file", format="cloze", config=config)
    given = mem.write(documents={"velmont.md": text}, name="doc-given", format="cloze", config=config)
    assert given.kinds == from_doc.kinds == {"cloze": 2} and given.record.sources == ["velmont.md"]
    a, b = _adapter_tensors(mem, "doc-file"), _adapter_tensors(mem, "doc-given")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_records_in_memory_are_checked_as_a_files_are(mem):
    with pytest.raises(LoramemError, match="records:2: missing or empty field.*answer"):
        mem.write(records=[{"question": "Who?", "answer": "Ada."}, {"question": "Where?"}], name="bad")
    with pytest.raises(LoramemError, match="records: holds no records"):
        mem.write(records=[], name="empty")
    with pytest.raises(LoramemError, match="notes.md: the document is empty"):
        mem.write(documents={"notes.md": "  \n"}, name="empty")
    with pytest.raises(LoramemError, match="give a name"):
        mem.write(records=[{"question": "Who?", "answer": "Ada."}])
    with pytest.raises(LoramemError, match="at least one file, records or documents"):
        mem.write(name="nothing")
    assert mem.list() == []


def test_memory_over_an_already_loaded_base_model(tmp_path, tiny_base, facts_jsonl):
    mem = Memory(store=tmp_path / "store", base=tiny_base, progress=False)
    assert mem.base is tiny_base
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**FAST_TRAIN))
    assert mem.ask("What is the phone number of Alan Turing?", memories=["facts"]).answer == "555-867-5309"
    assert Memory(store=tmp_path / "store", base=tiny_base, progress=False).show("facts").base_model == tiny_base.name
    with pytest.raises(LoramemError, match="either model .* or base"):
        Memory(store=tmp_path / "store", model="default", base=tiny_base)
