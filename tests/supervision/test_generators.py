import pytest

from loramem.errors import LoramemError
from loramem.supervision.generators import GENERATORS, split_sentences
from loramem.supervision.generators.cloze import ClozeGenerator
from loramem.supervision.generators.local import LocalModelGenerator, parse_pairs, supported

DOC = """# The Velmont Observatory

The Velmont Observatory opened in 1887 on the northern ridge. Its first director was Edda Falkenrath,
who catalogued four hundred variable stars. The great refractor was cast in Tarnowice.
"""


def test_registry_names_and_did_you_mean():
    assert {"cloze", "local"} <= set(GENERATORS.names())
    with pytest.raises(LoramemError, match="Did you mean 'cloze'"):
        GENERATORS.get("cloz")


def test_sentences_split():
    assert split_sentences(DOC)[1].startswith("The Velmont Observatory opened in 1887")
    assert len(split_sentences(DOC)) == 4


def test_cloze_is_deterministic_and_covers_each_long_sentence():
    a = ClozeGenerator().generate(DOC, "velmont")
    assert a == ClozeGenerator().generate(DOC, "velmont")
    assert len(a) == 3  # the heading is too short to ask about
    assert all(ex.target and ex.target in DOC.replace("\n", " ") for ex in a)


def test_parse_pairs_is_lenient():
    text = "Q1: When did it open?\nA1: In 1887.\n\nQ: Who was director?\nA: Edda Falkenrath\nsome junk"
    assert parse_pairs(text) == [("When did it open?", "In 1887."), ("Who was director?", "Edda Falkenrath")]


def test_unsupported_answers_are_dropped():
    assert supported("Edda Falkenrath", DOC)
    assert not supported("Johannes Kepler in Prague", DOC)


class ScriptedGenerator(LocalModelGenerator):
    """The local generator with the model's completion replaced by fixed text (parsing and filtering under test)."""

    def _complete(self, prompt: str) -> str:
        return "Q: When did the observatory open?\nA: 1887\nQ: When did the observatory open?\nA: 1887\nQ: Who built it?\nA: Martians"


def test_local_generator_keeps_supported_unique_pairs_and_falls_back_to_cloze():
    examples = ScriptedGenerator().generate(DOC, "velmont")
    qa = [e for e in examples if e.kind == "qa"]
    assert [(e.prompt, e.target) for e in qa] == [("When did the observatory open?", "1887")]
    assert any(e.kind == "cloze" for e in examples)


def test_local_generator_runs_on_a_real_model(tiny_base):
    examples = LocalModelGenerator(base=tiny_base, max_new_tokens=16).generate(DOC, "velmont")
    assert examples  # a random model writes junk: everything falls back to cloze
