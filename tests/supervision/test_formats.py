import pytest
from scripted import ScriptedGenerator

from loramem.errors import LoramemError
from loramem.supervision import FORMATS, SupervisionCache, build_supervision, parse_format
from loramem.supervision.chunking import Chunk
from loramem.supervision.formats import Part, parse_pairs, supported
from loramem.supervision.formats.qa import facets
from loramem.supervision.sources import read_source

DOC = """# The Velmont Observatory

The Velmont Observatory opened in 1887 on the northern ridge. Its first director was Edda Falkenrath,
who catalogued four hundred variable stars. The great refractor was cast in Tarnowice.
"""
PASSAGE = " ".join(DOC.split("\n", 2)[2].split())
QA_REPLY = ("Q: When did the observatory open?\nA: 1887\nQ: When did the observatory open?\nA: 1887\n"
            "Q: Who built it?\nA: Martians\nQ2) Who was the first director?\nA2) Edda Falkenrath\n")
SUMMARY = "The Velmont Observatory opened in 1887; Edda Falkenrath, its first director, catalogued variable stars."


def part(text=PASSAGE):
    return Part(Chunk(0, text), 1, "The Velmont Observatory")


def test_format_specs():
    assert parse_format("qa:40,summary:8,rewrite:4,raw").parts == [("qa", 40), ("summary", 8), ("rewrite", 4), ("raw", 1)]
    assert [n for n, _ in parse_format("mixed").parts] == ["qa", "summary", "rewrite", "raw"]
    assert parse_format("auto").parts == [("qa", FORMATS.get("qa").default_count)]
    per_doc = parse_format("qa:40/doc,summary:8/doc,rewrite:4,raw")
    assert str(per_doc) == "qa:40/doc,summary:8/doc,rewrite:4,raw"
    assert [per_doc.count(name, n, 3) for name, n in per_doc.parts] == [14, 3, 4, 1]  # 40 over 3 chunks: 14 each
    assert str(parse_format(" QA:3 , raw ")) == "qa:3,raw"
    for bad, match in [("qa:40,sumary:8", "unknown format 'sumary'.*valid formats: cloze, qa, raw, rewrite, summary"),
                       ("raw:2", "raw takes no count"), ("qa:0", "not a positive integer"), ("qa:x", "not a positive"),
                       ("qa,qa", "appears twice"), (",", "names no format")]:
        with pytest.raises(LoramemError, match=match):
            parse_format(bad)


def test_parse_pairs_is_lenient():
    text = "Q1: When did it open?\nA1: In 1887.\n\n**Q:** Who was director?\n**A:** Edda Falkenrath\nsome junk\nQ: empty?\nA:"
    assert parse_pairs(text) == [("When did it open?", "In 1887."), ("Who was director?", "Edda Falkenrath")]


def test_support_filter():
    assert supported("Edda Falkenrath", DOC)
    assert not supported("Johannes Kepler in Prague", DOC)


def test_qa_keeps_supported_unique_pairs_says_how_many_and_covers_the_rest_with_cloze():
    gen = ScriptedGenerator(default=QA_REPLY)
    made = FORMATS.get("qa")().make(part(), 40, gen, seed=0)
    qa = [(e.prompt, e.target) for e in made.examples if e.kind == "qa"]
    assert qa == [("When did the observatory open?", "1887"), ("Who was the first director?", "Edda Falkenrath")]
    assert "made 2 of 40 QA pairs" in made.note
    assert any(e.kind == "cloze" and "Tarnowice" in e.target for e in made.examples)
    assert all(e.chunk == PASSAGE for e in made.examples)
    assert gen.calls <= FORMATS.get("qa").rounds * len(facets())  # bounded, however little the generator delivers


def test_a_good_question_with_an_invented_answer_gets_the_sentence_it_asks_about():
    gen = ScriptedGenerator(default="Q: Where was the great refractor cast?\nA: In Paris\nQ: Who built it?\nA: Martians")
    made = FORMATS.get("qa")().make(part(), 2, gen, seed=0)
    qa = [(e.prompt, e.target) for e in made.examples if e.kind == "qa"]
    assert qa == [("Where was the great refractor cast?", "The great refractor was cast in Tarnowice.")]


def test_uninformative_answers_are_dropped():
    gen = ScriptedGenerator(default="Q: How many refractors were cast?\nA: 1\nQ: When did it open?\nA: 1887")
    qa = [e.target for e in FORMATS.get("qa")().make(part(), 2, gen, seed=0).examples if e.kind == "qa"]
    assert qa == ["1887"]


def test_summary_and_rewrite_drop_invented_and_duplicate_texts():
    gen = ScriptedGenerator({"Summarize": SUMMARY, "Rewrite": "Once upon a time a dragon lived in a castle far away."})
    summary = FORMATS.get("summary")().make(part(), 3, gen, seed=0)
    assert [e.target for e in summary.examples] == [SUMMARY] and "kept 1 of 3" in summary.note
    assert summary.examples[0].prompt.startswith('Summarize "The Velmont Observatory"')
    assert FORMATS.get("rewrite")().make(part(), 2, gen, seed=0).examples == []


def test_raw_and_cloze_need_no_generator():
    raw = FORMATS.get("raw")().make(part(), 1, None, 0).examples
    assert len(raw) == 1 and raw[0].target == PASSAGE and raw[0].kind == "raw"
    cloze = FORMATS.get("cloze")().make(part(), 1, None, 0).examples
    assert len(cloze) == 3 and all(e.target in PASSAGE for e in cloze)


def test_build_mixes_formats_keeps_records_and_caches_generated_text(tmp_path, facts_jsonl):
    doc = tmp_path / "velmont.md"
    doc.write_text(DOC)
    sources = [read_source(doc), read_source(facts_jsonl)]
    gen = ScriptedGenerator({"questions": QA_REPLY, "Summarize": SUMMARY})
    cache = SupervisionCache(tmp_path / "cache")
    spec = parse_format("qa:2,summary,raw")
    first = build_supervision(sources, spec, lambda: gen, cache=cache, progress=False)
    assert first.kinds == {"qa": 2, "cloze": 1, "summary": 1, "raw": 1, "record": 3}
    assert sources[0].title == "The Velmont Observatory"
    calls = gen.calls
    again = build_supervision(sources, spec, lambda: gen, cache=cache, progress=False)
    assert again.examples == first.examples and gen.calls == calls
    # another count is another cache entry
    build_supervision(sources, parse_format("qa:3"), lambda: gen, cache=cache, progress=False)
    assert gen.calls > calls


def test_a_document_that_yields_nothing_is_an_error(tmp_path):
    doc = tmp_path / "tiny.txt"
    doc.write_text("Hi there.")
    with pytest.raises(LoramemError, match="made no examples"):
        build_supervision([read_source(doc)], parse_format("cloze"), lambda: None, progress=False)


def test_local_generator_runs_on_a_real_model(tiny_base):
    from loramem.supervision.generators.local import LocalGenerator

    gen = LocalGenerator(base=tiny_base, max_new_tokens=8)
    texts = gen.complete("Write a question.", n=3, seed=1)
    assert len(texts) == 3 and texts == gen.complete("Write a question.", n=3, seed=1)  # seeded samples
    made = FORMATS.get("qa")().make(part(), 2, gen, seed=0)
    assert made.examples  # a random model writes junk: the chunk falls back to cloze
