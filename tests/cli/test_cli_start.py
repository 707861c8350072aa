"""The command line starts without torch: `--help`, `ls`, `show`, `log` and every command's own
help load no torch, transformers or PEFT (issue 41: they took 26 s on a loaded 2-core machine).

Each case runs in a fresh interpreter, as a user's shell does, and reports which of the heavy
packages were loaded when the command returned (a module `lazy_loader` prepared but never used
does not count: `torch._C` is loaded only when torch really is).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch._C", "transformers", "peft", "sklearn")

PROBE = """
import json, sys
from loramem.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except Exception as e:  # a refused command (an unknown memory) still must not load torch
    print(type(e).__name__, e, file=sys.stderr)
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def loaded_by(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [
    ["--help"], ["ls"], ["ls", "--json"], ["show", "nothing"], ["log", "nothing"],
    ["ask", "--help"], ["write", "--help"], ["serve", "--help"], ["datasheet", "--help"], ["gc"],
])
def test_light_commands_load_no_torch(args, tmp_path):
    store = [] if "--help" in args else ["--store", str(tmp_path / "store")]
    assert loaded_by(*args, *store) == []


def test_the_probe_sees_torch_when_a_command_loads_it(tmp_path):
    """The check can fail: `bench perf --help` imports the studies, and with them torch."""
    assert "torch._C" in loaded_by("bench", "perf", "--help")
