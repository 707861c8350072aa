"""Shared fixtures: a tiny random Llama with a ChatML tokenizer, built in code and saved as a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "What is the phone number of Ada Byron? 555-010-1234",
    "Answer briefly. Question: the quick brown fox jumps over the lazy dog 0123456789 -",
    "In the document, how does the sentence starting continue? system user assistant",
]


def build_tiny_model(folder: Path, seed: int = 0, chat: bool = True) -> Path:
    """Save a 2-layer random Llama and a byte-level BPE tokenizer to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat:
        hf_tok.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return folder


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


# Training settings that let the tiny random model memorize a few facts in seconds.
FAST_TRAIN = dict(rank=8, lr=1e-2, epochs=80, batch_size=4, warmup_steps=2, precision="fp32")


@pytest.fixture
def facts_memory(tmp_path, tiny_model_dir, facts_jsonl):
    """A store on the tiny model holding `facts`: the three records of `facts_jsonl`, trained to read back."""
    from loramem import Memory
    from loramem.training import TrainConfig

    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**FAST_TRAIN))
    return mem

