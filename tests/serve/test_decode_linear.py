"""The decode steps' weight-major linears compute what `nn.Linear` computes, and leave the model as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import replaced_forwards
from loramem.serve.decode_linear import WEIGHT_MAJOR_MAX_ROWS, weight_major_linears


@pytest.mark.parametrize("lead", [(2,), (3, 1), (1, 5), (2, 4), (8, 1)], ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_weight_major_equals_linear(lead, bias):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    x = torch.randn(*lead, 48)
    with torch.no_grad(), weight_major_linears(layer) as changed:
        got = layer(x)
    assert changed == 1 and replaced_forwards(layer) == 0
    assert got.shape == (*lead, 80) and got.is_contiguous()
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_rows_it_leaves_to_linear(monkeypatch):
    """One row, more than WEIGHT_MAJOR_MAX_ROWS rows, autograd and input of another dtype run `nn.Linear`
    itself (which refuses the last as it always does); a bf16 model is left alone."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 24)
    calls, real = [], torch.mm
    monkeypatch.setattr(torch, "mm", lambda *a, **k: calls.append(1) or real(*a, **k))
    with weight_major_linears(layer):
        with torch.no_grad():
            layer(torch.randn(1, 16))
            layer(torch.randn(WEIGHT_MAJOR_MAX_ROWS + 1, 16))
            with pytest.raises(RuntimeError, match="dtype"):
                layer(torch.randn(2, 16, dtype=torch.float64))
        layer(torch.randn(4, 16)).sum().backward()
        assert not calls
        with torch.no_grad():
            layer(torch.randn(4, 16))
        assert calls  # the weight-major product
    with weight_major_linears(layer.to(torch.bfloat16)) as changed:
        assert changed == 0 and replaced_forwards(layer) == 0


def test_decode_logits_of_a_model(tiny_base):
    """A decode step of 5 rows through the whole model: the same logits, the model unchanged after."""
    from transformers import DynamicCache

    model = tiny_base.model
    ids = torch.randint(5, 100, (5, 7), generator=torch.Generator().manual_seed(1))
    logits = []
    for weight_major in (False, True):
        with torch.no_grad(), weight_major_linears(model) if weight_major else torch.no_grad() as changed:
            cache = DynamicCache(config=model.config)
            model(input_ids=ids[:, :-1], past_key_values=cache, use_cache=True)
            logits.append(model(input_ids=ids[:, -1:], past_key_values=cache, use_cache=True).logits)
        if weight_major:
            assert changed == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert replaced_forwards(model) == 0
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)
