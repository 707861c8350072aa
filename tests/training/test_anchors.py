"""Anchors: the base model's own answers to general prompts, supervised as prefixes and cached."""

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training import TrainConfig
from loramem.training.anchors import anchor_examples, anchor_prompts, base_answer_prefix
from loramem.training.batching import encode


def test_prefix_kinds_have_no_end_token(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    plain, anchor = encode(fmt, [Example("Q?", "some answer", "qa"), Example("Q?", "some answer", "anchor")])
    assert plain.ids[-1] == fmt.end_id and plain.ids[:-1] == anchor.ids


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
