"""Merge methods: the exact sum is the sum of the deltas; PEFT's methods run, seeded, and leave the model as it was."""

import pytest
import torch

from conftest import FAST_TRAIN
from loramem.answering import Merge, active_adapters
from loramem.errors import LoramemError
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory

IDS = torch.tensor([[1, 5, 9, 13, 17, 21]])


def _adapter(tiny_base, folder, seed, rank=8):
    facts = [Example(f"Code of item {seed}?", f"{seed * 37 % 1000:03d}")]
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 3, "seed": seed, "rank": rank, "precision": "fp32"})
    train_memory(tiny_base, facts, config, folder, progress=False)
    return (f"m{seed}", folder)


@pytest.fixture(scope="module")
def adapters(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    return [_adapter(tiny_base, root / f"m{i}", i) for i in range(3)]


def logits(model):
    with torch.no_grad():
        return model(IDS).logits


def test_exact_sum_is_the_sum_of_deltas(tiny_base, adapters):
    plain = logits(tiny_base.model)
    # the model is linear in each delta only through the first layer; compare the deltas themselves
    from loramem.activation import load_lora

    loaded = [load_lora(p, torch.device("cpu"), torch.float32) for _, p in adapters]
    module = next(iter(loaded[0].layers))
    delta = sum(w.scale * w.layers[module][1] @ w.layers[module][0] for w in loaded)
    layer = dict(tiny_base.model.named_modules())[module]
    x = torch.randn(3, layer.in_features)
    with active_adapters(tiny_base.model, adapters) as model, torch.no_grad():
        got = dict(model.named_modules())[module](x)
    torch.testing.assert_close(got, layer(x) + x @ delta.T, rtol=1e-5, atol=1e-5)
    with active_adapters(tiny_base.model, adapters, merge=Merge("cat")) as model:
        cat = logits(model)
    with active_adapters(tiny_base.model, adapters) as model:
        torch.testing.assert_close(cat, logits(model), rtol=1e-5, atol=1e-5)  # PEFT's cat is the exact sum too
    torch.testing.assert_close(logits(tiny_base.model), plain, rtol=0, atol=0)


@pytest.mark.parametrize("method", ["linear", "ties", "dare_linear", "dare_ties", "svd"])
def test_peft_methods_run_seeded_and_restore_the_model(tiny_base, adapters, method):
    plain = logits(tiny_base.model)
    outs = []
    for _ in range(2):
        with active_adapters(tiny_base.model, adapters, merge=Merge(method, seed=3)) as model:
            outs.append(logits(model))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)  # DARE's drops are seeded
    assert not torch.allclose(outs[0], plain)
    torch.testing.assert_close(logits(tiny_base.model), plain, rtol=0, atol=0)
    assert not any("lora" in n for n, _ in tiny_base.model.named_modules())


def test_mixed_ranks_are_refused_by_name(tiny_base, adapters, tmp_path):
    small = _adapter(tiny_base, tmp_path / "r2", 7, rank=2)
    with pytest.raises(LoramemError, match=r"needs memories of one rank; got m0 \(rank 8\), .*m7 \(rank 2\)"):
        with active_adapters(tiny_base.model, [adapters[0], small], merge=Merge("linear")):
            pass
    with pytest.raises(LoramemError, match="unknown merge method 'tie'"):
        with active_adapters(tiny_base.model, adapters, merge=Merge("tie")):
            pass
    assert not any("lora" in n for n, _ in tiny_base.model.named_modules())
