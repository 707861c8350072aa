"""Replay: continue training the current adapter on the change plus a replayed sample of what stays.

Training on the change alone overwrites old knowledge (sequential LoRA edits forget, arXiv
2510.15103); replaying a sample of the memory's own stored supervision, as rehearsal methods do,
holds it in place at a cost set by the change's size. After training, every kept example is read
back; those that slipped join the next round (at most `REPAIR_ROUNDS`), so the version is
verified on the whole memory while training only ever touches the change and a sample.
"""

from __future__ import annotations

import random

from loramem.training import train_memory
from loramem.training.trainer import read_back_adapter
from loramem.updates.base import Trained, UpdateJob, UpdateMethod, update_method

REPLAY_RATIO = 1.0  # replayed examples per changed example
MIN_REPLAY = 8  # at least this many (or all kept examples), so a one-fact change still rehearses
REPAIR_ROUNDS = 2


@update_method("replay", "continue the current adapter on the change plus a replayed sample of its supervision, "
               "then repair whatever slipped (time grows with the change)")
class Replay(UpdateMethod):
    def run(self, job: UpdateJob) -> Trained:
        rng = random.Random(job.config.seed + len(job.kept) * 7919 + len(job.change))
        size = min(len(job.kept), max(MIN_REPLAY, round(REPLAY_RATIO * len(job.change))))
        sample = rng.sample(job.kept, size)
        train = job.change + sample
        r = train_memory(job.base, train, job.config, job.save_to, progress=job.progress, init_adapter=job.previous)
        epochs, steps, largest, tokens, rounds = r.epochs, r.steps, len(train), r.tokens, 1
        for _ in range(REPAIR_ROUNDS):
            ok = read_back_adapter(job.base, job.save_to, job.kept)
            slipped = [e for e, good in zip(job.kept, ok.tolist()) if not good]
            if not slipped:
                break
            chosen = set(map(id, slipped))
            train = job.change + slipped + [e for e in sample if id(e) not in chosen]
            r = train_memory(job.base, train, job.config, job.save_to, progress=job.progress,
                             init_adapter=job.save_to)
            epochs, steps, rounds = epochs + r.epochs, steps + r.steps, rounds + 1
            largest, tokens = max(largest, len(train)), max(tokens, r.tokens)
        return Trained(epochs=epochs, steps=steps, examples=largest, tokens=tokens, rounds=rounds)
