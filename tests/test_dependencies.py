"""Every package that src/ imports is declared: in pyproject.toml, or installed by the Makefile with --no-deps."""

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "loramem").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"loramem"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_declared():
    declared = {_normal(re.split(r"[ ;<>=!\[~]", r, maxsplit=1)[0]) for r in requires("loramem") or []}
    no_deps = {_normal(m) for m in re.findall(r"--no-deps\s+([A-Za-z0-9_.-]+?)(?:==|\s)", (ROOT / "Makefile").read_text())}
    owners = packages_distributions()
    undeclared = {}
    for module in sorted(_imported_modules()):
        dists = {_normal(d) for d in owners.get(module, [module])}
        if not dists & (declared | no_deps):
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
