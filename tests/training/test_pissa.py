"""PiSSA (loramem/variants/pissa.py) pinned to PEFT's own PiSSA: its initial factors and, after
training alone or batched, the adapter PEFT's conversion saves for the unchanged base model."""

import copy
import dataclasses
import json

import torch
from peft import get_peft_model_state_dict
from peft_reference import peft_train
from safetensors.torch import load_file

from conftest import FAST_TRAIN
from loramem.supervision import Example
from loramem.training import MemoryJob, TrainConfig, train_memories, train_memory
from loramem.training.lora_state import attached_lora, from_state, initial_lora


def test_pissa_starts_from_peft_init_and_trains_to_the_adapter_peft_converts_it_to(tiny_base, tmp_path):
    """PiSSA against PEFT's own: the same initial factors (PEFT decomposes a copy of the model, whose
    weights it changes; loramem leaves the base model as it was), and after training, alone or in a
    batch beside a plain memory, the rank-2r adapter PEFT's conversion saves for the unchanged base."""
    facts = [Example(f"What is the phone number of Person {i}?", f"555-{i:03d}-{7 * i:04d}") for i in range(4)]
    config = TrainConfig(**{**FAST_TRAIN, "rank": 4, "epochs": 3, "variant": "pissa"})
    before = {k: v.clone() for k, v in tiny_base.model.state_dict().items()}
    ours = initial_lora(tiny_base.model, config)
    with attached_lora(copy.deepcopy(tiny_base.model), config, {"init_lora_weights": "pissa"}) as peft_model:
        theirs = from_state(get_peft_model_state_dict(peft_model))
    assert ours.keys() == theirs.keys()
    for path, (a, b) in theirs.items():
        ours_a, ours_b = ours[path]
        assert ours_a.shape == (8, a.shape[1]) and ours_b.shape == (b.shape[0], 8)
        torch.testing.assert_close(ours_a[:4], a, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours_b[:, :4], b, rtol=1e-4, atol=1e-5)
        assert torch.equal(ours_a[4:], ours_a[:4]) and torch.equal(ours_b[:, 4:], -ours_b[:, :4])  # delta 0 at start

    reference = peft_train(dataclasses.replace(tiny_base, model=copy.deepcopy(tiny_base.model)), facts, config,
                           tmp_path / "peft", {"init_lora_weights": "pissa"})
    alone = train_memory(tiny_base, facts, config, tmp_path / "alone", progress=False)
    plain = TrainConfig(**{**FAST_TRAIN, "epochs": 2})
    batched = train_memories(tiny_base, [MemoryJob(facts, config, tmp_path / "batched"),
                                         MemoryJob(facts[:2], plain, tmp_path / "plain")], batch_memories=2,
                             progress=False)[0]
    ref = load_file(tmp_path / "peft" / "adapter_model.safetensors")
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["r"] == 8
    for got, way in ((alone, "alone"), (batched, "batched")):
        assert (got.epochs, got.steps) == (reference.epochs, reference.steps)
        assert got.parameters == sum(4 * (a.shape[1] + b.shape[0]) for a, b in theirs.values())  # r trains, not 2r
        weights = load_file(tmp_path / way / "adapter_model.safetensors")
        assert weights.keys() == ref.keys()
        for k in ref:
            torch.testing.assert_close(weights[k], ref[k], rtol=1e-3, atol=1e-4)
        saved = json.loads((tmp_path / way / "adapter_config.json").read_text())
        assert (saved["r"], saved["lora_alpha"], saved["init_lora_weights"]) == (8, 16, True)
    assert all(torch.equal(v, before[k]) for k, v in tiny_base.model.state_dict().items())
