"""`loramem export gguf OUT`: memories as llama.cpp LoRA adapters, for `llama-server --lora` and
Ollama's `ADAPTER`.

A llama.cpp LoRA adapter is a GGUF file of type `adapter` (`adapter.type` = lora,
`adapter.lora.alpha`) holding, for each adapted weight of the base's GGUF (`blk.N.attn_q.weight`,
named by gguf-py's tensor map for the architecture), its factors `<name>.lora_a` (r x in) and
`<name>.lora_b` (out x r); llama.cpp applies `alpha / r * B A x`. What llama.cpp's own
`convert_hf_to_gguf.py` changes in a base weight is done to the adapter too: for Llama-architecture
models it interleaves the rows of `q_proj` and `k_proj` (its rotary layout), so the rows of their B
are interleaved alike. Only architectures whose conversion is known here are exported; the rest are
refused by name. Tested end to end: the default model's own GGUF with an exported fact table in
llama-cpp-python reads the facts back (tests/test_export_gguf.py).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from loramem.adapters import load_lora
from loramem.errors import LoramemError
from loramem.store import MemoryStore

# transformers model_type -> (GGUF architecture, whether q/k rows are interleaved as convert_hf_to_gguf does)
ARCHITECTURES = {"llama": ("llama", True), "mistral": ("llama", True)}


@dataclass
class GGUFExport:
    files: dict[str, Path]  # memory name -> adapter file
    base_gguf: Path | None  # the GGUF the base model was converted from, when it was one

    @property
    def commands(self) -> str:
        """How to run them: llama-server with each adapter, and an Ollama Modelfile per memory."""
        base = shlex.quote(str(self.base_gguf)) if self.base_gguf else "BASE.gguf"
        lines = [f"llama-server -m {base} " + " ".join(f"--lora {shlex.quote(str(f))}" for f in self.files.values())]
        lines += [f"ollama create {name} -f {shlex.quote(str(f.with_suffix('.Modelfile')))}"
                  for name, f in self.files.items()]
        if self.base_gguf is None:
            lines.append("# BASE.gguf: this base model as llama.cpp's convert_hf_to_gguf.py writes it")
        return "\n".join(lines)


def interleave_rows(b, heads: int):
    """convert_hf_to_gguf's permutation of a q/k weight's rows (rotary halves interleaved), on B."""
    out = b.shape[0]
    return b.reshape(heads, 2, out // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def gguf_tensors(weights, config) -> dict[str, object]:
    """{GGUF tensor name: float32 numpy array} of one adapter on a base with this transformers config."""
    import gguf

    arch_name, interleaved = _architecture(config)
    arch = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}[arch_name]
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    heads = {"q_proj": config.num_attention_heads,
             "k_proj": getattr(config, "num_key_value_heads", None) or config.num_attention_heads}
    tensors = {}
    for path, (a, b) in sorted(weights.layers.items()):
        name = names.get_name(path)
        if name is None:
            raise LoramemError(f"llama.cpp has no tensor for {path} in a {arch_name} model: the memory cannot be exported")
        kind = path.rsplit(".", 1)[-1]
        if interleaved and kind in heads:
            b = interleave_rows(b, heads[kind])
        tensors[f"{name}.weight.lora_a"] = a.float().contiguous().numpy()
        tensors[f"{name}.weight.lora_b"] = b.float().contiguous().numpy()
    return tensors


def _architecture(config) -> tuple[str, bool]:
    found = ARCHITECTURES.get(config.model_type)
    if found is None:
        raise LoramemError(f"export gguf knows how llama.cpp converts {', '.join(sorted(ARCHITECTURES))} models, not "
                           f"{config.model_type!r}: the adapter's tensors could not be named for it")
    return found


def write_adapter(path: Path, weights, config, name: str) -> None:
    """One llama.cpp LoRA adapter file at `path` (written whole, then renamed into place)."""
    import gguf

    tensors = gguf_tensors(weights, config)
    ranks = {a.shape[0] for a, _ in weights.layers.values()}
    if len(ranks) > 1:  # llama.cpp scales every tensor by alpha / its own rank: one alpha fits one rank
        raise LoramemError(f"memory {name!r} has LoRA ranks {sorted(ranks)}; llama.cpp applies one alpha to all")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), _architecture(config)[0])
    try:
        writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, weights.scale * ranks.pop())  # llama.cpp: alpha / r
        writer.add_name(name)
        for key, value in tensors.items():
            writer.add_tensor(key, value)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(tmp, path)


def export_gguf(store: MemoryStore, base, out: Path, names: list[str] | None = None,
                collection: str | None = None) -> GGUFExport:
    """Write the named memories (default: all, or the collection's) as `out/<name>.gguf` with an
    Ollama Modelfile beside each; every memory must be written on `base` (a loaded BaseModel)."""
    chosen = names or store.names(collection)
    if not chosen:
        raise LoramemError("no memories to export" + (f" in collection {collection!r}" if collection else ""))
    records = [store.get(n) for n in chosen]
    for r in records:
        if r.base_fingerprint != base.fingerprint:
            raise LoramemError(f"memory {r.name!r} was written on {r.base_model}, not on {base.name}: export it with "
                               "--model set to the model it was written on")
    _architecture(base.model.config)
    base_gguf = _base_gguf(base)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    import torch

    for r in records:
        weights = load_lora(store.adapter_path(r), torch.device("cpu"), torch.float32, r.name)
        files[r.name] = (out / f"{r.name}.gguf").resolve()
        write_adapter(files[r.name], weights, base.model.config, r.name)
        modelfile = f"FROM {base_gguf or 'BASE.gguf'}\nADAPTER ./{r.name}.gguf\n"
        files[r.name].with_suffix(".Modelfile").write_text(modelfile)
    return GGUFExport(files=files, base_gguf=base_gguf)


def _base_gguf(base) -> Path | None:
    """The GGUF file the base model was converted from: the embedded default's, or the user's
    `--model FILE.gguf`; None for a model loaded from a Hugging Face folder."""
    from loramem.models import DEFAULT_MODEL
    from loramem.models.default import find_gguf

    if base.name == DEFAULT_MODEL:
        return find_gguf()
    return Path(base.name) if base.name.lower().endswith(".gguf") and Path(base.name).is_file() else None
