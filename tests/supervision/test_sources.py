import pytest

from loramem.errors import LoramemError
from loramem.supervision import read_sources


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
