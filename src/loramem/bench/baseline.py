"""The usual recipe, as the seed paper's code and PRAG write a memory, for comparison only.

A PEFT model in a plain loop: the model's own chat template with its default system prompt,
random batches padded to their longest member, the library's causal-LM loss (logits over the
full vocabulary at every position, prompt labels masked), fp32, constant learning rate, and
recall checked after each epoch by generating every answer.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model

from loramem.models import BaseModel
from loramem.supervision import Example


@dataclass
class BaselineResult:
    recall: float
    epochs: int
    seconds: float  # whole run: training and per-epoch verification
    train_seconds: float
    processed_tokens: int
    reached: bool  # recall reached the target before the epoch or time limit


def _prompt(tokenizer, question: str) -> str:
    """The model's own template, with its default system prompt."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False)


def _encode(tokenizer, ex: Example) -> tuple[list[int], int]:
    prompt = _prompt(tokenizer, ex.prompt)
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": ex.prompt}, {"role": "assistant", "content": ex.target}], tokenize=False
    )
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return tokenizer(full, add_special_tokens=False)["input_ids"], len(p_ids)


@torch.no_grad()
def _generate_recall(model, tokenizer, examples: list[Example], stop_id: int) -> float:
    hits = 0
    for ex in examples:
        ids = tokenizer(_prompt(tokenizer, ex.prompt), add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids.to(model.device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                             do_sample=False, eos_token_id=stop_id, pad_token_id=stop_id)
        hits += ex.target in tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return hits / len(examples)


def usual_recipe(
    base: BaseModel,
    examples: list[Example],
    rank: int = 8,
    lr: float = 1e-3,
    batch_size: int = 8,
    max_epochs: int = 1,
    target_recall: float | None = None,
    budget_s: float = float("inf"),
    seed: int = 0,
) -> BaselineResult:
    """Train like the usual recipe; with `target_recall`, verify by generation after each epoch."""
    from loramem.prompts import PromptFormat

    tok = base.tokenizer
    stop_id = PromptFormat(tok).end_id
    encoded = [_encode(tok, ex) for ex in examples]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(base.model, lora)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
    start = time.perf_counter()
    train_s, processed, recall, epoch = 0.0, 0, 0.0, 0
    try:
        for epoch in range(1, max_epochs + 1):  # noqa: B007 (the count is returned)
            peft_model.train()
            order = list(range(len(encoded)))
            rng.shuffle(order)
            tick = time.perf_counter()
            for i in range(0, len(order), batch_size):
                group = [encoded[j] for j in order[i : i + batch_size]]
                width = max(len(ids) for ids, _ in group)
                input_ids = torch.full((len(group), width), stop_id)
                labels = torch.full((len(group), width), -100)
                mask = torch.zeros((len(group), width), dtype=torch.long)
                for row, (ids, n_prompt) in enumerate(group):
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
                    mask[row, : len(ids)] = 1
                dev = base.device
                loss = peft_model(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                processed += int(mask.sum())
            train_s += time.perf_counter() - tick
            if target_recall is not None:
                peft_model.eval()
                recall = _generate_recall(peft_model, tok, examples, stop_id)
                if recall >= target_recall or time.perf_counter() - start > budget_s:
                    break
    finally:
        peft_model.unload()
    reached = target_recall is not None and recall >= target_recall
    return BaselineResult(recall, epoch, time.perf_counter() - start, train_s, processed, reached)
