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

If the repairs leave the version below the recall a write of it would stop on (every record of a
fact table), a last round trains on everything the version holds, as a write would, starting from
the repaired adapter. Without it a removal could cost facts nobody touched: its change is only the
forget examples, so the first round rehearses 8 of the kept facts, and a 41-entry phone book read
back 86% after three repairs (issue 39). The update itself refuses a version that still falls short
(updates/apply.py).
"""

from __future__ import annotations

import random

from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR, FORGET
from loramem.training.stopping import required_recall
from loramem.updates.base import Trained, UpdateJob, UpdateMethod, update_method

REPLAY_RATIO = 1.0  # replayed examples per changed example
MIN_REPLAY = 8  # at least this many (or all kept examples), so a one-fact change still rehearses
REPAIR_ROUNDS = 3
REPAIR_ANCHORS = 4  # anchors beside the slipped facts and the change in a repair round


def _round(job: UpdateJob, examples: list[Example], so_far: Trained) -> Trained:
    """Train `examples` into `job.save_to`, from the current version's adapter in the first round and
    from the last round's after; `so_far` with this round added."""
    from loramem.training.trainer import train_memory  # torch: loaded when an update trains

    init = job.save_to if so_far.rounds else job.previous
    r = train_memory(job.base, examples, job.config, job.save_to, progress=job.progress, init_adapter=init)
    return Trained(epochs=so_far.epochs + r.epochs, steps=so_far.steps + r.steps, rounds=so_far.rounds + 1,
                   examples=max(so_far.examples, len(examples)), tokens=max(so_far.tokens, r.tokens))


@update_method("replay", "continue the current adapter on the change plus a replayed sample of its supervision, "
               "then repair whatever slipped (time grows with the change)")
class Replay(UpdateMethod):
    def run(self, job: UpdateJob) -> Trained:
        from loramem.training.trainer import read_back_adapter  # torch: loaded when an update trains

        rng = random.Random(job.config.seed + len(job.kept) * 7919 + len(job.change))
        anchors = [e for e in job.kept if e.kind == ANCHOR]  # cheap and what keeps the base model's knowledge
        facts = [e for e in job.kept if e.kind != ANCHOR]
        size = min(len(facts), max(MIN_REPLAY, round(REPLAY_RATIO * len(job.change))))
        sample = rng.sample(facts, size)
        trained = _round(job, job.change + anchors + sample, Trained(epochs=0, steps=0, examples=0, tokens=0, rounds=0))
        everything = facts + job.change  # anchors are distilled, not reproduced token for token
        knowledge = [e.kind != FORGET for e in everything]  # what the version's recall counts
        repaired: dict[int, Example] = {}  # every example that slipped in some round
        for repair in range(REPAIR_ROUNDS + 1):
            ok = read_back_adapter(job.base, job.save_to, everything).tolist()
            slipped = [e for e, good in zip(everything, ok) if not good]
            if not slipped or repair == REPAIR_ROUNDS:
                break
            for e in slipped:
                repaired.setdefault(id(e), e)
            rest = [e for e in facts if id(e) not in repaired]
            repair_set = (list(repaired.values()) + [e for e in job.change if id(e) not in repaired]
                          + rng.sample(anchors, min(REPAIR_ANCHORS, len(anchors)))
                          + rng.sample(rest, min(len(rest), MIN_REPLAY // 2)))
            trained = _round(job, repair_set, trained)
        recall = sum(g for g, k in zip(ok, knowledge) if k) / max(1, sum(knowledge))
        if recall < required_recall(job.config, everything):
            trained = _round(job, everything + anchors, trained)  # the last resort: a write of it all
        return trained
