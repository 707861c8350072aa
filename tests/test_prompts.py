"""A question's prompt must fit in the model's window beside its answer: refused by its characters
before any tokenizing when it cannot, by its tokens at the exact limit otherwise; the library, the
CLI and the server share the one check."""

from __future__ import annotations

import sys

import pytest

from loramem.errors import LoramemError, QuestionTooLong
from loramem.prompts import PromptFormat, check_question, longest_token


def _longest_fitting(fmt: PromptFormat, window: int, answer: int) -> int:
    words = 1
    while len(fmt.prompt_ids("word " * (words + 1))) + answer <= window:
        words += 1
    return words


def test_the_limit_is_exact_in_tokens(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    words = _longest_fitting(fmt, 512, 64)
    assert check_question(fmt, "word " * words, 512, 64) == fmt.prompt_ids("word " * words)
    with pytest.raises(QuestionTooLong, match=r"the question is too long \(\d+ tokens\): at most \d+ tokens fit "
                                              r"beside an answer of up to 64 tokens in the model's 512-token window"):
        check_question(fmt, "word " * (words + 1), 512, 64)
    with pytest.raises(QuestionTooLong, match="leaves no room for a question"):
        check_question(fmt, "hi", 512, 512)


def test_a_text_that_cannot_fit_is_refused_without_tokenizing(tiny_base, monkeypatch):
    fmt = PromptFormat(tiny_base.tokenizer)
    longest = longest_token(tiny_base.tokenizer)
    budget = 512 - 64 - len(fmt.prompt_ids(""))
    seen: list[int] = []
    original = fmt.prompt_ids
    monkeypatch.setattr(fmt, "prompt_ids", lambda q, context=None: seen.append(len(q)) or original(q, context))
    with pytest.raises(QuestionTooLong, match=rf"\({budget * longest + 1:,} characters\)"):
        check_question(fmt, "x" * (budget * longest + 1), 512, 64)
    assert max(seen) == 0  # only the empty prompt, for the template's own tokens
    with pytest.raises(LoramemError, match="lone surrogate"):
        check_question(fmt, "a \ud800 b", 512, 64)


def test_ask_and_the_cli_refuse_a_question_past_the_window(facts_memory, tiny_model_dir, capsys, monkeypatch):
    from loramem.cli import main

    with pytest.raises(QuestionTooLong, match="512-token window"):
        facts_memory.ask("word " * 600, memories=["facts"])
    monkeypatch.setattr(sys, "argv", ["loramem", "ask", "word " * 600, "-m", "facts", "--store",
                                      str(facts_memory.store.path), "--model", str(tiny_model_dir)])
    with pytest.raises(SystemExit) as exit:
        main()
    err = capsys.readouterr().err
    assert exit.value.code == 1 and err.startswith("error: the question is too long") and err.count("\n") == 1
    assert "512-token window" in err and "--max-new-tokens" in err
