"""The `loramem` command line: parse, validate, call the library. Errors print as one line.

`memory` holds the user's commands, `versions` those on versions and the store (log, rollback, gc,
recover; registered on `memory`'s app when imported), `bench` the benchmarks (loaded only when run:
`lazy`), `options` what they share. Nothing here imports torch before a command needs it, so `--help`,
`ls`, `show` and `log` answer at once (tests/cli/test_cli_start.py).
"""

from __future__ import annotations

import errno
import os
import sys

from loramem.cli import versions  # noqa: F401 (its commands join the app)
from loramem.cli.memory import app
from loramem.errors import LoramemError

__all__ = ["app", "main"]

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How a full disk reads where no errno survives: SQLite's SQLITE_FULL (sqlite3.OperationalError), and
# the OS's own words inside another library's message (safetensors: "I/O error: No space left on device (os error 28)").
_FULL_WORDS = ("database or disk is full", *(os.strerror(n) for n in _FULL_ERRNOS))


def disk_full(error: BaseException) -> str | None:
    """When `error`, or an error that led to it, is a full disk: the file being written ('' if unknown)."""
    seen: set[int] = set()
    at: BaseException | None = error
    while at is not None and id(at) not in seen:
        seen.add(id(at))
        if isinstance(at, OSError) and at.errno in _FULL_ERRNOS:
            return str(at.filename or "")
        if any(words in str(at) for words in _FULL_WORDS):
            return ""
        at = at.__cause__ or at.__context__
    return None


def main() -> None:
    """The console script: run the app; a LoramemError, or a full disk, is one line on stderr and exit status 1."""
    try:
        app()
    except LoramemError as e:
        print(f"error: {e}", file=sys.stderr)  # one line, never wrapped
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        path = disk_full(e)
        if path is None:
            raise
        # A commit is one SQLite transaction and adapters are renamed into place whole, so a write,
        # update or rollback that runs out of space leaves the store as its last commit left it.
        where = f" (writing {path})" if path else ""
        print(f"error: the disk is full{where}: free some space and run the command again; "
              "the store keeps its last committed state", file=sys.stderr)
        sys.exit(1)
