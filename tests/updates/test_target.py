"""An update is held to the target a write of its memory stops on (every record of a fact table):
a next version short of it is not committed, and a removal keeps training until the kept facts
read back (issue 39: a removal that lost four untouched facts became current)."""

import pytest

from loramem.errors import BelowTargetError
from loramem.training.trainer import read_back_adapter
from loramem.updates import replay

ADA = "What is the phone number of Ada Byron?"
ALAN = "What is the phone number of Alan Turing?"
GRACE = "What is the phone number of Grace Hopper?"
EDSGER = "What is the phone number of Edsger Dijkstra?"
CHANGE = [{"question": EDSGER, "answer": "555-314-1592"}, {"question": ADA, "answer": "555-777-0001"}]


def ask(mem, question, memory="facts"):
    return mem.ask(question, memories=[memory], max_new_tokens=12).answer


def test_an_update_short_of_its_target_changes_nothing(facts_memory):
    mem = facts_memory
    with pytest.raises(BelowTargetError, match=r"not committed: .* short of the memory's target 100%.* of at most 1 epochs\); "
                       r"version 1 stays current and nothing was changed.*--epochs 2.*--accept-below-target"):
        mem.update("facts", records=CHANGE, epochs=1)
    assert [(v.version, v.current) for v in mem.log("facts")] == [(1, True)]
    assert ask(mem, ADA) == "555-010-1234"
    assert not any((mem.store.path / ".staging").iterdir())  # the trained adapter went with the refusal

    accepted = mem.update("facts", records=CHANGE, epochs=1, accept_below_target=True)
    assert accepted.below_target and accepted.recall < accepted.target == 1.0
    assert "short of the memory's target 100%" in accepted.notes[-1]
    log = mem.log("facts")
    assert [(v.version, v.current) for v in log] == [(1, False), (2, True)]
    assert log[1].change["accepted_below_target"] is True and log[1].change["target"] == 1.0


def test_a_removal_reads_back_every_kept_record(facts_memory, monkeypatch):
    """The first round rehearses none of the kept facts and no repair round runs (a large memory's
    8 replayed facts, writ small), and the base model answers the removed question, so its forget
    example moves the weights: before, the removal read back 0% of the two kept facts and became
    current. Now the last round trains everything the version holds until it reads back."""
    mem = facts_memory
    monkeypatch.setattr(replay, "MIN_REPLAY", 0)
    monkeypatch.setattr(replay, "REPLAY_RATIO", 0.0)
    monkeypatch.setattr(replay, "REPAIR_ROUNDS", 0)
    monkeypatch.setattr("loramem.training.anchors.base_answer_prefix", lambda base, prompt, n: "user")
    result = mem.update("facts", remove_records=[{"question": GRACE, "answer": "555-246-8100"}])
    assert result.recall == 1.0 and result.removed_still == 0.0 and mem.log("facts")[-1].change["rounds"] == 2
    current = mem.store.get("facts")
    kept = mem.supervision(records=[{"question": ADA, "answer": "555-010-1234"},
                                    {"question": ALAN, "answer": "555-867-5309"}]).examples
    assert read_back_adapter(mem.base, mem.store.adapter_path(current), kept).all()
    assert ask(mem, ADA) == "555-010-1234" and ask(mem, ALAN) == "555-867-5309"
    assert "555-246-8100" not in ask(mem, GRACE)

