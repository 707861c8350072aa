"""Answer modes: how memories take part in an answer. Picked by name with `--mode`.

One file per mode: every module of this package is imported here so that its `@MODES.register`
runs, and a new mode is one new file (its options, CLI flags and server fields come with it).
"""

from loramem.modes.base import MODES, AnswerMode, ModeOption, Plan, default_mode, mode_options
from loramem.registry import discover

discover(__name__, __path__)

__all__ = ["MODES", "AnswerMode", "ModeOption", "Plan", "default_mode", "mode_options"]
