"""Every registered merge method against PEFT's `add_weighted_adapter` (the reference), through the
same contract: the same logits, negative weights included, seeded, the model left as it was."""

from dataclasses import replace

import pytest
import torch
from peft import PeftModel

from conftest import FAST_TRAIN
from loramem.adapters import load_lora
from loramem.answering import Merge, active_adapters
from loramem.errors import LoramemError
from loramem.merges import MERGES, svd_merge, ties_merge
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory

IDS = torch.tensor([[1, 5, 9, 13, 17, 21]])
WEIGHTS = (1.0, -0.5, 2.0)  # a negative weight subtracts a memory: PEFT puts sign(w) on A, sqrt(|w|) on both
ONE_RANK = [n for n in MERGES.names() if MERGES.get(n).one_rank]
ANY_RANK = [n for n in MERGES.names() if not MERGES.get(n).one_rank]


def _adapter(tiny_base, folder, seed, rank=8, variant="lora"):
    facts = [Example(f"Code of item {seed}?", f"{seed * 37 % 1000:03d}")]
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 3, "seed": seed, "rank": rank, "precision": "fp32",
                            "variant": variant})
    train_memory(tiny_base, facts, config, folder, progress=False)
    return (f"m{seed}", folder)


@pytest.fixture(scope="module")
def adapters(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    return [_adapter(tiny_base, root / f"m{i}", i) for i in range(3)]


@pytest.fixture(scope="module")
def mixed_ranks(tiny_base, adapters, tmp_path_factory):
    return [*adapters[:2], _adapter(tiny_base, tmp_path_factory.mktemp("low") / "r2", 7, rank=2)]


@pytest.fixture(scope="module")
def mixed_variants(tiny_base, adapters, tmp_path_factory):
    """A plain LoRA memory, an rsLoRA one (scale alpha / sqrt(r)) and a PiSSA one of rank 4, saved at
    rank 8 as PEFT converts it: one rank, so every merge applies."""
    root = tmp_path_factory.mktemp("variants")
    return [adapters[0], _adapter(tiny_base, root / "rs", 5, variant="rslora"),
            _adapter(tiny_base, root / "pissa", 6, rank=4, variant="pissa")]


def logits(model):
    with torch.no_grad():
        return model(IDS).logits


def peft_reference(model, adapters, name, merge):
    """PEFT's merge of `adapters` by the method's combination (the exact sum: `cat`, with weights)."""
    method = MERGES.get(name)
    combination = method.peft or "cat"
    (first, path), rest = adapters[0], adapters[1:]
    peft = PeftModel.from_pretrained(model, str(path), adapter_name=first)
    try:
        for n, p in rest:
            peft.load_adapter(str(p), adapter_name=n)
        torch.manual_seed(merge.seed)
        peft.add_weighted_adapter([n for n, _ in adapters], list(merge.weights), "reference",
                                  combination_type=combination, density=merge.density)
        peft.set_adapter("reference")
        return logits(peft)
    finally:
        peft.unload()


def _check_contract(tiny_base, adapters, name):
    model = tiny_base.model
    plain, state = logits(model), {k: v.clone() for k, v in model.state_dict().items()}
    merge = Merge(name, weights=WEIGHTS, seed=3)
    expected = peft_reference(model, adapters, name, merge)
    outs = []
    for _ in range(2):
        with active_adapters(model, adapters, merge=merge) as active:
            outs.append(logits(active))
    torch.testing.assert_close(outs[0], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)  # DARE's drops are seeded
    assert not torch.allclose(outs[0], plain)
    after = model.state_dict()
    assert after.keys() == state.keys() and all(torch.equal(after[k], v) for k, v in state.items())
    assert not any("lora" in n for n, _ in model.named_modules())


@pytest.mark.parametrize("name", MERGES.names())
def test_every_merge_matches_peft_with_a_negative_weight(tiny_base, adapters, name):
    assert MERGES.get(name).reference.startswith("https://") and MERGES.get(name).summary
    _check_contract(tiny_base, adapters, name)


@pytest.mark.parametrize("name", ANY_RANK)
def test_merges_of_any_rank_match_peft_at_mixed_ranks(tiny_base, mixed_ranks, name):
    _check_contract(tiny_base, mixed_ranks, name)


@pytest.mark.parametrize("name", MERGES.names())
def test_every_merge_matches_peft_over_lora_variants(tiny_base, mixed_variants, name):
    _check_contract(tiny_base, mixed_variants, name)


@pytest.mark.parametrize("name", ONE_RANK)
def test_one_rank_merges_refuse_mixed_ranks_by_name(tiny_base, mixed_ranks, name):
    with pytest.raises(LoramemError, match=r"needs memories of one rank; got m0 \(rank 8\), .*m7 \(rank 2\)"):
        with active_adapters(tiny_base.model, mixed_ranks, merge=Merge(name)):
            pass
    assert not any("lora" in n for n, _ in tiny_base.model.named_modules())


def test_the_names_users_pick_are_registered_and_a_typo_is_named():
    assert {"sum", "cat", "linear", "ties", "dare_linear", "dare_ties", "svd"} <= set(MERGES.names())
    with pytest.raises(LoramemError, match="unknown merge method 'tie'. Did you mean 'ties'?"):
        with active_adapters(torch.nn.Linear(2, 2), [], merge=Merge("tie")):
            pass


def test_ties_with_stored_thresholds_selects_what_a_fresh_selection_does(adapters):
    loaded = [(load_lora(p, torch.device("cpu"), torch.float32), w) for (_, p), w in zip(adapters, WEIGHTS)]
    assert all(w.thresholds for w, _ in loaded)  # saved at write time
    fresh = [(replace(w, thresholds=None), wt) for w, wt in loaded]
    a, b = ties_merge(loaded, 0.5), ties_merge(fresh, 0.5)
    for m in a.layers:
        assert torch.equal(a.layers[m][0], b.layers[m][0]) and torch.equal(a.layers[m][1], b.layers[m][1])


def test_svd_at_the_full_stacked_rank_is_the_exact_weighted_sum(mixed_ranks):
    loaded = [(load_lora(p, torch.device("cpu"), torch.float32), w) for (_, p), w in zip(mixed_ranks, WEIGHTS)]
    assert {a.shape[0] for a, _ in svd_merge(loaded).layers.values()} == {8}  # the largest rank, as PEFT
    module = next(iter(loaded[0][0].layers))
    a, b = svd_merge(loaded, rank=18).layers[module]
    delta = sum(wt * w.scale * w.layers[module][1] @ w.layers[module][0] for w, wt in loaded)
    torch.testing.assert_close(b @ a, delta, rtol=1e-5, atol=1e-6)
