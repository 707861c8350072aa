"""Updating a memory on the tiny model: superseded and removed answers go, the rest stays, versions
are kept, pinned and rolled back, and bad updates change nothing."""

import json

import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import BaseModelMismatchError, LoramemError, UnknownMemoryError
from loramem.training import TrainConfig
from loramem.updates import UPDATES

ADA = "What is the phone number of Ada Byron?"
ALAN = "What is the phone number of Alan Turing?"
GRACE = "What is the phone number of Grace Hopper?"
EDSGER = "What is the phone number of Edsger Dijkstra?"


@pytest.fixture
def mem(facts_memory):
    return facts_memory


def ask(mem, question, memory="facts"):
    return mem.ask(question, memories=[memory], max_new_tokens=12).answer


@pytest.mark.parametrize("method", UPDATES.names())
def test_update_supersedes_adds_and_removes(mem, tmp_path, method):
    change = tmp_path / "change.jsonl"
    change.write_text(json.dumps({"question": ADA, "answer": "555-777-0001"}) + "\n"
                      + json.dumps({"question": EDSGER, "answer": "555-314-1592"}) + "\n")
    gone = tmp_path / "gone.jsonl"
    gone.write_text(json.dumps({"question": GRACE, "answer": "555-246-8100"}) + "\n")
    result = mem.update("facts", [change], remove=[gone], method=method)
    assert result.change == {"added": 1, "superseded": 1, "removed": 1} and result.previous == 1
    assert result.record.version == 2 and result.recall == 1.0
    assert result.superseded_still == 0.0 and result.removed_still == 0.0
    assert ask(mem, ADA) == "555-777-0001" and ask(mem, EDSGER) == "555-314-1592"
    assert ask(mem, ALAN) == "555-867-5309"  # untouched knowledge stays
    assert "555-246-8100" not in ask(mem, GRACE)
    assert ask(mem, ADA, "facts@1") == "555-010-1234"  # the old version still answers when pinned
    shown = mem.show("facts")
    assert shown.sources == ["facts.jsonl", "change.jsonl"] and "555-777-0001" in shown.document
    assert "555-010-1234" not in shown.document and "Grace" not in shown.document


def test_log_rollback_and_gc(mem):
    mem.update("facts", records=[{"question": ADA, "answer": "555-777-0001"}])
    log = mem.log("facts")
    assert [(v.version, v.parent, v.current) for v in log] == [(1, None, False), (2, 1, True)]
    assert log[1].change["superseded"] == 1 and log[1].change["method"] == "replay"
    assert log[1].summary()["seconds"] > 0 and log[0].summary()["recall"] == 1.0
    mem.rollback("facts", 1)
    answer = mem.ask(ADA, memories=["facts"], max_new_tokens=12)
    assert answer.answer == "555-010-1234" and answer.versions == [1]
    assert mem.ask(ADA, memories=["facts@2"], max_new_tokens=12).answer == "555-777-0001"
    assert mem.gc() == (1, 1) and [v.version for v in mem.log("facts")] == [1]
    with pytest.raises(UnknownMemoryError, match="no version 2"):
        mem.ask(ADA, memories=["facts@2"])


def test_a_removed_document_no_longer_reads_back(tmp_path, tiny_model_dir):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    keep, drop = tmp_path / "velmont.md", tmp_path / "harbor.md"
    keep.write_text("The Velmont Observatory opened in 1887 on the ridge. Its first director was Edda Falkenrath.")
    drop.write_text("The Ostrava harbor was dug in 1702 by Jan Pelc. Its lighthouse burns whale oil.")
    mem.write([keep, drop], name="docs", format="cloze", config=TrainConfig(**FAST_TRAIN))
    result = mem.update("docs", remove=["harbor.md"])
    assert result.change == {"documents_removed": 1} and result.removed_still == 0.0 and result.recall == 1.0
    assert mem.show("docs").sources == ["velmont.md"] and "Ostrava" not in mem.show("docs").document
    revised = tmp_path / "v2" / "velmont.md"
    revised.parent.mkdir()
    revised.write_text("The Velmont Observatory opened in 1891 on the ridge. Its first director was Ilse Korrow.")
    result = mem.update("docs", [revised])
    assert result.change == {"documents_revised": 1} and "1891" in mem.show("docs").document


def test_bad_updates_change_nothing(mem, tmp_path, other_tiny_model_dir):
    with pytest.raises(UnknownMemoryError):
        mem.update("nope", records=[{"question": ADA, "answer": "1"}])
    with pytest.raises(LoramemError, match="starts from the current version"):
        mem.update("facts@1", records=[{"question": ADA, "answer": "1"}])
    with pytest.raises(LoramemError, match="holds no record"):
        mem.update("facts", remove_records=[{"question": "Who is Zed?", "answer": "1"}])
    with pytest.raises(LoramemError, match="unknown update method"):
        mem.update("facts", records=[{"question": ADA, "answer": "1"}], method="magic")
    other = Memory(store=mem.store.path, model=str(other_tiny_model_dir), progress=False)
    with pytest.raises(BaseModelMismatchError):
        other.update("facts", records=[{"question": ADA, "answer": "1"}])
    assert [v.version for v in mem.log("facts")] == [1]
