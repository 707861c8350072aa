"""Answer modes: how memories take part in an answer. Picked by name with `--mode`."""

from loramem.modes import base_only, icl, kv, parametric, rag  # noqa: F401  (registration)
from loramem.modes.base import MODES, AnswerMode, Plan

__all__ = ["MODES", "AnswerMode", "Plan"]
