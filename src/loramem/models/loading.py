"""Load a base model and its tokenizer by spec: the embedded default, a local folder or a hub id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from loramem.errors import LoramemError
from loramem.models.fingerprint import model_fingerprint

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass
class BaseModel:
    """A loaded causal LM with what loramem needs to know about it."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    fingerprint: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' warnings and progress bars off while loading, restored after: the caller's
    process keeps its own logging settings."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LoramemError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LoramemError("no CUDA device on this machine; use --device cpu")
    return dev


def load_base(spec: str | None = None, device: str | None = None) -> BaseModel:
    """Load `spec` (None or "default" → the embedded SmolLM2-135M-Instruct; a .gguf file; else a folder or hub id)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = spec or DEFAULT_MODEL
    if name in (DEFAULT_MODEL, "default"):
        from loramem.models.default import default_model_folder

        name, source = DEFAULT_MODEL, str(default_model_folder())
    elif name.lower().endswith(".gguf"):  # a GGUF chat model, converted once and cached (models/default.py)
        from loramem.models.default import gguf_model_folder

        source = str(gguf_model_folder(name))
        name = str(Path(name).resolve())
    else:
        source = name
        if os.sep in name and not Path(name).exists():
            raise LoramemError(f"model folder {name} does not exist")
        if Path(name).exists():
            name = str(Path(name).resolve())
            source = name
    dev = resolve_device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as e:
        raise LoramemError(f"cannot load model {spec!r}: {str(e).splitlines()[0]}") from None
    model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return BaseModel(name=name, model=model, tokenizer=tokenizer, fingerprint=model_fingerprint(model))
