"""Retrain: a fresh adapter on all of the next version's knowledge (the exact, slow reference).

Nothing of the old adapter survives, so nothing removed can linger; the cost grows with the
memory, not with the change.
"""

from __future__ import annotations

from loramem.supervision.stored import FORGET
from loramem.updates.base import Trained, UpdateJob, UpdateMethod, update_method


@update_method("retrain", "a fresh adapter trained on all current supervision (exact; time grows with the memory)")
class Retrain(UpdateMethod):
    def run(self, job: UpdateJob) -> Trained:
        examples = [e for e in job.kept + job.change if e.kind != FORGET]  # nothing to forget in a fresh adapter
        from loramem.training.trainer import train_memory  # torch: loaded when an update trains

        r = train_memory(job.base, examples, job.config, job.save_to, progress=job.progress)
        return Trained(epochs=r.epochs, steps=r.steps, examples=len(examples), tokens=r.tokens)
