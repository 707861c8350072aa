"""The `loramem` command line: parse, validate, call the library. Errors print as one line.

`memory` holds the user's commands, `bench` the benchmarks, `options` what they share.
"""

from __future__ import annotations

import sys

from loramem.cli.bench import bench_app
from loramem.cli.memory import app
from loramem.errors import LoramemError

app.add_typer(bench_app, name="bench")

__all__ = ["app", "main"]


def main() -> None:
    """The console script: run the app; a LoramemError is one line on stderr and exit status 1."""
    try:
        app()
    except LoramemError as e:
        print(f"error: {e}", file=sys.stderr)  # one line, never wrapped
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
