"""Anchors: the base model's own answers to general prompts, distilled as prefixes, left out of recall, cached."""

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training import TrainConfig, train_memory
from loramem.training.anchors import anchor_examples, anchor_prompts, base_answer_prefix
from loramem.training.batching import encode


def test_prefix_kinds_have_no_end_token(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    plain, anchor = encode(fmt, [Example("Q?", "some answer", "qa"), Example("Q?", "some answer", "anchor")])
    assert plain.ids[-1] == fmt.end_id and plain.ids[:-1] == anchor.ids


def test_an_anchor_is_distilled_to_the_base_model_on_its_own_tokens(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    plain, anchor = encode(fmt, [Example("Q?", "some answer", "qa"), Example("Q?", "some answer", "anchor")])
    assert plain.teacher_ids is None
    assert anchor.teacher_ids == anchor.ids and anchor.teacher_n_prompt == anchor.n_prompt  # no context: the base


def test_recall_and_the_stopping_test_count_knowledge_not_anchors(tiny_base, tmp_path):
    facts = [Example(f"What is the phone number of {n}?", a, "record")
             for n, a in (("Ada Byron", "555-010-1234"), ("Alan Turing", "555-867-5309"), ("Grace Hopper", "555-246-8100"))]
    clash = [Example("Say a word.", "alpha", "anchor"), Example("Say a word.", "beta", "anchor")]  # never both
    result = train_memory(tiny_base, facts + clash, TrainConfig(**FAST_TRAIN), tmp_path / "a", progress=False)
    assert result.recall == 1.0 and result.epochs < FAST_TRAIN["epochs"]


def test_anchor_targets_are_the_base_models_answers_and_are_cached(tiny_base, tmp_path):
    got = anchor_examples(tiny_base, 6, tmp_path)
    assert 0 < len(got) <= 6 and all(e.kind == "anchor" for e in got)
    assert [e.prompt for e in got] == [p for p in anchor_prompts()[:6] if p in {e.prompt for e in got}]
    assert all(e.target == base_answer_prefix(tiny_base, e.prompt, 24) for e in got)
    assert (tmp_path / f"{tiny_base.fingerprint}.json").is_file()
    assert anchor_examples(tiny_base, 6, tmp_path) == got
    assert not any("capital" in p for p in anchor_prompts())  # bench updates asks capitals: never trained


def test_a_write_with_anchors_trains_and_stores_them(tmp_path, tiny_model_dir, facts_jsonl):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    result = mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "anchors": 4}))
    assert result.kinds["record"] == 3 and 0 < result.kinds.get("anchor", 0) <= 4
    assert result.record.sources == ["facts.jsonl"]
