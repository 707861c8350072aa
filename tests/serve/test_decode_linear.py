"""The decode steps' linears (the compiled kernel, or the weight-major fallback) compute what `nn.Linear`
computes, and leave the model as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import replaced_forwards
from loramem.kernels.few_rows import MAX_ROWS
from loramem.serve import decode_linear
from loramem.serve.decode_linear import WEIGHT_MAJOR_MAX_ROWS, decode_linears


@pytest.mark.parametrize("lead", [(1,), (2,), (3, 1), (1, 5), (2, 4), (8, 1), (3, 7)], ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_equals_linear(decode_product, lead, bias):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    x = torch.randn(*lead, 48)
    with torch.no_grad(), decode_linears(layer) as changed:
        got = layer(x)
    assert changed == 1 and replaced_forwards(layer) == 0
    assert got.shape == (*lead, 80) and got.is_contiguous()
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_calls_it_leaves_to_linear(monkeypatch, few_rows_kernel):
    """More tokens than the kernel takes, autograd and input of another dtype run `nn.Linear` itself
    (which refuses the last as it always does); one token takes the kernel; a bf16 model is left alone."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 24)
    calls, real = [], decode_linear.few_rows
    monkeypatch.setattr(decode_linear, "few_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    with decode_linears(layer):
        with torch.no_grad():
            layer(torch.randn(MAX_ROWS + 1, 16))
            with pytest.raises(RuntimeError, match="dtype"):
                layer(torch.randn(2, 16, dtype=torch.float64))
        layer(torch.randn(4, 16)).sum().backward()
        assert not calls
        with torch.no_grad():
            layer(torch.randn(1, 16))
        assert calls
    with decode_linears(layer.to(torch.bfloat16)) as changed:
        assert changed == 0 and replaced_forwards(layer) == 0


def test_without_the_kernel_one_row_stays_linear(monkeypatch):
    monkeypatch.setenv("LORAMEM_KERNELS", "0")
    layer = torch.nn.Linear(16, 24)
    calls, real = [], torch.mm
    monkeypatch.setattr(torch, "mm", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad(), decode_linears(layer):
        layer(torch.randn(1, 16))
        layer(torch.randn(WEIGHT_MAJOR_MAX_ROWS + 1, 16))
        assert not calls
        layer(torch.randn(WEIGHT_MAJOR_MAX_ROWS, 16))
        assert calls  # the weight-major product


def test_decode_logits_of_a_model(decode_product, tiny_base):
    """A decode step of 5 rows through the whole model: the same logits, the model unchanged after."""
    from transformers import DynamicCache

    model = tiny_base.model
    ids = torch.randint(5, 100, (5, 7), generator=torch.Generator().manual_seed(1))
    logits = []
    for fast in (False, True):
        with torch.no_grad(), decode_linears(model) if fast else torch.no_grad() as changed:
            cache = DynamicCache(config=model.config)
            model(input_ids=ids[:, :-1], past_key_values=cache, use_cache=True)
            logits.append(model(input_ids=ids[:, -1:], past_key_values=cache, use_cache=True).logits)
        if fast:
            assert changed == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert replaced_forwards(model) == 0
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)
