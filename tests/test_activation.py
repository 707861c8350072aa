"""Hook activation computes what PEFT computes, sums several adapters exactly, and restores the model."""

from dataclasses import replace

import torch
from peft import PeftModel

from conftest import FAST_TRAIN
from loramem.activation import AdapterCache, hooked, load_lora
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


def test_cache_reuses_and_evicts(tiny_base, tmp_path):
    folders = [_adapter(tiny_base, tmp_path / f"m{i}", i) for i in range(3)]
    cache = AdapterCache(capacity=2)
    first = cache.get(folders[0], torch.device("cpu"), torch.float32)
    assert cache.get(folders[0], torch.device("cpu"), torch.float32) is first
    cache.get(folders[1], torch.device("cpu"), torch.float32)
    cache.get(folders[2], torch.device("cpu"), torch.float32)
    assert cache.get(folders[0], torch.device("cpu"), torch.float32) is not first  # evicted, reloaded


def test_ties_merge_matches_peft(tiny_base, tmp_path):
    from loramem.activation import ties_merge

    folders = [_adapter(tiny_base, tmp_path / f"t{i}", i) for i in range(3)]
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    model = tiny_base.model
    with torch.no_grad():
        peft = PeftModel.from_pretrained(model, str(folders[0]), adapter_name="m0")
        for i, f in enumerate(folders[1:], 1):
            peft.load_adapter(str(f), adapter_name=f"m{i}")
        peft.add_weighted_adapter(["m0", "m1", "m2"], [1.0, 1.0, 1.0], "merged", combination_type="ties", density=0.5)
        peft.set_adapter("merged")
        expected = peft(ids).logits
        peft.unload()
        loaded = [(load_lora(f, ids.device, torch.float32), w) for f, w in zip(folders, (1.0, 0.5, 2.0))]
        assert all(w.thresholds for w, _ in loaded)  # saved at write time
        fresh = [(replace(w, thresholds=None), wt) for w, wt in loaded]
        merged = ties_merge([(w, 1.0) for w, _ in loaded], density=0.5)
        with hooked(model, [(merged, 1.0)]):
            got = model(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # precomputed trim points select exactly what a fresh selection does, at any weights
    a, b = ties_merge(loaded, 0.5), ties_merge(fresh, 0.5)
    for m in a.layers:
        assert torch.equal(a.layers[m][0], b.layers[m][0]) and torch.equal(a.layers[m][1], b.layers[m][1])


def test_svd_merge_matches_peft_with_mixed_ranks_and_weights(tiny_base, tmp_path):
    from loramem.activation import svd_merge

    folders = [_adapter(tiny_base, tmp_path / f"s{i}", i) for i in range(2)]
    low = tmp_path / "low"  # rank 2: svd combines memories of different ranks
    train_memory(tiny_base, [Example("Code of item 9?", "333")], TrainConfig(**{**FAST_TRAIN, "epochs": 3, "rank": 2}),
                 low, progress=False)
    folders.append(low)
    weights = [1.0, 0.5, 2.0]
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    model = tiny_base.model
    with torch.no_grad():
        plain = model(ids).logits
        peft = PeftModel.from_pretrained(model, str(folders[0]), adapter_name="m0")
        for i, f in enumerate(folders[1:], 1):
            peft.load_adapter(str(f), adapter_name=f"m{i}")
        peft.add_weighted_adapter(["m0", "m1", "m2"], weights, "merged", combination_type="svd")
        peft.set_adapter("merged")
        expected = peft(ids).logits
        peft.unload()
        loaded = [(load_lora(f, ids.device, torch.float32), w) for f, w in zip(folders, weights)]
        merged = svd_merge(loaded)
        with hooked(model, [(merged, 1.0)]):
            got = model(ids).logits
    assert {a.shape[0] for a, _ in merged.layers.values()} == {8}  # the largest rank, as PEFT
    assert not torch.allclose(got, plain)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # at the full stacked rank nothing is truncated: the exact weighted sum of the deltas
    module = next(iter(merged.layers))
    full = svd_merge(loaded, rank=18).layers[module]
    delta = sum(wt * w.scale * w.layers[module][1] @ w.layers[module][0] for w, wt in loaded)
    torch.testing.assert_close(full[1] @ full[0], delta, rtol=1e-5, atol=1e-6)


def test_thresholds_saved_as_two_vectors_and_read_in_the_older_layout(tiny_base, tmp_path):
    from safetensors.torch import save_file

    from loramem.activation import THRESHOLDS_FILE

    folder = _adapter(tiny_base, tmp_path / "m", 4)
    new = load_lora(folder, torch.device("cpu"), torch.float32).thresholds
    assert new and len(new) == len(load_lora(folder, torch.device("cpu"), torch.float32).layers)
    old = {}
    for module, (a, b) in new.items():  # the layout of stores written before: a scalar per factor
        old[f"{module}.A"], old[f"{module}.B"] = torch.tensor([a]), torch.tensor([b])
    save_file(old, str(folder / THRESHOLDS_FILE), metadata={"density": "0.5"})
    assert load_lora(folder, torch.device("cpu"), torch.float32).thresholds == new
    del old[next(iter(old))]  # incomplete: no precomputed trim points, the merge selects afresh
    save_file(old, str(folder / THRESHOLDS_FILE))
    assert load_lora(folder, torch.device("cpu"), torch.float32).thresholds is None
