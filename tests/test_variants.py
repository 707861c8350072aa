"""LoRA variants (`write --variant`): each registered one is written from the command line, recorded
in the catalogue, answers alone and through the server's batch, loads in plain PEFT with the outputs
loramem gives it, and exports. Training and merging are pinned to PEFT's own implementation in
tests/training/test_train_memories.py and tests/merges/test_merges.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch

from loramem import Memory
from loramem.answering import active_adapters
from loramem.errors import LoramemError
from loramem.export import export_vllm
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig
from loramem.variants import VARIANTS
from test_cli import run

ADA = "What is the phone number of Ada Byron?"


@pytest.mark.parametrize("variant", VARIANTS.names())
def test_a_variant_memory_is_written_answered_served_and_loads_in_peft(variant, tmp_path, tiny_model_dir,
                                                                        facts_jsonl, capsys):
    from peft import PeftModel

    store = str(tmp_path / "store")
    code, out, err = run(capsys, "write", str(facts_jsonl), "--name", "facts", "--variant", variant, "--epochs", "80",
                         "--lr", "1e-2", "--precision", "fp32", "--store", store, "--model", str(tiny_model_dir))
    assert code == 0, err
    assert "read-back recall: 100.0%" in out
    shown = json.loads(run(capsys, "show", "facts", "--store", store)[1])
    assert shown["config"]["variant"] == variant
    folder = Path(shown["path"])
    saved = json.loads((folder / "adapter_config.json").read_text())
    assert saved.get("use_rslora", False) == (variant == "rslora")

    mem = Memory(store=store, model=str(tiny_model_dir), progress=False)
    assert mem.ask(ADA, memories=["facts"]).answer.strip() == "555-010-1234"
    ids = torch.tensor([mem.base.tokenizer(ADA)["input_ids"]])
    with torch.no_grad(), active_adapters(mem.base.model, [("facts", folder)]) as model:
        ours = model(ids).logits
    peft = PeftModel.from_pretrained(mem.base.model, str(folder))
    try:
        with torch.no_grad():
            torch.testing.assert_close(ours, peft(ids).logits, rtol=1e-4, atol=1e-4)
    finally:
        peft.unload()

    with ServerThread(create_app(mem)) as url, httpx.Client(timeout=120) as client:
        body = {"model": "facts", "prompt": ADA, "max_tokens": 16}
        answers = [client.post(f"{url}/completions", json=body) for _ in range(2)]
    assert all(a.status_code == 200 and a.json()["choices"][0]["text"].strip() == "555-010-1234" for a in answers)

    exported = export_vllm(mem.store, tmp_path / "vllm", ["facts"])
    config = json.loads((exported.folders["facts"] / "adapter_config.json").read_text())
    assert config.get("use_rslora", False) == (variant == "rslora")


def test_an_unknown_variant_is_one_line_naming_the_registered_ones():
    with pytest.raises(LoramemError, match="unknown LoRA variant 'dorra'.*Valid: " + ", ".join(VARIANTS.names())):
        TrainConfig(variant="dorra")

