"""Planning an update is bookkeeping, checked before any model loads: what supersedes, what goes."""

import pytest

from loramem.errors import LoramemError
from loramem.supervision.examples import Example
from loramem.supervision.sources import document_source, records_source
from loramem.supervision.stored import FORGET, Stored
from loramem.updates import plan_update


def held() -> list[Stored]:
    return [Stored(Example("Phone of Ada?", "111", "record"), "a.jsonl"),
            Stored(Example("Phone of Bob?", "222", "record"), "a.jsonl"),
            Stored(Example("What opened in 1887?", "The observatory.", "qa"), "velmont.md"),
            Stored(Example("Phone of Cy?", "I do not know.", FORGET), "a.jsonl")]


def records(*pairs, label="u.jsonl"):
    return records_source([{"question": q, "answer": a} for q, a in pairs], label)


def test_new_superseding_unchanged_and_removed_records():
    plan = plan_update("m", held(), [records(("phone of  ADA?", "999"), ("Phone of Bob?", "222"), ("Phone of Di?", "4"))],
                       [])
    assert plan.change == {"added": 1, "superseded": 1, "unchanged": 1}
    assert [s.example.target for s in plan.superseded] == ["111"]
    assert [s.example.target for s in plan.added] == ["999", "4"]
    assert [s.example.prompt for s in plan.kept] == ["Phone of Bob?", "What opened in 1887?", "Phone of Cy?"]
    plan = plan_update("m", held(), [], [records(("Phone of Bob?", "222"))])
    assert plan.change == {"removed": 1} and [s.example.target for s in plan.removed] == ["222"]


def test_asking_a_removed_question_again_drops_its_forget_example():
    plan = plan_update("m", held(), [records(("Phone of Cy?", "333"))], [])
    assert plan.change == {"added": 1} and all(s.example.kind != FORGET for s in plan.kept)


def test_a_document_of_the_same_name_is_a_revision_and_a_name_removes_one():
    revised = document_source("The observatory opened in 1888.", "velmont.md")
    plan = plan_update("m", held(), [revised], [], {"velmont.md": "old text"})
    assert plan.change == {"documents_revised": 1} and plan.new_documents == [revised]
    assert [s.example.kind for s in plan.superseded] == ["qa"]
    same = plan_update("m", held(), [revised, records(("Phone of Di?", "4"))], [], {"velmont.md": revised.text})
    assert same.change == {"added": 1, "unchanged": 1} and not same.new_documents
    plan = plan_update("m", held(), [], ["velmont.md"])
    assert plan.change == {"documents_removed": 1} and [s.origin for s in plan.removed] == ["velmont.md"]


@pytest.mark.parametrize("additions, removals, message", [
    ([records(("Phone of Di?", "4"), ("phone of di?", "5"))], [], "contradicts itself: 'phone of di\\?' is answered"),
    ([], [records(("Phone of Zed?", "1"))], "holds no record 'Phone of Zed\\?' to remove"),
    ([], [records(("Phone of Ada?", "000"))], "answers 'Phone of Ada\\?' with '111', not '000'"),
    ([], ["notes.md"], "holds no document named 'notes.md' \\(its documents: velmont.md\\)"),
    ([records(("Phone of Ada?", "111"))], [], "changes nothing"),
    ([records(("Phone of Ada?", "5"))], [records(("Phone of Ada?", "111"))], "both adds and removes"),
])
def test_bad_updates_are_refused_with_one_line(additions, removals, message):
    with pytest.raises(LoramemError, match=message) as e:
        plan_update("m", held(), additions, removals)
    assert "\n" not in str(e.value)
