"""The scope gate: a fact-table memory's adapter answers only questions near its records (real MiniLM)."""

import dataclasses

import pytest

from conftest import FAST_TRAIN
from loramem.scope import SCOPE, gated
from loramem.training import TrainConfig

ADA = "What is the phone number of Ada Byron?"
OFF_TOPIC = "What is the capital of France?"


@pytest.fixture
def mem(facts_memory):
    return facts_memory


def test_off_topic_question_is_answered_by_the_base_model(mem):
    held = mem.ask(OFF_TOPIC, memories=["facts"], max_new_tokens=12)
    assert [o["name"] for o in held.out_of_scope] == ["facts"] and held.out_of_scope[0]["version"] == 1
    assert held.out_of_scope[0]["score"] < SCOPE
    assert held.answer == mem.ask(OFF_TOPIC, max_new_tokens=12).answer  # the base model's own answer
    forced = mem.ask(OFF_TOPIC, memories=["facts"], max_new_tokens=12, scope=0)
    assert forced.out_of_scope == []
    own = mem.ask(ADA, memories=["facts"], max_new_tokens=12)
    assert own.out_of_scope == [] and own.answer == "555-010-1234"


def test_paraphrases_are_in_scope_and_documents_are_never_gated(mem):
    record = mem.show("facts")
    assert gated(record)
    inside = mem.scope.split("How can I reach Ada Byron by phone?", [record])
    assert inside.inside == [record] and inside.outside == []
    assert mem.scope.split("Write a haiku about autumn.", [record]).outside[0]["name"] == "facts"
    document = dataclasses.replace(record, formats=["cloze", "qa"])
    assert not gated(document) and mem.scope.split(OFF_TOPIC, [document]).inside == [document]


def test_scope_follows_the_version_asked(mem):
    room = "Which room is the grand piano kept in?"
    mem.update("facts", records=[{"question": room, "answer": "Room 12"}])
    assert mem.ask(room, memories=["facts"], max_new_tokens=8).out_of_scope == []
    pinned = mem.ask(room, memories=["facts@1"], max_new_tokens=8)
    assert [(o["name"], o["version"]) for o in pinned.out_of_scope] == [("facts", 1)]


def test_a_memory_written_again_under_its_name_is_gated_by_its_new_records(mem, tmp_path):
    room = "Which room is the grand piano kept in?"
    assert mem.scope.split(room, [mem.show("facts")]).outside  # cached for version 1
    mem.forget("facts")
    mem.write(records=[{"question": room, "answer": "Room 12"}], name="facts",
              config=TrainConfig(**FAST_TRAIN))
    record = mem.show("facts")
    assert record.version == 1 and mem.scope.split(room, [record]).inside == [record]

