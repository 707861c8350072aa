"""LoRA training that stops as soon as the memory reads back its own supervision."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from tqdm.auto import tqdm

from loramem.adapters import UnsupportedAdapter, save_thresholds
from loramem.models import BaseModel
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training.batching import Encoded, encode, make_batches
from loramem.training.config import TARGET_MODULES, TrainConfig, parse_layers
from loramem.training.distill import teacher_targets
from loramem.training.fused import fused_lora
from loramem.training.loss import supervised_forward
from loramem.training.precision import training_dtype, training_model
from loramem.training.readback import counted, read_back
from loramem.training.stopping import stopping_for


@dataclass
class TrainResult:
    """What a write did and how well it stored its supervision."""

    recall: float  # share of examples read back exactly
    epochs: int
    steps: int
    tokens: int  # tokens in one pass over the supervision (prompt + target)
    target_tokens: int  # supervised tokens in one pass
    parameters: int  # trainable LoRA parameters
    seconds: float  # the whole write: encoding, training, verification, saving
    n_examples: int
    train_seconds: float = 0.0  # optimizer steps only (what throughput is measured on)
    processed_tokens: int = 0  # non-padding tokens through forward and backward, all epochs
    resumed_from_epoch: int = 0  # 0 unless the run continued from a checkpoint


@contextmanager
def attached_lora(model: torch.nn.Module, config: TrainConfig) -> Iterator[torch.nn.Module]:
    """A fresh LoRA on `model` for the duration of the block; the model is restored afterwards (its
    train/eval mode too: training leaves it in train mode, where a model with dropout answers at random)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    layers = parse_layers(config.layers, model.config.num_hidden_layers)
    targets = TARGET_MODULES[config.target_modules]
    if layers is not None and isinstance(targets, str):
        # PEFT takes layer ranges only with named modules: every linear layer inside the decoder layers.
        targets = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                          if isinstance(m, torch.nn.Linear) and ".layers." in f".{name}"})
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        layers_to_transform=layers,
        layers_pattern="layers" if layers is not None else None,
        task_type="CAUSAL_LM",
    )
    was_training = model.training
    peft_model = get_peft_model(model, lora)
    try:
        yield peft_model
    finally:
        peft_model.unload()  # removes the injected LoRA layers, leaving the base model as it was
        model.train(was_training)


def answering_recall(base: BaseModel, config: TrainConfig, peft_model: torch.nn.Module,
                     eval_batches: list, knowledge: torch.Tensor) -> float:
    """Read-back recall of `peft_model`'s LoRA on the model that answers questions.

    When training runs on a bf16 copy (precision.py), a read-back there can find a memory complete
    that the fp32 model, which answers, does not reproduce: a near-tied token falls the other way.
    A write's stopping rule asks this, so a write stops on what users will get.
    """
    n = len(knowledge)
    if peft_model.get_base_model() is base.model:
        return read_back(base.model, eval_batches, n)[knowledge].float().mean().item()
    state = {k: v.detach().float() for k, v in get_peft_model_state_dict(peft_model).items()}
    with torch.random.fork_rng(devices=[]), attached_lora(base.model, config) as answering:  # PEFT's init seeds
        set_peft_model_state_dict(answering, state)
        return read_back(answering.get_base_model(), eval_batches, n)[knowledge].float().mean().item()


def _adamw(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """AdamW as one fused kernel over all LoRA tensors where the device has it (CPU and CUDA do),
    in place of a few ops per tensor; the per-tensor loop elsewhere."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _run_key(encoded: list[Encoded], config: TrainConfig, init_adapter: Path | None = None) -> str:
    """Identifies a training run: a checkpoint resumes only the run it was saved from."""
    h = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    if init_adapter is not None:
        h.update((Path(init_adapter) / "adapter_model.safetensors").read_bytes())
    for e in encoded:
        h.update(json.dumps([e.ids, e.n_prompt, e.teacher_ids]).encode())
    return h.hexdigest()


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialized in memory, then written as plain bytes: a full disk is then an OSError with errno
    # ENOSPC (one line from the CLI), where torch's own file writer says only "unexpected pos".
    data = io.BytesIO()
    torch.save(state, data)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_bytes(data.getbuffer())
    except OSError as e:
        tmp.unlink(missing_ok=True)  # give the space back
        raise OSError(e.errno, e.strerror, str(path)) from e  # a failed write names no file
    os.replace(tmp, path)  # a kill mid-save leaves the previous checkpoint intact


def _save(peft_model, folder: Path) -> None:
    """The PEFT folder, plus the TIES trimming thresholds that make merges cheap later."""
    peft_model.save_pretrained(str(folder))
    _save_thresholds(folder)


def _save_thresholds(folder: Path) -> None:
    """The TIES trimming thresholds beside a saved adapter, when it is a plain LoRA."""
    try:
        save_thresholds(folder)
    except UnsupportedAdapter:
        pass  # not a plain LoRA: merges fall back to PEFT


def train_memory(
    base: BaseModel,
    examples: list[Example],
    config: TrainConfig,
    save_to: Path,
    progress: bool = True,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
    init_adapter: Path | None = None,
) -> TrainResult:
    """Train a LoRA on `examples`, verify by read-back, and save it as a PEFT folder at `save_to`.

    Training stops as soon as read-back recall reaches its target, when it has plateaued
    (see stopping.py), or after `config.epochs` passes; the recall returned is measured
    on the full-precision model.
    With `checkpoint`, the state after every epoch is saved there; `resume` continues from it
    when it belongs to the same examples and settings. `on_epoch(epoch, seconds)` is called
    after each epoch's checkpoint. `init_adapter` (a PEFT folder of the same rank and placement)
    starts training from its weights instead of a fresh LoRA: an update continues its memory.
    """
    start = time.perf_counter()
    fmt = PromptFormat(base.tokenizer)
    encoded = encode(fmt, examples, config.objective)
    pad_id = fmt.end_id
    rng = random.Random(config.seed)
    eval_batches = make_batches(encoded, config.batch_size * 2, pad_id)
    n = len(encoded)
    knowledge = counted(examples)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    teacher = teacher_targets(base.model, encoded, pad_id, hidden=config.distill_hidden > 0, progress=progress)
    key = _run_key(encoded, config, init_adapter)
    saved = None
    if resume and checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        if saved.get("key") != key:
            saved = None
    resumed_from = saved["epoch"] if saved else 0

    def forward(model, batch):
        return supervised_forward(model, batch, teacher, config.distill_hidden)

    train_on = training_model(base, training_dtype(config.precision, base))
    with attached_lora(train_on, config) as peft_model:
        hf = peft_model.get_base_model()
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = _adamw(params, config.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: _lr_factor(s, total_steps, config.warmup_steps)
        )
        step, epoch, processed, train_seconds = 0, 0, 0, 0.0
        if init_adapter is not None and not saved:
            from peft.utils import load_peft_weights

            set_peft_model_state_dict(peft_model, load_peft_weights(str(init_adapter), device=str(params[0].device)))
        if saved:
            set_peft_model_state_dict(peft_model, saved["lora"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            rng.setstate(saved["rng"])
            step, epoch, processed, train_seconds = saved["step"], saved["epoch"], saved["processed"], saved["train_seconds"]
        stopping = stopping_for(config, examples, saved.get("stopping") if saved else None)
        bar = tqdm(total=total_steps, initial=step, desc="writing", unit="step", disable=not progress, leave=False)
        try:
            with fused_lora(peft_model):  # one autograd node per LoRA layer (see fused.py)
                for epoch in range(resumed_from + 1, config.epochs + 1):
                    hf.train()
                    seen = torch.zeros(n, dtype=torch.bool)
                    tick = time.perf_counter()
                    for batch in make_batches(encoded, config.batch_size, pad_id, rng):
                        processed += batch.n_tokens
                        out = forward(hf, batch)
                        out.loss.backward()
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        seen[batch.index] = out.correct
                        step += 1
                        bar.update(1)
                        bar.set_postfix(epoch=epoch, loss=f"{out.loss.item():.3f}")
                    train_seconds += time.perf_counter() - tick
                    if checkpoint is not None:
                        _save_checkpoint(checkpoint, {
                            "key": key, "epoch": epoch, "step": step, "processed": processed,
                            "train_seconds": train_seconds, "rng": rng.getstate(), "stopping": stopping.state,
                            "lora": get_peft_model_state_dict(peft_model),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        })
                    if on_epoch is not None:
                        on_epoch(epoch, train_seconds)
                    if stopping.done(seen[knowledge].float().mean().item(),
                                     lambda: answering_recall(base, config, peft_model, eval_batches, knowledge)):
                        bar.set_postfix(epoch=epoch, recall=f"{stopping.verified:.0%}")
                        break
        finally:
            bar.close()
        epoch = max(epoch, resumed_from)
        if train_on is base.model:  # trained on the answering model itself: verify and save here
            recall = stopping.verified
            if recall is None:
                recall = read_back(hf, eval_batches, n)[knowledge].float().mean().item()
            _save(peft_model, save_to)
        else:
            lora_state = {k: v.detach().float().clone() for k, v in get_peft_model_state_dict(peft_model).items()}

    if train_on is not base.model:
        # Verify (unless the stopping rule did, on the same model) and save on the model that answers questions.
        with attached_lora(base.model, config) as peft_model:
            set_peft_model_state_dict(peft_model, lora_state)
            recall = stopping.verified
            if recall is None:
                recall = read_back(peft_model.get_base_model(), eval_batches, n)[knowledge].float().mean().item()
            _save(peft_model, save_to)

    return TrainResult(
        recall=recall,
        epochs=epoch,
        steps=step,
        tokens=sum(len(e.ids) for e in encoded),
        target_tokens=sum(len(e.ids) - e.n_prompt for e in encoded),
        parameters=sum(p.numel() for p in params),
        seconds=time.perf_counter() - start,
        n_examples=n,
        train_seconds=train_seconds,
        processed_tokens=processed,
        resumed_from_epoch=resumed_from,
    )


def read_back_adapter(base: BaseModel, folder: Path, examples: list[Example], batch_size: int = 16) -> torch.Tensor:
    """(len(examples),) bool: which examples the adapter saved in `folder` reproduces exactly."""
    from loramem.answering import active_adapters

    if not examples:
        return torch.zeros(0, dtype=torch.bool)
    fmt = PromptFormat(base.tokenizer)
    batches = make_batches(encode(fmt, examples), batch_size, fmt.end_id)
    with active_adapters(base.model, [("update", Path(folder))]) as model:
        return read_back(model, batches, len(examples))
