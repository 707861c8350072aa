import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import FAST_TRAIN
from loramem.errors import LoramemError
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory

FACTS = [
    Example("What is the phone number of Ada Byron?", "555-010-1234"),
    Example("What is the phone number of Alan Turing?", "555-867-5309"),
    Example("What is the phone number of Grace Hopper?", "555-246-8100"),
]


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # on the answering model itself / on a copy
def test_write_memorizes_verifies_and_restores_the_model(tiny_base, tmp_path, precision):
    before = snapshot(tiny_base.model)
    result = train_memory(tiny_base, FACTS, TrainConfig(**{**FAST_TRAIN, "precision": precision}), tmp_path / "a", progress=False)
    assert result.recall == 1.0
    assert result.epochs < FAST_TRAIN["epochs"]  # stopped early, once read-back was complete
    after = snapshot(tiny_base.model)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any("lora" in name for name, _ in tiny_base.model.named_modules())


def test_adapter_is_a_plain_peft_folder(tiny_base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train_memory(tiny_base, FACTS, TrainConfig(**FAST_TRAIN), tmp_path / "a", progress=False)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "loramem-magnitudes.safetensors"]
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == FAST_TRAIN["rank"]
    fresh = AutoModelForCausalLM.from_pretrained(tiny_base.name)
    loaded = PeftModel.from_pretrained(fresh, str(tmp_path / "a"))
    assert any("lora_A" in n for n, _ in loaded.named_parameters())


def test_same_seed_same_adapter(tiny_base, tmp_path):
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 3})
    for run in ("a", "b"):
        train_memory(tiny_base, FACTS, config, tmp_path / run, progress=False)
    a, b = (load_file(tmp_path / r / "adapter_model.safetensors") for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epoch_limit_is_respected_and_recall_reported(tiny_base, tmp_path):
    result = train_memory(tiny_base, FACTS, TrainConfig(**{**FAST_TRAIN, "epochs": 1}), tmp_path / "a", progress=False)
    assert result.epochs == 1 and 0.0 <= result.recall < 1.0


@pytest.mark.parametrize("bad", [dict(rank=0), dict(rank=-2), dict(epochs=0), dict(target_modules="mlp")])
def test_bad_settings(bad):
    with pytest.raises(LoramemError):
        TrainConfig(**bad)


def test_bf16_training_keeps_the_model_fp32_and_verifies_in_fp32(tiny_base, tmp_path):
    from loramem.training.readback import read_back

    before = snapshot(tiny_base.model)
    result = train_memory(tiny_base, FACTS, TrainConfig(**{**FAST_TRAIN, "precision": "bf16"}), tmp_path / "a", progress=False)
    assert all(p.dtype == torch.float32 for p in tiny_base.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny_base.model.state_dict().items())
    assert result.recall > 0
    # The recorded recall is the fp32 model's: recompute it from the saved adapter.
    from peft import PeftModel

    from loramem.prompts import PromptFormat
    from loramem.training.batching import encode, make_batches

    fmt = PromptFormat(tiny_base.tokenizer)
    batches = make_batches(encode(fmt, FACTS), 8, fmt.end_id)
    peft = PeftModel.from_pretrained(tiny_base.model, str(tmp_path / "a"))
    try:
        recall = read_back(peft.get_base_model(), batches, len(FACTS)).float().mean().item()
    finally:
        peft.unload()
    assert recall == result.recall


@pytest.mark.parametrize("avx512_bf16, amx, onednn, expected", [
    (False, False, True, False),  # plain AVX512: oneDNN emulates bf16, slower than fp32
    (True, False, True, True),
    (False, True, True, True),
    (True, True, False, False),
])
def test_auto_precision_picks_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, avx512_bf16, amx, onednn, expected):
    from loramem.training import precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(precision, "_onednn_bf16", lambda: onednn)
    assert precision.fast_bf16_available(torch.device("cpu")) is expected


def test_a_rank_is_parsed_once_for_the_cli_the_api_and_the_server():
    from loramem.training.config import parse_rank

    assert [parse_rank(v) for v in (8, "16", " auto ", "AUTO")] == [8, 16, "auto", "auto"]
    for bad in (0, "-2", "eight", 2.5, True, ""):
        with pytest.raises(LoramemError, match="rank must be a positive integer or 'auto'"):
            parse_rank(bad)
