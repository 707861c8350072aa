"""Many memories written at once over one base model, each exactly as `train_memory` writes it alone.

A corpus is many documents, one memory each. Written one after another, each memory's step runs
the base model's GEMMs over one small batch (M ~ 200 tokens) and pays the optimizer, autograd and
Python overhead alone. Here up to N memories train together: every step runs one forward and
backward over all of their batches (`batched_lora`: each row applies its own memory's LoRA),
then each memory's own AdamW and lr schedule step. Per memory nothing else changes: its own
examples, batches and shuffle (its own seeded rng), its initial LoRA (PEFT's init under its
seed), its lr schedule, its early stop by read-back. A memory that is done (read back, or out of
epochs) leaves the batch, is verified and saved as the same PEFT folder `train_memory` saves,
and the next waiting memory takes its place.

Why each memory trains as if alone: the loss is the sum of each memory's own mean loss, and the
memories share no parameters, so each gets the gradient of its own loss (tests/training/
test_multi.py checks losses, gradients and weights after several steps against train_memory).

Checkpoints and resume are per write (`train_memory`); a batched write has neither: an
interrupted corpus write keeps the memories already finished (the caller commits each as it is
done) and writes the rest again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from tqdm.auto import tqdm

from loramem.adapters import LoraWeights
from loramem.adapters.batched import batched_lora
from loramem.adapters.files import CONFIG_FILE, WEIGHTS_FILE
from loramem.errors import LoramemError
from loramem.models import BaseModel
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training.batching import encode, make_batches
from loramem.training.config import TrainConfig
from loramem.training.distill import teacher_targets
from loramem.training.multi_batch import Piece, forward_groups, multi_forward
from loramem.training.precision import training_dtype, training_model
from loramem.training.readback import counted, read_back
from loramem.training.stopping import stopping_for
from loramem.training.trainer import TrainResult, _adamw, _lr_factor, _save, _save_thresholds, attached_lora

# Memories trained together by default: 8, by measurement (`loramem bench corpus`, 16 PhoneBook sectors
# of 4 entries, SmolLM2-135M, fp32, 2 threads of a 2-core AMD EPYC): 1.34x the memories per hour of one
# at a time at N = 4, 1.45x and 1.51x at N = 8 (two runs), 1.45x at N = 16 (steps 1.12x, 1.22-1.28x,
# 1.21x), every memory reading back 100% both ways in the same number of epochs; 1.53x and 1.46x at N = 8
# once `finish` stopped attaching PEFT for every save (`benchmarks/corpus-cpu.json`), then 1.29x (steps
# 1.02x, the shared machine busy) and 1.51x (steps 1.21x). Earlier, on a 2-core
# AVX512 Xeon: 1.23-1.27x at N = 2-4 in fp32, and in bf16 1.41x at N = 4 with one memory of 16 stopping
# at 75% read-back, as its early stop then read back on the bf16 training copy; the stopping rule now
# reads back on the answering model in both trainers (trainer.answering_recall).
# A CPU gains little: one memory's step (~200 tokens) already runs its GEMMs at about half the matmul
# peak, and past ~400 tokens a GEMM's operands leave the L2 (fp32 576 -> 1536 on 1 thread of the Xeon:
# 154 GFLOP/s at M <= 418, 107 at M >= 836). On a GPU, where one memory fills a small part of the
# device, a larger N (16-64) should pay.
BENCH_BATCH_MEMORIES = 8  # what `bench corpus` compares against one by one
DEFAULT_BATCH_MEMORIES = BENCH_BATCH_MEMORIES
PEFT_PREFIX = "base_model.model."
PEFT_FILES = (CONFIG_FILE, "README.md")  # what save_pretrained writes beside the weights
LORA_SETTINGS = ("rank", "alpha", "target_modules", "layers")  # TrainConfig fields PEFT's LoraConfig takes


@dataclass
class MemoryJob:
    """One memory of a batched write: what `train_memory` takes for it."""

    examples: list[Example]
    config: TrainConfig
    save_to: Path
    on_epoch: Callable[[int, float], None] | None = None  # (epoch, train seconds), as train_memory's


def initial_lora(model: torch.nn.Module, config: TrainConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The LoRA `train_memory` starts from on `model` (PEFT's init under `torch.manual_seed(config.seed)`),
    as {module path: (A, B)}: PEFT attaches it and is taken off again, so the values are PEFT's own."""
    with attached_lora(model, config) as peft_model:
        state = get_peft_model_state_dict(peft_model)
    layers: dict[str, list] = {}
    for key, value in state.items():
        path, which = key[len(PEFT_PREFIX):].rsplit(".lora_", 1)
        layers.setdefault(path, [None, None])[0 if which.startswith("A") else 1] = value.detach().clone()
    return {path: (a, b) for path, (a, b) in layers.items()}


class _Run:
    """One memory's training state: what `train_memory` keeps in its locals."""

    def __init__(self, index: int, job: MemoryJob, base: BaseModel, fmt: PromptFormat,
                 init: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        config = self.config = job.config
        self.index, self.job, self.start = index, job, time.perf_counter()
        self.encoded = encode(fmt, job.examples, config.objective)
        self.n = len(self.encoded)
        self.knowledge = counted(job.examples)
        self.eval_batches = make_batches(self.encoded, config.batch_size * 2, fmt.end_id)
        self.pad_id = fmt.end_id
        self.rng = random.Random(config.seed)
        total = math.ceil(self.n / config.batch_size) * config.epochs
        # The teacher is the base model without adapters: computed before this memory joins the batch.
        self.teacher = teacher_targets(base.model, self.encoded, fmt.end_id, hidden=config.distill_hidden > 0,
                                       progress=False)
        self.layers = {p: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for p, (a, b) in init.items()}
        self.weights = LoraWeights(self.layers, config.lora_alpha / config.rank)
        self.params = [t for ab in self.layers.values() for t in ab]
        self.optimizer = _adamw(self.params, config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: _lr_factor(s, total, config.warmup_steps))
        self.step = self.epoch = self.processed = 0
        self.train_seconds = 0.0
        self.stopping = stopping_for(config, job.examples)
        self.loss = math.nan
        self._next_epoch()

    def _next_epoch(self) -> None:
        self.epoch += 1
        self.seen = torch.zeros(self.n, dtype=torch.bool)
        self.batches = make_batches(self.encoded, self.config.batch_size, self.pad_id, self.rng)
        self.pos = 0

    @property
    def batch(self):
        return self.batches[self.pos]

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
        """After the epoch's last step: True when this memory is done, as train_memory decides."""
        if self.job.on_epoch is not None:
            self.job.on_epoch(self.epoch, self.train_seconds)
        if self.stopping.done(self.seen[self.knowledge].float().mean().item(), recall_now):
            return True
        if self.epoch >= self.config.epochs:
            return True
        self._next_epoch()
        return False

    def answering_recall(self, base: BaseModel) -> float:
        """Read-back recall on the model that answers, with this memory's LoRA alone (hooks that tests
        pin to PEFT's LoRA layers)."""
        with batched_lora(base.model, [self.weights]) as set_answering:
            set_answering(torch.tensor(0))
            return read_back(base.model, self.eval_batches, self.n)[self.knowledge].float().mean().item()

    def finish(self, base: BaseModel, templates: dict[str, dict[str, bytes]]) -> TrainResult:
        """Verify on the answering model (unless the stopping rule did) and save the PEFT folder.

        The first memory of a LoRA setting is saved through PEFT (attached, loaded, save_pretrained);
        later ones get the files PEFT wrote beside its weights (`templates`, by `_lora_key`) and their
        own weights under the same names, which is what save_pretrained writes for them (tested):
        attaching PEFT cost ~0.6 s a memory on SmolLM2, a tenth of a batched corpus write.
        """
        state = {f"{PEFT_PREFIX}{path}.lora_{w}.weight": t.detach().float().contiguous()
                 for path, (a, b) in self.layers.items() for w, t in (("A", a), ("B", b))}
        recall = self.stopping.verified if self.stopping.verified is not None else self.answering_recall(base)
        key, folder = _lora_key(self.config), self.job.save_to
        if key in templates:
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in templates[key].items():
                (folder / name).write_bytes(data)
            save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
            _save_thresholds(folder)
        else:
            with attached_lora(base.model, self.config) as peft_model:
                set_peft_model_state_dict(peft_model, state)
                _save(peft_model, folder)
            templates[key] = {f.name: f.read_bytes() for f in folder.iterdir()
                              if f.is_file() and f.name in PEFT_FILES}
        return TrainResult(
            recall=recall, epochs=self.epoch, steps=self.step, tokens=sum(len(e.ids) for e in self.encoded),
            target_tokens=sum(len(e.ids) - e.n_prompt for e in self.encoded),
            parameters=sum(p.numel() for p in self.params), seconds=time.perf_counter() - self.start,
            n_examples=self.n, train_seconds=self.train_seconds, processed_tokens=self.processed)


def train_memories(
    base: BaseModel,
    jobs: Sequence[MemoryJob],
    batch_memories: int = BENCH_BATCH_MEMORIES,
    progress: bool = True,
    on_done: Callable[[int, TrainResult], Sequence[MemoryJob] | None] | None = None,
) -> list[TrainResult]:
    """Train every job's memory, up to `batch_memories` at a time in one batch; their TrainResults in order.

    Each memory is saved at its job's `save_to` as soon as it is done, and `on_done(index, result)`
    is called then (with the base model free of hooks), so a caller can commit it while the others
    train. `on_done` may return more jobs (a search's next probe): they are numbered after every
    job so far, wait for room in the same batch, and their results follow in the list returned; they
    must train in the precision of the job that made them. Jobs whose settings train in different
    precisions run as separate batches, one after the other. `seconds` of a result runs from its
    memory joining the batch to its save, and its `train_seconds` is its share (by tokens) of the
    steps it took part in.
    """
    if batch_memories < 1:
        raise LoramemError(f"batch_memories must be at least 1, got {batch_memories}")
    jobs = list(jobs)
    for i, job in enumerate(jobs):
        _check_job(i, job)
    results: dict[int, TrainResult] = {}
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, job in enumerate(jobs):
        by_dtype.setdefault(training_dtype(job.config.precision, base), []).append(i)
    bar = tqdm(total=len(jobs), desc="writing", unit="memory", disable=not progress, leave=False)
    try:
        for dtype, indices in by_dtype.items():
            _train_group(base, training_model(base, dtype), dtype, jobs, indices, batch_memories, bar, results,
                         on_done)
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


def _check_job(index: int, job: MemoryJob) -> None:
    if not job.examples:
        raise LoramemError(f"memory {index} of the batched write has no examples to train on")


def _lora_key(config: TrainConfig) -> str:
    """The settings PEFT's adapter_config.json depends on (with the model)."""
    d = asdict(config)
    return repr([d[k] for k in LORA_SETTINGS])


def _init_key(config: TrainConfig) -> str:
    """The settings PEFT's initial LoRA depends on (with the model): equal keys, equal initial weights."""
    d = asdict(config)
    return repr([d[k] for k in (*LORA_SETTINGS, "seed")])


def _train_group(base: BaseModel, model: torch.nn.Module, dtype: torch.dtype, jobs: list[MemoryJob],
                 indices: list[int], limit: int, bar, results: dict[int, TrainResult],
                 on_done: Callable[[int, TrainResult], Sequence[MemoryJob] | None] | None) -> None:
    """Train `jobs[i]` for i in `indices` on `model` (the base model or its training copy, in `dtype`),
    `limit` at a time, and the jobs `on_done` adds (appended to `jobs`)."""
    fmt = PromptFormat(base.tokenizer)
    inits: dict[str, dict] = {}  # a corpus usually shares one config: PEFT's init is taken once
    templates: dict[str, dict[str, bytes]] = {}  # and PEFT's files beside the weights, written once
    waiting = [(i, jobs[i]) for i in indices]
    active: list[_Run] = []
    frozen = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    for p in frozen:
        p.requires_grad_(False)  # the base weights get no gradient (PEFT freezes them too)
    try:
        while waiting or active:
            while waiting and len(active) < limit:  # outside the hooks: the teacher and PEFT's init see the base model
                index, job = waiting.pop(0)
                key = _init_key(job.config)
                if key not in inits:
                    inits[key] = initial_lora(model, job.config)
                active.append(_Run(index, job, base, fmt, inits[key]))
            done = _train_until_one_is_done(base, model, active, bar)
            for run in done:
                active.remove(run)
                results[run.index] = run.finish(base, templates)
                bar.update(1)
                for job in (on_done(run.index, results[run.index]) if on_done is not None else None) or []:
                    _check_job(len(jobs), job)
                    if training_dtype(job.config.precision, base) != dtype:
                        raise LoramemError(f"a job added after memory {run.index} trains in another precision")
                    jobs.append(job)
                    waiting.append((len(jobs) - 1, job))
                    bar.total += 1
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _train_until_one_is_done(base: BaseModel, model: torch.nn.Module, active: list[_Run], bar) -> list[_Run]:
    """Batched steps over `active` until at least one memory is done; those memories."""
    with batched_lora(model, [run.weights for run in active]) as set_rows:

        def recall_of(slot: int) -> Callable[[], float]:
            def recall() -> float:  # on the model that answers (see answering_recall), this memory's adapter alone
                run = active[slot]
                if model is base.model:
                    set_rows(torch.tensor(slot))  # one index: every row of the read-back runs this memory's adapter
                    return read_back(model, run.eval_batches, run.n)[run.knowledge].float().mean().item()
                return run.answering_recall(base)

            return recall

        while True:
            model.train()
            tick = time.perf_counter()
            pieces = [Piece(run.batch, slot, run.teacher, run.config.distill_hidden) for slot, run in enumerate(active)]
            outs = []
            for group in forward_groups(pieces, model.config):  # each group's activations freed by its backward
                got = multi_forward(model, group, set_rows, active[0].pad_id)
                torch.stack([o.loss for o in got]).sum().backward()  # each memory's own mean: its own gradient
                outs += got
            tokens = [run.batch.n_tokens for run in active]
            for run, out in zip(active, outs):
                run.stepped(out.correct, out.loss.item())
            seconds = time.perf_counter() - tick
            for run, n in zip(active, tokens):
                run.train_seconds += seconds * n / sum(tokens)
            bar.set_postfix(together=len(active), loss=f"{sum(r.loss for r in active) / len(active):.3f}")
            done = [run for slot, run in enumerate(active)
                    if run.pos == len(run.batches) and run.end_of_epoch(recall_of(slot))]
            if done:
                return done
