"""Answer modes: how memories take part in an answer. Picked by name with `--mode`."""

from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.modes import base_only, icl, kv, parametric, rag  # noqa: F401  (registration)

__all__ = ["MODES", "AnswerMode", "Plan"]
