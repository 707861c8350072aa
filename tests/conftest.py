"""Shared fixtures: a tiny random Llama with a ChatML tokenizer, built in code and saved as a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loramem.models.tiny import FAST_TRAIN, build_tiny_model  # noqa: F401 (FAST_TRAIN: tests import it from here)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def random_adapters(base, tmp_path_factory, configs: list[dict], seed: int, label: str) -> list[Path]:
    """PEFT adapter folders, one per LoraConfig keywords, with random A and B (not PEFT's zero B,
    so each changes the outputs); the base model is left as it was."""
    import torch
    from peft import LoraConfig, get_peft_model

    out = []
    for j, kw in enumerate(configs):
        torch.manual_seed(seed + j)
        peft_model = get_peft_model(base.model, LoraConfig(**kw, init_lora_weights=False, task_type="CAUSAL_LM"))
        try:
            folder = tmp_path_factory.mktemp(f"{label}{j}")
            peft_model.save_pretrained(str(folder))
        finally:
            peft_model.unload()
        out.append(folder)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-other"), seed=1)


@pytest.fixture(scope="session")
def tiny_base(tiny_model_dir):
    from loramem.models import load_base

    return load_base(str(tiny_model_dir))


@pytest.fixture
def facts_jsonl(tmp_path) -> Path:
    rows = [
        {"question": "What is the phone number of Ada Byron?", "answer": "555-010-1234"},
        {"question": "What is the phone number of Alan Turing?", "answer": "555-867-5309"},
        {"question": "What is the phone number of Grace Hopper?", "answer": "555-246-8100"},
    ]
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def few_rows_kernel(monkeypatch):
    """The compiled decode kernel, built here if `make setup` has not. In CI it must build; elsewhere
    (a GPU machine without a compiler or Python's headers, or LORAMEM_KERNELS=0 as the GPU script
    sets) the tests that need it are skipped."""
    import os

    from loramem.kernels import few_rows

    if not few_rows.enabled() and os.environ.get("CI") != "true":
        pytest.skip("LORAMEM_KERNELS=0: loramem's kernel is off")
    monkeypatch.delenv("LORAMEM_KERNELS", raising=False)
    module = few_rows.kernel(build=True)
    if module is None and os.environ.get("CI") != "true":
        pytest.skip(f"loramem's kernel did not build here: {few_rows.build_error()}")
    assert module is not None, few_rows.build_error()
    return module


@pytest.fixture(params=["kernel", "weight-major"])
def decode_product(request, monkeypatch) -> str:
    """Each of the decode steps' fast products (`loramem.kernels.decode_linear`): the compiled kernel,
    or the weight-major fallback where it is not built."""
    if request.param == "kernel":
        request.getfixturevalue("few_rows_kernel")
    else:
        monkeypatch.setenv("LORAMEM_KERNELS", "0")
    return request.param


def replaced_forwards(model) -> int:
    """Modules whose forward is replaced by an instance attribute (the serving forms do it while in use)."""
    return sum("forward" in vars(m) for m in model.modules())


@pytest.fixture
def facts_memory(tmp_path, tiny_model_dir, facts_jsonl):
    """A store on the tiny model holding `facts`: the three records of `facts_jsonl`, trained to read back."""
    from loramem import Memory
    from loramem.training import TrainConfig

    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**FAST_TRAIN))
    return mem



ADA = "What is the phone number of Ada Byron?"


def serve_ada(folder: Path, model_dir: Path, versions: int = 1):
    """A store in `folder` whose memory `facts` holds Ada Byron's number, written `versions` times
    (the last current), served on loopback with no key: yields (root URL without /v1, Memory)."""
    from loramem import Memory
    from loramem.serve import ServerThread, create_app
    from loramem.training import TrainConfig

    mem = Memory(store=folder / "store", model=str(model_dir), progress=False)
    facts = folder / "facts.jsonl"
    facts.write_text(json.dumps({"question": ADA, "answer": "555-010-1234"}) + "\n")
    for i in range(versions):
        mem.write([facts], name="facts", config=TrainConfig(**FAST_TRAIN), replace=i > 0)
    with ServerThread(create_app(mem)) as url:
        yield url.removesuffix("/v1"), mem
