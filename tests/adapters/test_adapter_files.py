"""Adapter files: the LRU cache, the stored TIES thresholds, one plain-LoRA check, and unreadable
files reported as one line that names the memory (the CLI) or an AdapterFileError (the library)."""

import json
import re
import sys
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.adapters import THRESHOLDS_FILE, AdapterCache, UnsupportedAdapter, load_lora, plain_lora_problems
from loramem.answering import Merge, active_adapters
from loramem.cli import main
from loramem.errors import AdapterFileError, LoramemError
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory


def _adapter(tiny_base, folder, seed):
    facts = [Example(f"Code of item {seed}?", f"{seed * 37 % 1000:03d}")]
    train_memory(tiny_base, facts, TrainConfig(**{**FAST_TRAIN, "epochs": 3, "seed": seed}), folder, progress=False)
    return folder


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # header whole, data cut: "incomplete metadata"


def test_cache_reuses_and_evicts(tiny_base, tmp_path):
    folders = [_adapter(tiny_base, tmp_path / f"m{i}", i) for i in range(3)]
    cache = AdapterCache(capacity=2)
    first = cache.get(folders[0], torch.device("cpu"), torch.float32)
    assert cache.get(folders[0], torch.device("cpu"), torch.float32) is first
    cache.get(folders[1], torch.device("cpu"), torch.float32)
    cache.get(folders[2], torch.device("cpu"), torch.float32)
    assert cache.get(folders[0], torch.device("cpu"), torch.float32) is not first  # evicted, reloaded


def test_thresholds_saved_as_two_vectors_and_read_in_the_older_layout(tiny_base, tmp_path):
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
    _truncate(folder / THRESHOLDS_FILE)  # derived data: a damaged copy is recomputed, not an error
    assert load_lora(folder, torch.device("cpu"), torch.float32).thresholds is None


@pytest.mark.parametrize("extra, problem", [
    ({"use_dora": True}, "DoRA"), ({"bias": "all"}, "bias 'all'"), ({"lora_bias": True}, "lora_bias"),
    ({"fan_in_fan_out": True}, "fan_in_fan_out"), ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"rank_pattern": {"q_proj": 2}}, "per-layer ranks"), ({"peft_type": "IA3"}, "peft_type IA3"),
])
def test_one_plain_lora_check_refuses_for_hooks_and_export(extra, problem, tiny_base, tmp_path):
    from loramem.export import check_vllm

    folder = _adapter(tiny_base, tmp_path / "m", 5)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert plain_lora_problems(config) == []
    (folder / "adapter_config.json").write_text(json.dumps({**config, **extra}))
    assert any(problem in p for p in plain_lora_problems({**config, **extra}))
    with pytest.raises(UnsupportedAdapter, match=problem):
        load_lora(folder, torch.device("cpu"), torch.float32)
    with pytest.raises(LoramemError, match=f"'m' cannot be served by vLLM: .*{problem}"):
        check_vllm(SimpleNamespace(name="m"), folder)


def test_unreadable_adapter_on_the_peft_path_is_refused_before_the_model_changes(tiny_base, tmp_path):
    good, bad = _adapter(tiny_base, tmp_path / "good", 1), _adapter(tiny_base, tmp_path / "bad", 2)
    _truncate(bad / "adapter_model.safetensors")
    with pytest.raises(AdapterFileError, match=r"^memory bad: its adapter file .*bad/adapter_model\.safetensors is unreadable"):
        with active_adapters(tiny_base.model, [("good", good), ("bad", bad)], merge=Merge("linear")):
            pass
    assert not any("lora" in n for n, _ in tiny_base.model.named_modules())
    (bad / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterFileError, match=r"memory bad: its adapter file .*adapter_config\.json is unreadable"):
        load_lora(bad, torch.device("cpu"), torch.float32, memory="bad")


def test_truncated_adapter_file_is_one_line_naming_the_memory(tmp_path, tiny_model_dir, facts_jsonl, capsys):
    store = tmp_path / "store"
    mem = Memory(store=store, model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 2}))
    weights = mem.store.adapter_path(mem.show("facts")) / "adapter_model.safetensors"
    _truncate(weights)
    message = (rf"memory facts: its adapter file {re.escape(str(weights))} is unreadable \(.*incomplete metadata.*\); "
               r"write it again or remove it with `loramem rm facts`")

    with pytest.raises(AdapterFileError, match=message):  # a fresh Memory: nothing cached
        Memory(store=store, model=str(tiny_model_dir), progress=False).ask("Ada Byron?", memories=["facts"])

    argv, sys.argv = sys.argv, ["loramem", "ask", "Ada Byron?", "--memory", "facts",
                                "--store", str(store), "--model", str(tiny_model_dir)]
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
    finally:
        sys.argv = argv
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]  # what a terminal shows: progress bars redraw with \r
    assert exit_.value.code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: memory facts:") and "`loramem rm facts`" in err
