"""`loramem export vllm OUT`: memories as adapter folders that vLLM's `--lora-modules` loads.

vLLM reads a PEFT LoRA folder (`adapter_config.json` + `adapter_model.safetensors`, tensors named
`base_model.model.<module>.lora_A.weight` / `lora_B.weight`) and refuses DoRA, biases,
`modules_to_save` and ranks above its `--max-lora-rank` (one of MAX_LORA_RANKS). Every memory is
checked against those rules before anything is written; the folders hold only what vLLM reads.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from loramem.adapters import plain_lora_problems, read_config
from loramem.errors import LoramemError
from loramem.store import MemoryRecord, MemoryStore

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted --max-lora-rank values
_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_[AB]\.weight$")
# Linear layers vLLM applies LoRA to in Llama-style decoders (it packs q/k/v and gate/up itself), and
# the packed layers of models that ship them packed (Phi-3's qkv_proj and gate_up_proj, which vLLM's
# Phi-3 adapts as they are).
VLLM_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj"}


@dataclass
class Export:
    folders: dict[str, Path]  # memory name → exported folder
    base: str
    max_lora_rank: int

    @property
    def command(self) -> str:
        modules = " ".join(f"{name}={shlex.quote(str(path))}" for name, path in self.folders.items())
        return (f"vllm serve {shlex.quote(self.base)} --enable-lora --max-lora-rank {self.max_lora_rank} "
                f"--max-loras {min(len(self.folders), 8)} --lora-modules {modules}")


def check_vllm(record: MemoryRecord, folder: Path) -> dict:
    """The memory's adapter config, or a LoramemError naming the memory and what vLLM would refuse."""
    config = read_config(folder, record.name)  # AdapterFileError if unreadable
    problems = plain_lora_problems(config)  # vLLM loads plain LoRA only, as the hook path does
    if config["r"] > MAX_LORA_RANKS[-1]:
        problems.append(f"rank {config['r']} above vLLM's largest --max-lora-rank {MAX_LORA_RANKS[-1]}")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        problems.append("no adapter_model.safetensors")
    else:
        with safe_open(str(weights), "pt") as f:
            keys = list(f.keys())
        odd = [k for k in keys if not _KEY.match(k)]
        if odd:
            problems.append(f"tensors vLLM does not read: {odd[:3]}")
        unsupported = sorted({m.group(1).rsplit(".", 1)[-1] for k in keys if (m := _KEY.match(k))} - VLLM_MODULES)
        if unsupported:
            problems.append(f"LoRA on {unsupported}, which vLLM does not adapt")
    if problems:
        raise LoramemError(f"memory {record.name!r} cannot be served by vLLM: {'; '.join(problems)}")
    return config


def _module_names(folder: Path) -> dict:
    """target_modules as the layer names vLLM matches (q_proj, ...), with the layers they sit in.

    loramem records placement as full module paths; vLLM wants names. The pair (names, layers)
    selects exactly the modules the adapter holds tensors for, so PEFT reads it the same way.
    """
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        modules = {m.group(1) for k in f.keys() if (m := _KEY.match(k))}
    layers = sorted({int(m.group(1)) for p in modules if (m := re.search(r"\.layers\.(\d+)\.", p))})
    out: dict = {"target_modules": sorted({p.rsplit(".", 1)[-1] for p in modules})}
    if layers:
        out.update(layers_to_transform=layers, layers_pattern="layers")
    return out


def _base_for_vllm(record: MemoryRecord) -> str:
    from loramem.models.loading import DEFAULT_MODEL

    if record.base_model == DEFAULT_MODEL:
        from loramem.models.default import default_model_folder

        return str(default_model_folder())  # the safetensors conversion of the embedded GGUF file
    return record.base_model


def export_vllm(store: MemoryStore, out: Path, names: list[str] | None = None, collection: str | None = None) -> Export:
    """Write the named memories (default: all, or the collection's) under `out`, one folder each."""
    chosen = names or store.names(collection)
    if not chosen:
        raise LoramemError("no memories to export" + (f" in collection {collection!r}" if collection else ""))
    records = [store.get(n) for n in chosen]
    bases = {r.base_fingerprint: r.base_model for r in records}
    if len(bases) > 1:
        listed = ", ".join(f"{r.name} ({r.base_model})" for r in records)
        raise LoramemError(f"one vLLM server serves one base model; these memories span several: {listed}")
    configs = {r.name: check_vllm(r, store.adapter_path(r)) for r in records}  # all checked before any write
    out.mkdir(parents=True, exist_ok=True)
    folders = {}
    for r in records:
        target = out / r.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        config = {**configs[r.name], **_module_names(store.adapter_path(r)), "base_model_name_or_path": _base_for_vllm(r)}
        (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
        shutil.copy2(store.adapter_path(r) / "adapter_model.safetensors", target / "adapter_model.safetensors")
        folders[r.name] = target.resolve()
    top = max(c["r"] for c in configs.values())
    return Export(folders=folders, base=_base_for_vllm(records[0]),
                  max_lora_rank=next(m for m in MAX_LORA_RANKS if m >= top))
