"""How a question (and optionally a context document) becomes token ids, and how an answer ends.

Training and answering share this one format, so a memory is read back with exactly the prompt
it was written with. Chat models use their own template with a one-line system prompt (the
default SmolLM2 system prompt costs ~15 tokens per example, all of them wasted on training).
`check_question` refuses a question whose prompt and answer would not fit in the model's window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from loramem.errors import LoramemError, QuestionTooLong

SYSTEM_PROMPT = "Answer briefly."
_SENTINEL = "LORAMEM_SENTINEL_ANSWER"


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class PromptFormat:
    """Token-level prompt format for one tokenizer."""

    tokenizer: object
    chat: bool = field(init=False)
    system: bool = field(init=False)
    end_id: int = field(init=False)

    def __post_init__(self) -> None:
        tok = self.tokenizer
        self.chat = bool(getattr(tok, "chat_template", None))
        self.system = False
        if self.chat:
            try:
                self._render([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "q"}])
                self.system = True
            except Exception:  # templates such as Gemma's refuse a system role
                self.system = False
            self.end_id = self._end_of_turn_id()
        else:
            eos = tok.eos_token_id
            self.end_id = eos if eos is not None else _encode(tok, "\n")[-1]

    def _render(self, messages: list[dict], generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    def _end_of_turn_id(self) -> int:
        # The token the template writes right after an assistant message: <|im_end|>, <|eot_id|>, ...
        text = self._render(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": _SENTINEL}]
        )
        tail = text.split(_SENTINEL, 1)[1] if _SENTINEL in text else ""
        ids = _encode(self.tokenizer, tail.strip(" ")) if tail.strip() else []
        if ids:
            return ids[0]
        return self.tokenizer.eos_token_id

    def user_text(self, question: str, context: str | None = None) -> str:
        if context:
            return f"{context}\n\nAnswer using the text above.\nQuestion: {question}"
        return question

    def prompt_parts(self, question: str, context: str | None = None) -> tuple[list[int], str]:
        """The prompt as (leading special ids, text): its ids are the lead plus the text's tokens."""
        content = self.user_text(question, context)
        if self.chat:
            messages = [{"role": "user", "content": content}]
            if self.system:
                messages.insert(0, {"role": "system", "content": SYSTEM_PROMPT})
            return [], self._render(messages, generation_prompt=True)
        bos = self.tokenizer.bos_token_id
        return ([bos] if bos is not None else []), f"Question: {content}\nAnswer:"

    def prompt_ids(self, question: str, context: str | None = None) -> list[int]:
        """Token ids of the prompt up to where the answer starts."""
        lead, text = self.prompt_parts(question, context)
        return lead + _encode(self.tokenizer, text)

    def target_ids(self, answer: str) -> list[int]:
        """Token ids of the answer followed by the end-of-answer token (so greedy decoding stops)."""
        text = answer.strip() if self.chat else " " + answer.strip()
        return _encode(self.tokenizer, text) + [self.end_id]

    @property
    def stop_ids(self) -> list[int]:
        ids = {self.end_id}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(ids)


_LONGEST: WeakKeyDictionary = WeakKeyDictionary()  # tokenizer -> characters in its longest token


def longest_token(tokenizer) -> int:
    """The most characters one token of `tokenizer` stands for: no text longer than N tokens times it
    can fit in N tokens (byte-level tokens spell a byte as one character, so this over-counts)."""
    if tokenizer not in _LONGEST:
        _LONGEST[tokenizer] = max((len(t) for t in tokenizer.get_vocab()), default=1) or 1
    return _LONGEST[tokenizer]


def check_question(fmt: PromptFormat, question: str, window: int, max_new_tokens: int,
                   what: str = "the question") -> list[int]:
    """The prompt ids of `question`, once they and `max_new_tokens` of answer are known to fit in a
    model of `window` positions; else QuestionTooLong naming the limit (`what` names the text).

    The characters are counted first, so a text that cannot fit is refused without tokenizing it.
    """
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise LoramemError(f"{what} is not valid Unicode text: it holds the lone surrogate "
                           f"{question[e.start]!r} at character {e.start}; send UTF-8 text") from None
    overhead = len(fmt.prompt_ids(""))
    budget = window - max_new_tokens - overhead  # the tokens left for the text itself
    if budget < 1:
        raise QuestionTooLong(f"an answer of up to {max_new_tokens:,} tokens leaves no room for a question in "
                              f"the model's {window:,}-token window: ask for at most {window - overhead - 1:,}")
    limit = (f"at most {budget:,} tokens fit beside an answer of up to {max_new_tokens:,} tokens in the model's "
             f"{window:,}-token window; shorten it, or ask for a shorter answer (max_tokens, --max-new-tokens)")
    if len(question) > budget * longest_token(fmt.tokenizer):
        raise QuestionTooLong(f"{what} is too long ({len(question):,} characters): {limit}")
    ids = fmt.prompt_ids(question)
    if len(ids) + max_new_tokens > window:
        raise QuestionTooLong(f"{what} is too long ({len(ids) - overhead:,} tokens): {limit}")
    return ids
