"""What one record and one document may hold, counted in the model's tokens once it is loaded."""

import pytest

from loramem import Memory
from loramem.errors import LoramemError
from loramem.supervision.limits import TEMPLATE_TOKENS, InputLimits


@pytest.fixture
def mem(tmp_path, tiny_model_dir):
    return Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)


def count(mem, text: str) -> int:
    return len(mem.base.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_records_and_documents_are_counted_in_the_models_tokens(mem):
    rows = [{"question": "What is the phone number of Ada Byron?", "answer": "555-010-1234"}]
    n = count(mem, rows[0]["question"]) + count(mem, rows[0]["answer"])
    assert len(mem.supervision(records=rows, limits=InputLimits(max_record_tokens=n)).examples) == 1
    with pytest.raises(LoramemError, match=rf"records: record 1 \('What is the phone number of \.\.\.'\): the record "
                                           rf"is too long: {n} tokens, over the limit of {n - 1} tokens per record; "
                                           "shorten it, or raise the limit with --max-record-tokens"):
        mem.supervision(records=rows, limits=InputLimits(max_record_tokens=n - 1))
    text = "The Velmont Observatory opened in 1887 on the northern ridge."
    documents = {"velmont.md": text}
    n = count(mem, text)
    assert mem.supervision(documents=documents, format="raw", limits=InputLimits(max_document_tokens=n)).examples
    with pytest.raises(LoramemError, match=rf"velmont.md: the document is too long: {n} tokens, over the limit of "
                                           rf"{n - 1} tokens per document; .* --max-document-tokens"):
        mem.supervision(documents=documents, format="raw", limits=InputLimits(max_document_tokens=n - 1))


def test_a_record_must_fit_the_models_window_whatever_the_limit(mem):
    window = mem.base.model.config.max_position_embeddings  # 512 for the tiny model
    answer = " ".join(["0123456789"] * window)  # under the character check, over the window in tokens
    assert count(mem, answer) > window - TEMPLATE_TOKENS
    with pytest.raises(LoramemError, match=rf"over the {window}-token window of .* less {TEMPLATE_TOKENS} for the "
                                           "chat template; shorten it"):
        mem.supervision(records=[{"question": "Digits?", "answer": answer}],
                        limits=InputLimits(max_record_tokens=100_000))
