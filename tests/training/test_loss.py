"""The fast loss (head only at supervised positions) equals the plain PEFT causal-LM loss."""

import pytest
import torch

from loramem.prompts import PromptFormat
from loramem.supervision import Example
from loramem.training import TrainConfig
from loramem.training.batching import encode, make_batches
from loramem.training.lora_state import attached_lora
from loramem.training.loss import supervised_forward

EXAMPLES = [
    Example("What is the phone number of Ada Byron?", "555-010-1234"),
    Example("Who?", "the quick brown fox jumps"),
    Example("What is the phone number of Alan?", "555"),
]


def _nonzero_b(peft_model) -> None:
    """Non-zero B, so that the adapter actually changes the outputs."""
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)


def _take_grads(params: dict) -> dict:
    """A copy of each parameter's gradient; the gradients are then cleared for the next pass."""
    grads = {n: p.grad.clone() for n, p in params.items()}
    for p in params.values():
        p.grad = None
    return grads


def test_fast_loss_matches_plain_peft_forward(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    (batch,) = make_batches(encode(fmt, EXAMPLES), batch_size=8, pad_id=fmt.end_id)
    with attached_lora(tiny_base.model, TrainConfig(rank=4)) as peft_model:
        _nonzero_b(peft_model)
        labels = batch.input_ids.masked_fill(~batch.target_mask, -100)
        plain = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
        fast = supervised_forward(peft_model.get_base_model(), batch)
        torch.testing.assert_close(fast.loss, plain, rtol=1e-5, atol=1e-5)
        assert fast.n_targets == int(batch.target_mask.sum())
        # Read-back agrees with greedy argmax of the plain forward.
        logits = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        pred = logits[:, :-1].argmax(-1)
        ok = ((pred == batch.input_ids[:, 1:]) | ~batch.target_mask[:, 1:]).all(-1)
        assert torch.equal(fast.correct, ok)


def test_padding_is_right_and_targets_end_with_end_of_turn(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    enc = encode(fmt, EXAMPLES)
    assert all(e.ids[-1] == fmt.end_id for e in enc)
    (batch,) = make_batches(enc, batch_size=8, pad_id=fmt.end_id)
    assert batch.attention_mask.sum(1).tolist() == [len(enc[i].ids) for i in batch.index]
    assert batch.target_mask.sum().item() == sum(len(e.ids) - e.n_prompt for e in enc)


def test_shared_prefix_runs_once_with_the_same_loss_and_gradients(tiny_base):
    from dataclasses import replace

    fmt = PromptFormat(tiny_base.tokenizer)
    (batch,) = make_batches(encode(fmt, EXAMPLES), batch_size=8, pad_id=fmt.end_id)
    assert batch.prefix >= 5  # the template's head: "<|im_start|>system ... <|im_start|>user"
    assert batch.prefix < min(batch.target_mask.float().argmax(1)).item()
    with attached_lora(tiny_base.model, TrainConfig(rank=4)) as peft_model:
        _nonzero_b(peft_model)
        model = peft_model.get_base_model()
        lora = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
        grads = []
        for b in (batch, replace(batch, prefix=0)):
            out = supervised_forward(model, b, packed=False)
            out.loss.backward()
            grads.append((out.loss.detach(), out.correct, _take_grads(lora)))
        (l1, c1, g1), (l2, c2, g2) = grads
        torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-6)
        assert torch.equal(c1, c2)
        for n in g1:
            torch.testing.assert_close(g1[n], g2[n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("prefix", [True, False])
def test_packed_batch_gives_the_padded_loss_correctness_and_gradients(tiny_base, prefix):
    from dataclasses import replace

    from loramem.training.packing import pack

    fmt = PromptFormat(tiny_base.tokenizer)
    (batch,) = make_batches(encode(fmt, EXAMPLES), batch_size=8, pad_id=fmt.end_id)
    if not prefix:
        batch = replace(batch, prefix=0)
    packed = pack(batch)
    assert packed.ids.shape[1] == int(batch.attention_mask.sum()) - (len(EXAMPLES) - 1) * batch.prefix
    with attached_lora(tiny_base.model, TrainConfig(rank=4)) as peft_model:
        _nonzero_b(peft_model)
        model = peft_model.get_base_model()
        lora = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
        results = []
        for packing in (False, True):
            out = supervised_forward(model, batch, packed=packing)
            out.loss.backward()
            results.append((out, _take_grads(lora)))
        (padded, padded_grads), (fast, fast_grads) = results
        torch.testing.assert_close(fast.loss, padded.loss, rtol=1e-5, atol=1e-6)
        assert torch.equal(fast.correct, padded.correct) and fast.n_targets == padded.n_targets
        for n in lora:
            torch.testing.assert_close(fast_grads[n], padded_grads[n], rtol=1e-4, atol=1e-6, msg=n)


def test_packing_pays_for_short_rows_not_for_long_documents(tiny_base):
    from transformers import LlamaConfig

    from loramem.training.packing import packing_pays

    fmt = PromptFormat(tiny_base.tokenizer)
    (short,) = make_batches(encode(fmt, EXAMPLES * 3), batch_size=16, pad_id=fmt.end_id)
    config = LlamaConfig(hidden_size=576, intermediate_size=1536)  # the default model's widths
    assert packing_pays(short, config)
    long = [Example(f"Question {i}?", "word " * 400) for i in range(4)]
    (batch,) = make_batches(encode(fmt, long), batch_size=8, pad_id=fmt.end_id)
    assert not packing_pays(batch, config)
