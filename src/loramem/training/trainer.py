"""The trainer: one to N memories written over one base model, each exactly as it would be alone.

A corpus is many documents, one memory each. Written one after another, each memory's step runs
the base model's GEMMs over one small batch (M ~ 200 tokens) and pays the optimizer, autograd and
Python overhead alone. Here up to N memories train together: every step runs one forward and
backward over all of their batches (`batched_lora`: each row applies its own memory's LoRA),
then each memory's own AdamW and lr schedule step. Per memory nothing else changes: its own
examples, batches and shuffle (its own seeded rng), its initial LoRA (PEFT's init under its
seed), its lr schedule, its early stop by read-back on the model that answers, its checkpoint. A
memory that is done (read back, or out of epochs) leaves the batch, is verified and saved as a
PEFT folder, and the next waiting memory takes its place. A single write is a batch of one.

Why each memory trains as if alone: the loss is the sum of each memory's own mean loss, and the
memories share no parameters, so each gets the gradient of its own loss (tests/training/
test_train_memories.py checks losses and gradients against PEFT's LoRA layers, and whole writes against a
plain PEFT training loop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from loramem.adapters.batched import batched_lora
from loramem.errors import LoramemError
from loramem.models import BaseModel
from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.training.batching import encode, make_batches
from loramem.training.config import BENCH_BATCH_MEMORIES, TrainConfig
from loramem.training.lora_state import init_key, initial_lora
from loramem.training.multi_batch import Piece, forward_groups, multi_forward
from loramem.training.precision import training_dtype, training_model
from loramem.training.readback import read_back
from loramem.training.run import MemoryJob, MemoryRun, TrainResult


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
    """Train a LoRA on `examples`, verify by read-back, and save it as a PEFT folder at `save_to`: a
    batch of one (`train_memories`; `MemoryJob` says what the other arguments do).

    Training stops as soon as read-back recall reaches its target, when it has plateaued
    (see stopping.py), or after `config.epochs` passes; the recall returned is measured
    on the full-precision model."""
    job = MemoryJob(examples, config, save_to, on_epoch, checkpoint, resume, init_adapter)
    return train_memories(base, [job], 1, progress)[0]


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
    bar = tqdm(total=0, desc="writing", unit="step", disable=not progress, leave=False)
    try:
        for dtype, indices in by_dtype.items():
            _train_group(base, training_model(base, dtype), dtype, jobs, indices, batch_memories, bar, results,
                         on_done)
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


def _check_job(index: int, job: MemoryJob) -> None:
    if not job.examples:
        raise LoramemError(f"memory {index} of the write has no examples to train on")


def _train_group(base: BaseModel, model: torch.nn.Module, dtype: torch.dtype, jobs: list[MemoryJob],
                 indices: list[int], limit: int, bar, results: dict[int, TrainResult],
                 on_done: Callable[[int, TrainResult], Sequence[MemoryJob] | None] | None) -> None:
    """Train `jobs[i]` for i in `indices` on `model` (the base model or its training copy, in `dtype`),
    `limit` at a time, and the jobs `on_done` adds (appended to `jobs`)."""
    fmt = PromptFormat(base.tokenizer)
    inits: dict[str, dict] = {}  # a corpus usually shares one config: PEFT's init is taken once
    templates: dict[str, dict[str, bytes]] = {}  # and PEFT's files beside the weights, written once
    waiting = [(i, jobs[i]) for i in indices]
    active: list[MemoryRun] = []
    frozen = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    for p in frozen:
        p.requires_grad_(False)  # the base weights get no gradient (PEFT freezes them too)

    def finish(run: MemoryRun) -> None:
        results[run.index] = run.finish(base, templates)
        bar.total -= run.total_steps - run.step  # an early stop leaves its steps untaken
        bar.refresh()
        for job in (on_done(run.index, results[run.index]) if on_done is not None else None) or []:
            _check_job(len(jobs), job)
            if training_dtype(job.config.precision, base) != dtype:
                raise LoramemError(f"a job added after memory {run.index} trains in another precision")
            jobs.append(job)
            waiting.append((len(jobs) - 1, job))

    try:
        while waiting or active:
            while waiting and len(active) < limit:  # outside the hooks: the teacher and PEFT's init see the base model
                index, job = waiting.pop(0)
                key = init_key(job.config)
                if key not in inits:
                    inits[key] = initial_lora(model, job.config)
                run = MemoryRun(index, job, base, fmt, inits[key])
                bar.total += run.total_steps
                bar.update(run.step)  # resumed: the steps its checkpoint holds
                if run.out_of_epochs:
                    finish(run)
                else:
                    active.append(run)
            if active:
                for run in _train_until_one_is_done(base, model, active, bar):
                    active.remove(run)
                    finish(run)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _train_until_one_is_done(base: BaseModel, model: torch.nn.Module, active: list[MemoryRun], bar) -> list[MemoryRun]:
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
            bar.update(len(active))
            loss = f"{sum(r.loss for r in active) / len(active):.3f}"
            bar.set_postfix(loss=loss, **({"together": len(active)} if len(active) > 1 else {"epoch": active[0].epoch}))
            done = [run for slot, run in enumerate(active) if run.epoch_done and run.end_of_epoch(recall_of(slot))]
            if done:
                return done


def read_back_adapter(base: BaseModel, folder: Path, examples: list[Example], batch_size: int = 16) -> torch.Tensor:
    """(len(examples),) bool: which examples the adapter saved in `folder` reproduces exactly."""
    from loramem.answering import active_adapters

    if not examples:
        return torch.zeros(0, dtype=torch.bool)
    fmt = PromptFormat(base.tokenizer)
    batches = make_batches(encode(fmt, examples), batch_size, fmt.end_id)
    with active_adapters(base.model, [("update", Path(folder))]) as model:
        return read_back(model, batches, len(examples))
