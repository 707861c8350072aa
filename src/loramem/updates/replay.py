"""Replay: continue training the current adapter on the change plus a replayed sample of what stays.

Training on the change alone overwrites old knowledge (sequential LoRA edits forget, arXiv
2510.15103); replaying a sample of the memory's own stored supervision, as rehearsal methods do,
holds it in place at a cost set by the change's size. Every anchor (the base model's own answers
to general prompts, training/anchors.py) is replayed too: they are few and short, and they are
what keeps the base model's knowledge through a stream of updates. After training, the whole
next version is read back; whatever slipped, in this round or an earlier one, is trained again
beside the change, a few anchors and a fresh half-size sample of the rest (at most
`REPAIR_ROUNDS` rounds), so the version is verified on the whole memory while training touches
the change, the anchors and samples. A repair round is smaller than the first: in the committed
stream every update repaired at least once, and a round over the whole first set cost as much as
the first. Rounds over the slipped facts, the change and 4 anchors alone did not converge (one
version read back 92% after three of them): fixing one fact let another slip.
"""

from __future__ import annotations

import random

from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR
from loramem.training import train_memory
from loramem.training.trainer import read_back_adapter
from loramem.updates.base import Trained, UpdateJob, UpdateMethod, update_method

REPLAY_RATIO = 1.0  # replayed examples per changed example
MIN_REPLAY = 8  # at least this many (or all kept examples), so a one-fact change still rehearses
REPAIR_ROUNDS = 3
REPAIR_ANCHORS = 4  # anchors beside the slipped facts and the change in a repair round


@update_method("replay", "continue the current adapter on the change plus a replayed sample of its supervision, "
               "then repair whatever slipped (time grows with the change)")
class Replay(UpdateMethod):
    def run(self, job: UpdateJob) -> Trained:
        rng = random.Random(job.config.seed + len(job.kept) * 7919 + len(job.change))
        anchors = [e for e in job.kept if e.kind == ANCHOR]  # cheap and what keeps the base model's knowledge
        facts = [e for e in job.kept if e.kind != ANCHOR]
        size = min(len(facts), max(MIN_REPLAY, round(REPLAY_RATIO * len(job.change))))
        sample = rng.sample(facts, size)
        train = job.change + anchors + sample
        r = train_memory(job.base, train, job.config, job.save_to, progress=job.progress, init_adapter=job.previous)
        epochs, steps, largest, tokens, rounds = r.epochs, r.steps, len(train), r.tokens, 1
        everything = facts + job.change  # anchors are distilled, not reproduced token for token
        repaired: dict[int, Example] = {}  # every example that slipped in some round
        for _ in range(REPAIR_ROUNDS):
            ok = read_back_adapter(job.base, job.save_to, everything)
            slipped = [e for e, good in zip(everything, ok.tolist()) if not good]
            if not slipped:
                break
            for e in slipped:
                repaired.setdefault(id(e), e)
            rest = [e for e in facts if id(e) not in repaired]
            train = (list(repaired.values()) + [e for e in job.change if id(e) not in repaired]
                     + rng.sample(anchors, min(REPAIR_ANCHORS, len(anchors)))
                     + rng.sample(rest, min(len(rest), MIN_REPLAY // 2)))
            r = train_memory(job.base, train, job.config, job.save_to, progress=job.progress,
                             init_adapter=job.save_to)
            epochs, steps, rounds = epochs + r.epochs, steps + r.steps, rounds + 1
            largest, tokens = max(largest, len(train)), max(tokens, r.tokens)
        return Trained(epochs=epochs, steps=steps, examples=largest, tokens=tokens, rounds=rounds)
