"""One memory's training state in the trainer: its examples, batches and seeded shuffle, its LoRA,
optimizer and schedule, its stopping rule, and its checkpoint after every epoch."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from loramem.adapters import LoraWeights
from loramem.adapters.batched import batched_lora
from loramem.models import BaseModel
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training.batching import Encoded, encode, make_batches
from loramem.training.config import TrainConfig, as_written
from loramem.training.distill import teacher_targets
from loramem.training.lora_state import Layers, from_state, save_adapter, to_state
from loramem.training.optim import adamw, schedule
from loramem.training.readback import counted, read_back
from loramem.training.stopping import stopping_for
from loramem.variants import VARIANTS

CHECKPOINT_FORMAT = 2  # in the run key: a checkpoint of the earlier trainer (its optimizer held PEFT's order) is not resumed


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


@dataclass
class MemoryJob:
    """One memory to write: its examples and settings, where its PEFT folder goes, and optionally a
    checkpoint (saved after every epoch; `resume` continues from it when it belongs to the same
    examples and settings), the adapter it starts from (`init_adapter`, a PEFT folder of the same
    rank and placement: an update continues its memory) and `on_epoch(epoch, train seconds)`."""

    examples: list[Example]
    config: TrainConfig
    save_to: Path
    on_epoch: Callable[[int, float], None] | None = None
    checkpoint: Path | None = None
    resume: bool = False
    init_adapter: Path | None = None


def run_key(encoded: list[Encoded], config: TrainConfig, init_adapter: Path | None = None) -> str:
    """Identifies a training run: a checkpoint resumes only the run it was saved from."""
    h = hashlib.sha256(json.dumps([CHECKPOINT_FORMAT, as_written(config)], sort_keys=True).encode())
    if init_adapter is not None:
        h.update((Path(init_adapter) / "adapter_model.safetensors").read_bytes())
    for e in encoded:
        h.update(json.dumps([e.ids, e.n_prompt, e.teacher_ids]).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict) -> None:
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


def _start_layers(job: MemoryJob, init: Layers, device: torch.device) -> Layers:
    if job.init_adapter is None:
        return init
    from peft.utils import load_peft_weights

    return from_state(load_peft_weights(str(job.init_adapter), device=str(device)))


def _train_leading(layers: Layers, rank: int | None) -> int:
    """Let only the leading `rank` rows of each A and columns of each B train (None: all): the others
    get a zero gradient, so AdamW (no weight decay) leaves them as they started. The parameters that train."""
    if rank is None:
        return sum(t.numel() for ab in layers.values() for t in ab)
    for a, b in layers.values():
        a.register_hook(lambda g, r=rank: torch.cat([g[:r], torch.zeros_like(g[r:])]))
        b.register_hook(lambda g, r=rank: torch.cat([g[:, :r], torch.zeros_like(g[:, r:])], dim=1))
    return sum(rank * (a.shape[1] + b.shape[0]) for a, b in layers.values())


class MemoryRun:
    """One memory in the trainer, stepping as it would alone."""

    def __init__(self, index: int, job: MemoryJob, base: BaseModel, fmt: PromptFormat, init: Layers) -> None:
        config = self.config = job.config
        self.index, self.job, self.start = index, job, time.perf_counter()
        self.encoded = encode(fmt, job.examples, config.objective)
        self.n = len(self.encoded)
        self.knowledge = counted(job.examples)
        self.eval_batches = make_batches(self.encoded, config.batch_size * 2, fmt.end_id)
        self.pad_id = fmt.end_id
        self.rng = random.Random(config.seed)
        self.total_steps = math.ceil(self.n / config.batch_size) * config.epochs
        # The teacher is the base model without adapters: computed before this memory joins the batch.
        self.teacher = teacher_targets(base.model, self.encoded, fmt.end_id, hidden=config.distill_hidden > 0,
                                       progress=False)
        self.key = run_key(self.encoded, config, job.init_adapter)
        saved = None
        if job.resume and job.checkpoint is not None and job.checkpoint.exists():
            saved = torch.load(job.checkpoint, weights_only=False)
            saved = saved if saved.get("key") == self.key else None
        device = next(iter(init.values()))[0].device
        start = from_state({k: v.to(device) for k, v in saved["lora"].items()}) if saved else \
            _start_layers(job, init, device)
        self.layers = {p: (a.to(init[p][0].dtype).clone().requires_grad_(True),
                           b.to(init[p][1].dtype).clone().requires_grad_(True)) for p, (a, b) in start.items()}
        self.weights = LoraWeights(self.layers, config.scale)
        self.params = [t for ab in self.layers.values() for t in ab]
        self.trained = _train_leading(self.layers, VARIANTS.get(config.variant).trained_rank(config))
        self.optimizer = adamw(self.params, config.lr)
        self.scheduler = schedule(self.optimizer, self.total_steps, config.warmup_steps)
        self.step = self.epoch = self.processed = 0
        self.train_seconds = 0.0
        if saved:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            self.rng.setstate(saved["rng"])
            self.step, self.epoch, self.processed = saved["step"], saved["epoch"], saved["processed"]
            self.train_seconds = saved["train_seconds"]
        self.resumed_from = self.epoch
        self.stopping = stopping_for(config, job.examples, saved.get("stopping") if saved else None)
        self.loss = math.nan
        self.out_of_epochs = self.epoch >= config.epochs  # resumed after its last epoch: only to verify and save
        if not self.out_of_epochs:
            self._next_epoch()

    def _next_epoch(self) -> None:
        self.epoch += 1
        self.seen = torch.zeros(self.n, dtype=torch.bool)
        self.batches = make_batches(self.encoded, self.config.batch_size, self.pad_id, self.rng)
        self.pos = 0

    @property
    def batch(self):
        return self.batches[self.pos]

    @property
    def epoch_done(self) -> bool:
        return self.pos == len(self.batches)

    def stepped(self, correct: torch.Tensor, loss: float) -> None:
        batch = self.batch
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.seen[batch.index] = correct
        self.processed += batch.n_tokens
        self.step += 1
        self.pos += 1
        self.loss = loss

    def end_of_epoch(self, recall_now: Callable[[], float]) -> bool:
        """After the epoch's last step: checkpoint, report, and True when this memory is done."""
        if self.job.checkpoint is not None:
            save_checkpoint(self.job.checkpoint, {
                "key": self.key, "epoch": self.epoch, "step": self.step, "processed": self.processed,
                "train_seconds": self.train_seconds, "rng": self.rng.getstate(), "stopping": self.stopping.state,
                "lora": to_state(self.layers), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()})
        if self.job.on_epoch is not None:
            self.job.on_epoch(self.epoch, self.train_seconds)
        if self.stopping.done(self.seen[self.knowledge].float().mean().item(), recall_now):
            return True
        if self.epoch >= self.config.epochs:
            return True
        self._next_epoch()
        return False

    def answering_recall(self, base: BaseModel) -> float:
        """Read-back recall on the model that answers questions, with this memory's LoRA alone.

        When training runs on a bf16 copy (precision.py), a read-back there can find a memory
        complete that the fp32 model, which answers, does not reproduce: a near-tied token falls the
        other way. The stopping rule asks this, so a write stops on what users will get."""
        with batched_lora(base.model, [self.weights]) as set_answering:
            set_answering(torch.tensor(0))
            return read_back(base.model, self.eval_batches, self.n)[self.knowledge].float().mean().item()

    def finish(self, base: BaseModel, templates: dict[str, dict[str, bytes]]) -> TrainResult:
        """Verify on the answering model (unless the stopping rule did) and save the PEFT folder."""
        recall = self.stopping.verified if self.stopping.verified is not None else self.answering_recall(base)
        save_adapter(base.model, self.config, self.layers, self.job.save_to, templates)
        return TrainResult(
            recall=recall, epochs=self.epoch, steps=self.step, tokens=sum(len(e.ids) for e in self.encoded),
            target_tokens=sum(len(e.ids) - e.n_prompt for e in self.encoded),
            parameters=self.trained, seconds=time.perf_counter() - self.start,
            n_examples=self.n, train_seconds=self.train_seconds, processed_tokens=self.processed,
            resumed_from_epoch=self.resumed_from)
