import json
import time

import pytest

from loramem.errors import LoramemError
from loramem.supervision import read_sources
from loramem.supervision.limits import InputLimits


def test_jsonl_and_csv_records_are_used_as_they_are(tmp_path, facts_jsonl):
    csv = tmp_path / "facts.csv"
    csv.write_text("Question,Answer\nWho wrote it?,Ada\n\"Where, exactly?\",Here\n")
    jsonl, table = read_sources([facts_jsonl, csv])
    assert [r.target for r in jsonl.records][:1] == ["555-010-1234"]
    assert [(r.prompt, r.target) for r in table.records] == [("Who wrote it?", "Ada"), ("Where, exactly?", "Here")]
    assert "Where, exactly? Here" in table.text


def test_documents_are_read_as_text(tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# Title\n\nThe cat sat on the mat.")
    (source,) = read_sources([doc])
    assert not source.is_records and "cat sat" in source.text and source.title == "Title"  # the first heading



def test_the_seed_papers_text_column_csv_is_read_as_records(tmp_path):
    table = tmp_path / "phonebook_qa_1K.csv"
    table.write_text('text\n"Question: What is the phone number of Ada Byron? Answer: 555-010-1234"\n'
                     '"Question: Who wrote it?  Answer:  Ada, with help"\n')
    (source,) = read_sources([table])
    assert [(r.prompt, r.target) for r in source.records] == [
        ("What is the phone number of Ada Byron?", "555-010-1234"), ("Who wrote it?", "Ada, with help")]
    table.write_text("text\nQuestion: no answer here\n")
    with pytest.raises(LoramemError, match=r"phonebook_qa_1K.csv:2: expected 'Question: ... Answer: ...'"):
        read_sources([table])

@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"  \n", "empty"),
        ("binary.txt", b"abc\x00\x01def", "binary"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "UTF-8"),
        ("bad.jsonl", b'{"question": "q"}\n', "answer"),
        ("broken.jsonl", b'{"question": \n', "JSON"),
        ("list.jsonl", b"[1, 2]\n", "object"),
        ("cols.csv", b"q,a\nx,y\n", "'question' and 'answer' columns"),
        ("doc.pdf", b"%PDF", "unsupported file type"),
        ("empty.csv", b"question,answer\n", "no records"),
    ],
)
def test_bad_files_are_refused_with_a_message_naming_them(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoramemError, match=message) as info:
        read_sources([path])
    assert name in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(LoramemError, match="no such file"):
        read_sources([tmp_path / "nope.txt"])


def test_records_and_documents_in_memory_read_as_their_files(tmp_path, facts_jsonl):
    import json

    rows = [json.loads(line) for line in facts_jsonl.read_text().splitlines()]
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nThe cat sat.\n")
    from_files = read_sources([facts_jsonl, doc])
    given = read_sources([], records=rows, documents={"notes.md": doc.read_text()})
    for a, b in zip(from_files, given):
        assert (a.text, a.digest, a.records) == (b.text, b.digest, b.records)
    assert given[1].title == from_files[1].title == "Notes"
    assert [s.path.name for s in given] == ["records", "notes.md"]


def test_nested_json_values_are_stored_as_json_text(tmp_path):
    path = tmp_path / "nested.jsonl"
    rows = [{"question": "Where is Zürich's office?", "answer": {"city": "Zürich", "floor": 3}},
            {"question": "Which colours?", "answer": ["red", "grün"]},
            {"question": "How many moons?", "answer": 0},
            {"question": {"id": 7}, "answer": True}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (source,) = read_sources([path])
    assert [(r.prompt, r.target) for r in source.records] == [
        ("Where is Zürich's office?", '{"city": "Zürich", "floor": 3}'),
        ("Which colours?", '["red", "grün"]'),
        ("How many moons?", "0"),
        ('{"id": 7}', "true"),
    ]
    (given,) = read_sources([], records=rows)
    assert given.records == source.records


def test_a_record_or_document_over_its_limit_is_refused_before_it_is_tokenized(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text('{"question": "q", "answer": "a"}\n' + json.dumps({"question": "Who?", "answer": "x " * 10**6}) + "\n")
    start = time.perf_counter()
    with pytest.raises(LoramemError, match=r"big.jsonl:2: the record is too long: 2,000,00\d characters, over the "
                                           r"limit of 1,024 tokens per record; .* --max-record-tokens"):
        read_sources([big])
    assert time.perf_counter() - start < 2
    assert read_sources([big], limits=InputLimits(max_record_tokens=200_000))[0].records[1].target.startswith("x x")
    with pytest.raises(LoramemError, match=r"records:1: the record is too long.*--max-record-tokens"):
        read_sources([], records=[{"question": "Why?" * 10**4, "answer": "y"}])
    doc = tmp_path / "book.txt"
    doc.write_text("A sentence of a long book. " * 30_000)
    with pytest.raises(LoramemError, match=r"book.txt: the document is too long: 810,000 characters.*--max-document-tokens"):
        read_sources([doc])
    with pytest.raises(LoramemError, match=r"notes.md: the document is too long"):
        read_sources([], documents={"notes.md": doc.read_text()}, limits=InputLimits(max_document_tokens=100))
    assert read_sources([doc], limits=InputLimits(max_document_tokens=100_000))[0].text.startswith("A sentence")
    with pytest.raises(LoramemError, match="--max-record-tokens must be a positive number of tokens"):
        InputLimits(max_record_tokens=0)


def test_unreadable_csv_fields_and_deep_json_are_one_line_errors_naming_the_line(tmp_path):
    table = tmp_path / "wide.csv"
    table.write_text("question,answer\nWho?,Ada\nWhat?," + "z" * 200_000 + "\n")
    with pytest.raises(LoramemError, match=r"wide.csv:3: cannot read this CSV row \(field larger than field limit"
                                           r".*at most 131,072 characters: shorten it"):
        read_sources([table])
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"question": "q", "answer": "a"}\n' + '{"question": "q", "answer": ' + "[" * 100_000
                    + "]" * 100_000 + "}\n")
    with pytest.raises(LoramemError, match=r"deep.jsonl:2: JSON nested too deeply to read") as info:
        read_sources([deep])
    assert "\n" not in str(info.value)
