"""One registration idiom, `register(name, *aliases)`, and one discovery for every registry package."""

import importlib
import pkgutil
import sys

import pytest

from loramem.errors import LoramemError
from loramem.registry import Registry

PACKAGES = ["loramem.merges", "loramem.modes", "loramem.routing", "loramem.supervision.formats",
            "loramem.supervision.generators", "loramem.updates", "loramem.variants"]


def test_a_name_and_its_aliases_are_one_entry_and_clashes_are_refused():
    things = Registry("thing")

    @things.register("alpha", "a")
    class Alpha:
        pass

    assert things.get("a") is things.get("alpha") is Alpha and things.names() == ["a", "alpha"]
    with pytest.raises(ValueError, match="'a' is registered twice"):
        things.register("beta", "a")(object())
    with pytest.raises(LoramemError, match="Did you mean 'alpha'"):
        things.get("alpah")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_registry_package_loads_every_module(package):
    pkg = importlib.import_module(package)
    # updates.apply imports the API, which imports updates; routing.likelihood is the reranker's torch
    # signal, loaded when it scores (tests/cli/test_cli_start.py: naming the routers loads no torch)
    skipped = {"loramem.updates": {"apply"}, "loramem.routing": {"likelihood"}}.get(package, set())
    names = {m.name for m in pkgutil.iter_modules(pkg.__path__)} - skipped
    assert names and all(f"{package}.{n}" in sys.modules for n in names)
