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
