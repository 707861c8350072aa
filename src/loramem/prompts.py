"""How a question (and optionally a context document) becomes token ids, and how an answer ends.

Training and answering share this one format, so a memory is read back with exactly the prompt
it was written with. Chat models use their own template with a one-line system prompt (the
default SmolLM2 system prompt costs ~15 tokens per example, all of them wasted on training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
