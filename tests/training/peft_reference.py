"""A plain PEFT training loop: the reference the trainer is pinned to (PEFT's LoRA layers on the
model, torch's AdamW, the same batches, schedule and stopping rule, saved by save_pretrained)."""

import math
import random
from types import SimpleNamespace

import torch

from loramem.prompts import PromptFormat
from loramem.training.batching import encode, make_batches
from loramem.training.distill import teacher_targets
from loramem.training.lora_state import attached_lora
from loramem.training.loss import supervised_forward
from loramem.training.optim import lr_factor
from loramem.training.readback import counted, read_back
from loramem.training.stopping import stopping_for


def peft_train(base, examples, config, folder, peft: dict | None = None) -> SimpleNamespace:
    """Train `examples` into a PEFT LoRA on `base.model` (fp32) one step after another; save it at `folder`.

    `peft`: LoraConfig keywords besides the variant's. An init that changes the base weights (PiSSA)
    is saved as PEFT converts it for the unchanged model (`base.model` is changed: give a copy)."""
    fmt = PromptFormat(base.tokenizer)
    encoded = encode(fmt, examples, config.objective)
    n, rng, knowledge = len(encoded), random.Random(config.seed), counted(examples)
    teacher = teacher_targets(base.model, encoded, fmt.end_id, hidden=config.distill_hidden > 0, progress=False)
    eval_batches = make_batches(encoded, config.batch_size * 2, fmt.end_id)
    total = math.ceil(n / config.batch_size) * config.epochs
    converted = (peft or {}).get("init_lora_weights") not in (None, True, False, "gaussian")
    with attached_lora(base.model, config, peft) as peft_model:
        if converted:  # PEFT's recipe: keep the initial adapter (as plain LoRA) to subtract it when saving
            peft_model.peft_config["default"].init_lora_weights = True
            peft_model.save_pretrained(str(folder / "initial"))
        model = peft_model.get_base_model()
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, config.warmup_steps))
        stopping = stopping_for(config, examples)
        step = processed = epochs = 0
        for epoch in range(1, config.epochs + 1):
            epochs = epoch
            model.train()
            seen = torch.zeros(n, dtype=torch.bool)
            for batch in make_batches(encoded, config.batch_size, fmt.end_id, rng):
                out = supervised_forward(model, batch, teacher, config.distill_hidden)
                out.loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                seen[batch.index] = out.correct
                step, processed = step + 1, processed + batch.n_tokens
            if stopping.done(seen[knowledge].float().mean().item(),
                             lambda: read_back(model, eval_batches, n)[knowledge].float().mean().item()):
                break
        recall = stopping.verified if stopping.verified is not None else \
            read_back(model, eval_batches, n)[knowledge].float().mean().item()
        peft_model.save_pretrained(str(folder), **(
            {"path_initial_model_for_weight_conversion": str(folder / "initial")} if converted else {}))
    return SimpleNamespace(epochs=epochs, steps=step, processed_tokens=processed, recall=recall)
