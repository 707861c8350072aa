"""The reranker's likelihood gains, pinned to PEFT one adapter at a time; the rerank router's contract."""

import pytest
import torch
from peft import PeftModel

from conftest import random_adapters
from loramem.adapters import load_lora
from loramem.routing.likelihood import likelihood_gains, question_tokens

QUESTION = "What does the harbour of Kessreth export?"


@pytest.fixture(scope="module")
def folders(tiny_base, tmp_path_factory):
    return random_adapters(tiny_base, tmp_path_factory, [dict(r=4, lora_alpha=8, target_modules="all-linear"),
                                                         dict(r=2, lora_alpha=2, target_modules=["q_proj", "v_proj"]),
                                                         dict(r=8, lora_alpha=4, target_modules="all-linear")],
                           seed=7, label="rerank")


def _question_logp(model, tokenizer) -> float:
    ids, start, end = question_tokens(tokenizer, QUESTION)
    x = torch.tensor([ids[:end]])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=x).logits[0, start - 1 : end - 1].float(), -1)
    return logp.gather(-1, x[0, start:end, None])[:, 0].mean().item()


def test_the_question_span_is_the_question(tiny_base):
    ids, start, end = question_tokens(tiny_base.tokenizer, QUESTION)
    assert tiny_base.tokenizer.decode(ids[start:end]).strip() == QUESTION and end <= len(ids)


def test_batched_gains_equal_each_adapter_alone_in_peft(tiny_base, folders):
    before = {k: v.clone() for k, v in tiny_base.model.state_dict().items()}
    weights = [load_lora(f, torch.device("cpu"), torch.float32) for f in folders]
    gains = likelihood_gains(tiny_base.model, tiny_base.tokenizer, QUESTION, weights)
    base = _question_logp(tiny_base.model, tiny_base.tokenizer)
    expected = []
    for folder in folders:
        peft_model = PeftModel.from_pretrained(tiny_base.model, str(folder))
        try:
            expected.append(_question_logp(peft_model, tiny_base.tokenizer) - base)
        finally:
            peft_model.unload()
    assert gains == pytest.approx(expected, abs=1e-5)
    assert len({round(g, 4) for g in gains}) == 3  # the adapters differ, so must their gains
    assert all(torch.equal(v, before[k]) for k, v in tiny_base.model.state_dict().items())
    assert likelihood_gains(tiny_base.model, tiny_base.tokenizer, QUESTION, []) == []


def test_rerank_orders_the_first_stages_candidates_by_gain(tmp_path, tiny_model_dir):
    import json

    from conftest import FAST_TRAIN
    from loramem import Memory
    from loramem.training import TrainConfig

    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    topics = {"harbour": ("Who built the harbour of Kessreth?", "Ilse Varnhagen"),
              "volcano": ("When did Mount Ferrox last erupt?", "1887"),
              "orchestra": ("Who conducts the Velmont orchestra?", "Oda Brightwater")}
    for name, (q, a) in topics.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps({"question": q, "answer": a}) + "\n")
        mem.write([path], name=name, config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    unanimous = "Who built the harbour of Kessreth?"  # every channel puts the harbour first: taken as it is
    routes = mem.route(unanimous, "rerank", 2)
    assert routes[0].name == "harbour" and routes[0].holds is True and routes[0].gain is None
    assert [r.name for r in routes] == [r.name for r in mem.route(unanimous, "fused", 2)]
    fused = mem._routers["rerank"].first
    tried = ["Which builder made the volcano harbour?", "Who conducts the eruption of Kessreth?",
             "When did the orchestra of Ferrox play?", "Which mountain did Oda Brightwater climb in 1642?"]
    unsure = next(q for q in tried if len({p[0].name for p in fused.rankings(q, 3)[1]}) > 1)  # the channels disagree
    first = fused.rankings(unsure, 2)[0]
    gains = dict(zip([r.name for r in first], mem._routers["rerank"].gains(unsure, [r.name for r in first])))
    routes = mem.route(unsure, "rerank", 2)
    assert [r.name for r in routes] == sorted(gains, key=lambda n: -gains[n])[:2]
    assert [r.gain for r in routes] == pytest.approx([gains[r.name] for r in routes])
    assert routes[0].holds is None  # unsure: abstention reads the closeness
