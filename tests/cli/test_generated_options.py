"""The command line's options are generated from the registries and settings dataclasses: every
mode option is an `ask` flag that reaches the mode, every registered name is offered, and every
training flag defaults to TrainConfig (bench formats/kv: the 20 epochs their studies cite)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from loramem.bench import updates as updates_study
from loramem.cli import app
from loramem.cli.bench import PAPERQA_EPOCHS
from loramem.cli.lazy import load_group
from loramem.cli.options import with_mode_options
from loramem.merges import MERGES
from loramem.modes import MODES, mode_options
from loramem.options import user_options
from loramem.routing import ROUTERS, first_stage_routers
from loramem.supervision import FORMATS
from loramem.supervision.limits import InputLimits
from loramem.training import TrainConfig
from loramem.variants import VARIANTS

COMMAND = typer.main.get_command(app)


def params(*path: str) -> dict:
    command = COMMAND
    for name in path:  # `bench` loads when it is run (loramem.cli.lazy)
        command = command.commands[name] if name in command.commands else load_group(name)
    return {p.name: p for p in command.params}


class FakeMemory:
    """Stands in for Memory: records what `ask` was called with."""

    asked: dict = {}

    def ask(self, question, **kwargs):
        FakeMemory.asked = kwargs
        raise SystemExit(0)


@pytest.fixture
def asked(monkeypatch):
    monkeypatch.setattr("loramem.cli.memory.open_memory", lambda *a, **k: FakeMemory())

    def run(*args: str) -> dict:
        result = CliRunner().invoke(app, ["ask", "Who?", "--memory", "m", *args])
        assert result.exit_code == 0, result.output
        return FakeMemory.asked

    return run


@pytest.mark.parametrize("option", mode_options(), ids=lambda o: o.name)
def test_every_mode_option_is_an_ask_flag_that_reaches_the_mode(asked, option):
    value = option.option.choices[-1] if option.option.choices else option.option.type(option.option.default)
    assert asked(option.option.flag, str(value))["mode_options"] == {option.name: value}
    assert option.help in params("ask")[option.name].help


def test_mode_options_not_given_are_not_passed(asked):
    assert asked()["mode_options"] == {}
    names = [p for p in params("ask")]
    assert names.index("mode") < names.index(mode_options()[0].name)  # placed after --mode


def offered(param) -> set[str]:
    return set(re.findall(r"[\w+-]+", param.help))


def test_registered_names_are_the_offered_choices():
    ask, routers, partitions = params("ask"), params("bench", "routers"), params("bench", "partitions")
    assert set(MODES.names()) <= offered(ask["mode"])
    assert {"auto", *ROUTERS.names()} <= offered(ask["route"])
    assert set(first_stage_routers()) <= offered(routers["router"])  # bench routers trains no adapters
    assert set(MERGES.names()) <= offered(ask["merge"]) and set(MERGES.names()) <= offered(partitions["merge"])
    for command in ("write", "synth"):
        assert set(FORMATS.names()) <= offered(params(command)["format"])
    assert set(VARIANTS.names()) <= offered(params("write")["variant"])


@pytest.mark.parametrize("path", [("write",), ("bench", "perf"), ("bench", "formats"), ("bench", "kv"),
                                  ("bench", "updates")], ids=" ".join)
def test_training_flags_default_to_train_config(path):
    declared = {o.name: o for o in user_options(TrainConfig)}
    found = {name: p for name, p in params(*path).items() if name in declared}
    assert found, path
    for name, param in found.items():
        expected = declared[name].default
        if path == ("write",) and name == "rank":
            expected = str(expected)  # also takes "auto"
        if path in (("bench", "formats"), ("bench", "kv")) and name == "epochs":
            expected = PAPERQA_EPOCHS  # the budget the committed studies were measured with
        if path == ("bench", "updates") and name == "anchors":
            expected = updates_study.ANCHORS  # the stream's memory keeps the base model's answers elsewhere
        assert param.default == expected, (path, name)
        assert param.help.startswith(declared[name].help) or name == "rank"


@pytest.mark.parametrize("command", ["write", "synth"])
def test_input_limit_flags_default_to_input_limits(command):
    found = params(command)
    for option in user_options(InputLimits):
        assert found[option.name].default == option.default and found[option.name].help == option.help
        assert found[option.name].opts == [option.flag]


def test_mode_option_colliding_with_a_command_option_is_refused():
    def command(press: str = "x", **mode_options) -> None: ...

    with pytest.raises(ValueError, match="collides"):
        with_mode_options(after="press")(command)
