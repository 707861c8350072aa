"""Answer modes: how memories take part in an answer. Picked by name with `--mode`.

One file per mode: every module of this package is imported here so that its `@MODES.register`
runs, and a new mode is one new file (its options, CLI flags and server fields come with it).
"""

import importlib
import pkgutil

from loramem.modes.base import MODES, AnswerMode, ModeOption, Plan, default_mode, mode_options

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODES", "AnswerMode", "ModeOption", "Plan", "default_mode", "mode_options"]
