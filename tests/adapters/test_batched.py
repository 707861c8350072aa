"""The batched multi-adapter layer, pinned to PEFT: each row gets exactly its own adapter applied alone
(outputs, gradients, AdamW trajectories), and the model is unchanged after the block."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel

from conftest import random_adapters
from loramem.adapters import LoraWeights, UnsupportedAdapter, load_lora
from loramem.adapters.batched import batched_lora, benchmark, token_segments

# (rank, alpha, target modules, rsLoRA): mixed ranks, scales and target sets.
SPECS = [(4, 8, "all-linear", False), (8, 4, ["q_proj", "v_proj", "down_proj"], False), (2, 3, "all-linear", True)]
ROWS = {"grouped": [0, 0, 1, 1, -1, 2], "interleaved": [1, 0, -1, 2, 0, 1]}
PREFIX = "base_model.model."


@pytest.fixture(scope="module")
def folders(tiny_base, tmp_path_factory) -> list[Path]:
    return random_adapters(tiny_base, tmp_path_factory, [
        dict(r=r, lora_alpha=alpha, target_modules=targets, use_rslora=rslora) for r, alpha, targets, rslora in SPECS],
        seed=100, label="adapter")


def _weights(folders: list[Path], trainable: bool = False) -> list[LoraWeights]:
    loaded = [load_lora(f, torch.device("cpu"), torch.float32) for f in folders]
    return [LoraWeights({p: (a.clone().requires_grad_(trainable), b.clone().requires_grad_(trainable))
                         for p, (a, b) in w.layers.items()}, w.scale) for w in loaded]


def _ids(tiny_base, rows: int, seq: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, len(tiny_base.tokenizer), (rows, seq), generator=g)


def _row_losses(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Each row's mean next-token cross-entropy: (batch, seq, vocab), (batch, seq) -> (batch,)."""
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    return ce.view(ids.shape[0], -1).mean(1)


def _peft_grads(peft_model) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    grads: dict[str, list] = {}
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            path, which = name[len(PREFIX):].split(".lora_")
            grads.setdefault(path, [None, None])[0 if which.startswith("A") else 1] = p.grad
    return {k: (a, b) for k, (a, b) in grads.items()}


def _model_snapshot(model) -> tuple[dict, list]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, [(n, type(m), len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()]


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "autograd"])
@pytest.mark.parametrize("layout", ["grouped", "interleaved", "per-token"])
def test_each_row_gets_its_adapter_as_peft_applies_it(tiny_base, folders, layout, grad):
    model = tiny_base.model
    rows = torch.tensor(ROWS["interleaved" if layout == "interleaved" else "grouped"])
    ids = _ids(tiny_base, len(rows))
    idx = rows[:, None].expand(ids.shape) if layout == "per-token" else rows
    with torch.no_grad():
        expected = model(ids).logits  # rows with no adapter: the base model
        for j, folder in enumerate(folders):
            peft_model = PeftModel.from_pretrained(model, str(folder))
            try:
                expected[rows == j] = peft_model(ids[rows == j]).logits
            finally:
                peft_model.unload()
    with torch.set_grad_enabled(grad), batched_lora(model, _weights(folders, trainable=grad)) as set_rows:
        set_rows(idx)
        got = model(ids).logits
    assert not torch.allclose(expected[rows == 0], model(ids[rows == 0]).logits.detach())  # the adapter acts
    torch.testing.assert_close(got.detach(), expected, rtol=1e-5, atol=1e-5)


def test_generation_per_row_matches_each_adapter_alone(tiny_base, folders):
    """The row index holds across generate's prefill and decode steps (KV cache, seq 1)."""
    model, rows = tiny_base.model, torch.tensor([2, 0, -1, 1])
    ids = _ids(tiny_base, len(rows), seq=6, seed=3)
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=tiny_base.tokenizer.pad_token_id)
    with torch.no_grad():
        expected = model.generate(ids, **kw)
        for j, folder in enumerate(folders):
            peft_model = PeftModel.from_pretrained(model, str(folder))
            try:
                expected[rows == j] = peft_model.generate(input_ids=ids[rows == j], **kw)
            finally:
                peft_model.unload()
        with batched_lora(model, _weights(folders)) as set_rows:
            set_rows(rows)
            got = model.generate(ids, **kw)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("layout", ["grouped", "interleaved"])  # one autograd node (grouped), or split and cat
def test_gradients_equal_each_adapter_trained_alone(tiny_base, folders, layout):
    model, rows = tiny_base.model, torch.tensor(ROWS[layout])
    ids = _ids(tiny_base, len(rows), seed=1)
    adapters = _weights(folders, trainable=True)
    with batched_lora(model, adapters) as set_rows:
        set_rows(rows)
        losses = _row_losses(model(ids).logits, ids)
        # The sum of each adapter's own mean loss (rows with no adapter add no gradient).
        sum(losses[rows == j].mean() for j in range(-1, len(folders))).backward()
    for j, folder in enumerate(folders):
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
        try:
            _row_losses(peft_model(ids[rows == j]).logits, ids[rows == j]).mean().backward()
            expected = _peft_grads(peft_model)
        finally:
            peft_model.unload()
        assert expected.keys() == adapters[j].layers.keys()
        for path, (a, b) in adapters[j].layers.items():
            assert a.grad.abs().max() > 0
            # atol 1e-5: the grouped layout's GEMM shapes round one element 1.9e-6 off with either backward
            torch.testing.assert_close(a.grad, expected[path][0], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(b.grad, expected[path][1], rtol=1e-4, atol=1e-5)


def test_adamw_training_batched_follows_each_adapter_trained_alone(tiny_base, folders):
    """Same data order, same initial weights, AdamW: each adapter's losses step by step, batched or alone."""
    model, steps, per_adapter = tiny_base.model, 4, 2
    # Two batches per adapter, taken in turn.
    data = [[_ids(tiny_base, per_adapter, seed=10 * j + t % 2) for t in range(steps)] for j in range(len(folders))]
    adapters = _weights(folders, trainable=True)
    optimizer = torch.optim.AdamW([{"params": [t for ab in w.layers.values() for t in ab]} for w in adapters], lr=1e-2)
    rows = torch.arange(len(folders)).repeat_interleave(per_adapter)
    batched = []
    with batched_lora(model, adapters) as set_rows:
        set_rows(rows)
        for t in range(steps):
            ids = torch.cat([data[j][t] for j in range(len(folders))])
            losses = _row_losses(model(ids).logits, ids).view(len(folders), per_adapter).mean(1)  # (adapters,)
            losses.sum().backward()
            optimizer.step()
            optimizer.zero_grad()
            batched.append(losses.detach())
    batched = torch.stack(batched, 1)  # (adapters, steps)
    for j, folder in enumerate(folders):
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
        try:
            alone_opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
            alone = []
            for t in range(steps):
                loss = _row_losses(peft_model(data[j][t]).logits, data[j][t]).mean()
                loss.backward()
                alone_opt.step()
                alone_opt.zero_grad()
                alone.append(loss.detach())
            final = {PREFIX + p + ".lora_A.default.weight": a for p, (a, _) in adapters[j].layers.items()}
            trained = dict(peft_model.named_parameters())
            for name, a in final.items():
                torch.testing.assert_close(a.detach(), trained[name].detach(), rtol=1e-4, atol=1e-5)
            start = load_lora(folder, torch.device("cpu"), torch.float32).layers
            assert max((a - start[p][0]).abs().max() for p, (a, _) in adapters[j].layers.items()) > 1e-3  # it trained
        finally:
            peft_model.unload()
        torch.testing.assert_close(batched[j], torch.stack(alone), rtol=1e-5, atol=1e-5)


def test_model_is_unchanged_after_the_block(tiny_base, folders):
    model = tiny_base.model
    ids = _ids(tiny_base, 2)
    with torch.no_grad():
        before_logits = model(ids).logits
    state, modules = _model_snapshot(model)
    with batched_lora(model, _weights(folders, trainable=True)) as set_rows:
        set_rows([0, 1])
        model(ids).logits.sum().backward()
    with pytest.raises(KeyError), batched_lora(model, _weights(folders)) as set_rows:
        set_rows([2, -1])
        model(ids)
        raise KeyError("inside the block")
    after_state, after_modules = _model_snapshot(model)
    assert after_modules == modules
    assert after_state.keys() == state.keys()
    assert all(torch.equal(after_state[k], v) for k, v in state.items())
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before_logits)


def test_bad_input_raises_clearly_and_installs_nothing(tiny_base, folders):
    model = tiny_base.model
    _, modules = _model_snapshot(model)
    (good,) = _weights(folders[:1])
    path, (a, b) = next(iter(good.layers.items()))
    for bad, match in [(LoraWeights({"model.layers.9.mlp.up_proj": (a, b)}, 1.0), "not a linear layer"),
                       (LoraWeights({path: (a, b.t())}, 1.0), "do not fit"),
                       (LoraWeights({path: (a.double(), b.double())}, 1.0), "dtype")]:
        with pytest.raises(UnsupportedAdapter, match=match), batched_lora(model, [good, bad]):
            pass
        assert _model_snapshot(model)[1] == modules
    ids = _ids(tiny_base, 2)
    with batched_lora(model, [good]) as set_rows:
        with pytest.raises(RuntimeError, match="set_rows"):
            model(ids)
        with pytest.raises(ValueError, match="out of range"):
            set_rows([0, 1])
        with pytest.raises(ValueError, match="integers"):
            set_rows(torch.tensor([0.0, 0.0]))
        set_rows([0, 0, 0])
        with pytest.raises(ValueError, match="does not fit"):
            model(ids)
    assert _model_snapshot(model)[1] == modules


def test_token_segments():
    s = token_segments(torch.tensor([0, 0, -1, 1, 1, 2]))
    assert (s.sizes, s.owners, s.order) == ([2, 1, 2, 1], [0, -1, 1, 2], None)
    s = token_segments(torch.tensor([1, 0, -1, 0]))  # adapter 0 in two places: grouped by a permutation
    assert (s.sizes, s.owners, s.order.tolist()) == ([1, 2, 1], [-1, 0, 1], [2, 1, 3, 0])


def test_benchmark_runs_and_reports(tiny_base, capsys):
    rows = benchmark(tiny_base.model, counts=(2,), seq=20)
    assert [(r["adapters"], r["mode"]) for r in rows] == [(2, "train"), (2, "forward")]
    assert all(r["tokens_per_s_batched"] > 0 and r["tokens_per_s_sequential"] > 0 for r in rows)
    assert "one at a time" in capsys.readouterr().out
