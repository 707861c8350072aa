"""The answer-mode interface: given the chosen memories and the question, what goes in context,
which adapters run, and whether the context is read through a compressed KV cache."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from loramem.errors import LoramemError
from loramem.options import UserOption, user_options
from loramem.registry import Registry
from loramem.store.records import MemoryRecord

MODES: Registry[type[AnswerMode]] = Registry("answer mode")


@dataclass
class Plan:
    """What the answerer does: `context` before the question, `adapters` active while decoding,
    and `kv` (KVSettings) when the context is prefilled into a compressed cache (the kv mode)."""

    context: str | None
    adapters: list[MemoryRecord]
    kv: object | None = None


class AnswerMode(ABC):
    """One way memories take part in an answer. Its options are the fields of `settings_type`, a
    dataclass (see loramem.options): the CLI's flags and the server's request fields come from it."""

    name: str = ""
    needs_memory: bool = True
    batched: bool = False  # the server may decode it in one batch with other requests (one adapter or none)
    settings_type: type | None = None

    def __init__(self, **options) -> None:
        valid = [o.name for o in user_options(self.settings_type)] if self.settings_type else []
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise LoramemError(f"mode {self.name!r} takes no option {', '.join(unknown)} "
                               f"(its options: {', '.join(valid) or 'none'})")
        self.settings = self.settings_type(**options) if self.settings_type else None

    @abstractmethod
    def plan(self, memories: list[MemoryRecord], question: str) -> Plan:
        """Decide context and adapters for an answer to `question` drawing on `memories`."""


@dataclass(frozen=True)
class ModeOption:
    """A user option of one or more answer modes (modes sharing a settings field share it)."""

    option: UserOption
    modes: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.option.name

    @property
    def help(self) -> str:
        return f"{', '.join(self.modes)}: {self.option.describe()}"


def mode_options() -> list[ModeOption]:
    """Every registered mode's options, once each, for the CLI's flags and the server's fields."""
    found: dict[str, ModeOption] = {}
    for mode in MODES.names():
        settings = MODES.get(mode).settings_type
        for opt in user_options(settings) if settings else []:
            seen = found.get(opt.name)
            if seen and seen.option != opt:
                raise ValueError(f"mode option {opt.name!r} of {mode!r} differs from that of {seen.modes[0]!r}; "
                                 "one name means one setting")
            found[opt.name] = ModeOption(opt, (*seen.modes, mode) if seen else (mode,))
    return list(found.values())


def default_mode(with_memories: bool) -> str:
    """The mode a question is answered in when none is named."""
    return "parametric" if with_memories else "base"
