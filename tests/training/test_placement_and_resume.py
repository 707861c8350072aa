"""Layer placement, reproducible writes, checkpoints and resume."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import FAST_TRAIN
from loramem.errors import LoramemError
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory
from loramem.training.config import parse_layers

FACTS = [
    Example("What is the phone number of Ada Byron?", "555-010-1234"),
    Example("What is the phone number of Alan Turing?", "555-867-5309"),
    Example("What is the phone number of Grace Hopper?", "555-246-8100"),
]


def tensors(folder):
    return load_file(folder / "adapter_model.safetensors")


def test_layer_specs():
    assert parse_layers("all", 30) is None
    assert parse_layers("early", 30) == list(range(15)) and parse_layers("late", 30) == list(range(15, 30))
    assert parse_layers("0-2,7", 30) == [0, 1, 2, 7]
    with pytest.raises(LoramemError, match="has 30 layers"):
        parse_layers("29-30", 30)
    with pytest.raises(LoramemError, match="cannot parse layers"):
        TrainConfig(layers="middle")


@pytest.mark.parametrize("layers,modules,expected", [
    ("late", "ffn", {"layers.1.mlp"}), ("early", "attention", {"layers.0.self_attn"}), ("0", "all-linear", {"layers.0"}),
])
def test_placement_limits_the_adapter(tiny_base, tmp_path, layers, modules, expected):
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 1, "layers": layers, "target_modules": modules})
    train_memory(tiny_base, FACTS, config, tmp_path / "a", progress=False)
    keys = tensors(tmp_path / "a").keys()
    assert keys and all(any(e in k for e in expected) for k in keys)


def test_interrupted_write_resumes_to_the_same_adapter(tiny_base, tmp_path):
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 6, "target_recall": 1.0, "precision": "fp32"})
    full = train_memory(tiny_base, FACTS, config, tmp_path / "full", progress=False)

    class Killed(Exception):
        pass

    def kill_after_two(epoch, _seconds):
        if epoch == 2:
            raise Killed

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Killed):
        train_memory(tiny_base, FACTS, config, tmp_path / "x", progress=False, checkpoint=ckpt, on_epoch=kill_after_two)
    assert ckpt.exists()
    resumed = train_memory(tiny_base, FACTS, config, tmp_path / "resumed", progress=False, checkpoint=ckpt, resume=True)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs == full.epochs and resumed.steps == full.steps
    a, b = tensors(tmp_path / "full"), tensors(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # A checkpoint of other settings is not resumed from.
    other = train_memory(tiny_base, FACTS, TrainConfig(**{**FAST_TRAIN, "epochs": 1, "seed": 3}), tmp_path / "o",
                         progress=False, checkpoint=ckpt, resume=True)
    assert other.resumed_from_epoch == 0
