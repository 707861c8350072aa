"""Where the default store lives, and what a memory may be named."""

from __future__ import annotations

import os
import re
from pathlib import Path

from loramem.errors import LoramemError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_store_path() -> Path:
    env = os.environ.get("LORAMEM_STORE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("loramem")) / "store"


def validate_name(name: str) -> str:
    if not _NAME.match(name or "") or ".." in name:
        raise LoramemError(
            f"invalid memory name {name!r}: use letters, digits, '.', '_' and '-' "
            "(no path separators, no '..', at most 128 characters)"
        )
    return name
