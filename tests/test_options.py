"""User options are declared once, as dataclass fields with help: modes build their settings
from them, and one name means one setting across modes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from loramem.errors import LoramemError
from loramem.modes import MODES, AnswerMode, Plan, mode_options
from loramem.modes.kv import KVSettings
from loramem.modes.rag import RagSettings
from loramem.options import option, user_options


def test_fields_without_help_are_internal():
    assert [o.name for o in user_options(KVSettings)] == ["press", "compression", "adapter_phase"]  # not seed
    (top_k, retriever) = user_options(RagSettings)
    assert (top_k.type, top_k.default, top_k.describe()) == (int, 3, "passages put in context (default 3)")
    assert retriever.describe() == "how passages are found: bm25 (default) | embedding"


def test_modes_build_their_settings_dataclass():
    assert MODES.get("rag")().settings == RagSettings(rag_top_k=3, retriever="bm25")
    assert MODES.get("parametric+rag")(rag_top_k=1).settings.rag_top_k == 1
    assert MODES.get("kv")(press="knorm").settings == KVSettings(press="knorm")
    assert MODES.get("icl")().settings is None
    with pytest.raises(LoramemError, match=r"takes no option seed \(its options: press, compression, adapter_phase\)"):
        MODES.get("kv")(seed=1)
    with pytest.raises(LoramemError, match="rag top-k must be at least 1"):
        MODES.get("rag")(rag_top_k=0).plan([], "q")


def test_mode_options_list_each_name_once_with_its_modes():
    by_name = {o.name: o for o in mode_options()}
    assert by_name["rag_top_k"].modes == ("parametric+rag", "rag") and by_name["press"].modes == ("kv",)
    assert by_name["press"].help.startswith("kv: kvpress press: expected_attention (default) | ")


def test_one_name_means_one_setting(monkeypatch):
    @dataclass(frozen=True)
    class Other:
        rag_top_k: int = option(5, "something else")

    class Clash(AnswerMode):
        name = "clash"
        settings_type = Other

        def plan(self, memories, question):
            return Plan(context=None, adapters=[])

    monkeypatch.setattr(MODES, "_items", {**MODES._items, "zz-clash": Clash})
    with pytest.raises(ValueError, match="'rag_top_k' of 'zz-clash' differs"):
        mode_options()
