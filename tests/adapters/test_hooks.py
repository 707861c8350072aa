"""Hooks compute what PEFT computes, sum several adapters exactly, and leave the model as it was."""

import torch
from peft import PeftModel

from conftest import FAST_TRAIN
from loramem.adapters import hooked, load_lora
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory


def _adapter(tiny_base, folder, seed):
    facts = [Example(f"Code of item {seed}?", f"{seed * 37 % 1000:03d}")]
    train_memory(tiny_base, facts, TrainConfig(**{**FAST_TRAIN, "epochs": 3, "seed": seed}), folder, progress=False)
    return folder


def test_hooks_match_peft_and_sum_exactly(tiny_base, tmp_path):
    a, b = _adapter(tiny_base, tmp_path / "a", 1), _adapter(tiny_base, tmp_path / "b", 2)
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    model = tiny_base.model
    with torch.no_grad():
        plain = model(ids).logits
        peft = PeftModel.from_pretrained(model, str(a), adapter_name="a")
        peft.load_adapter(str(b), adapter_name="b")
        expected_a = peft(ids).logits
        peft.base_model.set_adapter(["a", "b"])
        expected_ab = peft(ids).logits
        peft.unload()
        wa, wb = load_lora(a, ids.device, torch.float32), load_lora(b, ids.device, torch.float32)
        with hooked(model, [(wa, 1.0)]):
            got_a = model(ids).logits
        with hooked(model, [(wa, 1.0), (wb, 1.0)]):
            got_ab = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(expected_a, plain)  # the adapter does something
    torch.testing.assert_close(got_a, expected_a, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_ab, expected_ab, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after, plain, rtol=0, atol=0)
