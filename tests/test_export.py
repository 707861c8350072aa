"""`export vllm`: folders in the format vLLM's LoRA loader reads, the same function as the memory."""

import json
import re

import pytest
import torch
from safetensors import safe_open

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.answering import active_adapters
from loramem.errors import LoramemError
from loramem.export import MAX_LORA_RANKS, VLLM_MODULES, export_vllm
from loramem.training import TrainConfig


@pytest.fixture
def mem(tmp_path, tiny_model_dir, facts_jsonl):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 3}))
    mem.write([facts_jsonl], name="facts-r4", config=TrainConfig(**{**FAST_TRAIN, "epochs": 3, "rank": 4}))
    return mem


def test_exported_folders_follow_vllm_format_and_hold_the_same_adapter(mem, tmp_path, tiny_model_dir):
    from peft import PeftModel

    result = export_vllm(mem.store, tmp_path / "out")
    assert set(result.folders) == {"facts", "facts-r4"} and result.max_lora_rank == 8 and 8 in MAX_LORA_RANKS
    for folder in result.folders.values():
        assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
        config = json.loads((folder / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and not config.get("use_dora") and not config.get("modules_to_save")
        assert config["bias"] == "none" and config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
        assert set(config["target_modules"]) <= VLLM_MODULES
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())
        assert keys and all(re.fullmatch(r"base_model\.model\..+\.lora_[AB]\.weight", k) for k in keys)
    assert "--enable-lora" in result.command and f"facts={result.folders['facts']}" in result.command

    ids = torch.tensor([[1, 5, 9, 13, 21]])
    model = mem.base.model
    with active_adapters(model, [("facts", mem.store.adapter_path(mem.show("facts")))]):
        expected = model(input_ids=ids).logits
    peft_model = PeftModel.from_pretrained(model, str(result.folders["facts"]))
    try:
        assert torch.allclose(peft_model(input_ids=ids).logits, expected, atol=1e-5)
    finally:
        peft_model.unload()


def test_what_vllm_refuses_is_named_and_nothing_is_written(mem, tmp_path):
    folder = mem.store.adapter_path(mem.show("facts-r4"))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(LoramemError, match="'facts-r4' cannot be served by vLLM: DoRA"):
        export_vllm(mem.store, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert export_vllm(mem.store, tmp_path / "out", ["facts"]).folders.keys() == {"facts"}
    with pytest.raises(LoramemError, match="no memory named"):
        export_vllm(mem.store, tmp_path / "out", ["nope"])
