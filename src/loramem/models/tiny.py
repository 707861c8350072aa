"""A tiny random Llama with a ChatML tokenizer, built in code: what the fast tests and `bench faults` run on.

Two layers of width 64 and a 400-token byte-level BPE vocabulary: it loads in a fraction of a
second and memorizes a few facts in seconds, so store, server and training paths can be
exercised end to end on any CPU with nothing downloaded.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "What is the phone number of Ada Byron? 555-010-1234",
    "Answer briefly. Question: the quick brown fox jumps over the lazy dog 0123456789 -",
    "In the document, how does the sentence starting continue? system user assistant",
]


# Model families the suite builds tiny (tests/models/test_families.py): transformers model types.
FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3_text", "olmo2", "granite", "phi3")


def build_tiny_model(folder: Path, seed: int = 0, chat: bool = True, family: str = "llama") -> Path:
    """Save a 2-layer random model of `family` (a transformers model type; default Llama) and a
    byte-level BPE tokenizer to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

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
    config = AutoConfig.for_model(
        family, vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
        **({} if family in ("llama", "phi3") else {"head_dim": 16}),
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return folder


# Training settings that let the tiny random model memorize a few facts in seconds.
FAST_TRAIN = dict(rank=8, lr=1e-2, epochs=80, batch_size=4, warmup_steps=2, precision="fp32")
