"""How an update trains the next version of a memory: the registry of update methods.

A method gets the current version's adapter, the examples that stay and the examples of the
change (new and superseding answers, and `forget` examples for what was removed), and saves the
next version's adapter. `loramem bench updates` compares them; DEFAULT_UPDATE is its pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loramem.registry import Registry
from loramem.supervision.examples import Example
from loramem.training.config import TrainConfig

if TYPE_CHECKING:
    from loramem.models import BaseModel

DEFAULT_UPDATE = "replay"


@dataclass
class UpdateJob:
    base: BaseModel
    config: TrainConfig  # the memory's own training settings (rank, placement, lr, ...)
    previous: Path  # the current version's adapter folder
    kept: list[Example]  # current examples that stay (forget examples of earlier removals included)
    change: list[Example]  # new and superseding examples, and forget examples of this removal
    save_to: Path  # where the next version's PEFT folder goes
    progress: bool = True


@dataclass
class Trained:
    """What a method did: epochs and optimizer steps over all its rounds, examples it trained on."""

    epochs: int
    steps: int
    examples: int  # examples in its training set (the largest round's)
    tokens: int
    rounds: int = 1


class UpdateMethod:
    """One way to train the next version; `run` saves a PEFT folder at `job.save_to`."""

    name = ""
    summary = ""

    def run(self, job: UpdateJob) -> Trained:
        raise NotImplementedError


UPDATES: Registry[type[UpdateMethod]] = Registry("update method")


def update_method(name: str, summary: str):
    """Register an UpdateMethod subclass under `name`."""

    def decorator(cls: type[UpdateMethod]) -> type[UpdateMethod]:
        cls.name, cls.summary = name, summary
        return UPDATES.register(name)(cls)

    return decorator
