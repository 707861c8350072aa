"""How much one record and one document may hold, checked before anything is tokenized or trained.

Two checks, both refusing with the limit and the flag that raises it. While a file is read (no
model loaded yet) its characters are counted: more than `CHARS_PER_TOKEN` per token of a limit
cannot fit it, so a 50 MB answer is refused in a fraction of a second instead of being tokenized
(a 50 MB record once grew a write past 6 GB in 44 s). Once the model is loaded, what passed is
counted in the model's tokens, and a record must also fit the model's window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loramem.errors import LoramemError
from loramem.options import option

if TYPE_CHECKING:
    from loramem.supervision.sources import Source

# No tokenizer averages more characters per token over real text (English BPE: about 4; long runs of
# spaces or dashes merge into tokens of up to ~16): text longer than this many characters per token of
# a limit is over it, whatever the tokenizer.
CHARS_PER_TOKEN = 16
# Room a record leaves in the model's window for the chat template around it (answering keeps the same).
TEMPLATE_TOKENS = 256


@dataclass(frozen=True)
class InputLimits:
    """The most tokens one input may hold (flags of `write`).

    A record trains as one sequence, and its batch of 8 is padded to its longest row, so one long
    record makes the whole step that long. 1,024 tokens (about 750 words) is far beyond a fact and
    about three of the passages a document write trains on (384-token chunks, `--chunk-tokens`);
    whatever this limit, a record must also fit the model's window (`max_position_embeddings`) less
    `TEMPLATE_TOKENS`.

    A document is cut into 384-token chunks, each made into 12 QA pairs by default: 32,768 tokens
    is ~85 chunks and ~1,000 pairs, about as many as one adapter was measured to hold (1,024
    PhoneBook entries at rank 1 on SmolLM2-135M, the datasheet's probe), and hours of generation
    on a CPU (a 981-token introduction took 580 s on 2 cores). A longer text belongs in several
    files, written as several memories (`--collection`).
    """

    max_record_tokens: int = option(1024, "most tokens one record (question and answer) may hold")
    max_document_tokens: int = option(32768, "most tokens one document may hold")

    def __post_init__(self) -> None:
        for name in ("max_record_tokens", "max_document_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise LoramemError(f"--{name.replace('_', '-')} must be a positive number of tokens, got {value!r}")

    def check_record_chars(self, where: str, question: str, answer: str) -> None:
        """Refuse a record whose characters alone put it over `max_record_tokens` (no tokenizer)."""
        chars = len(question) + len(answer)
        if chars > self.max_record_tokens * CHARS_PER_TOKEN:
            raise LoramemError(_too_long(where, "record", f"{chars:,} characters", self.max_record_tokens))

    def check_document_chars(self, where: str, text: str) -> None:
        """Refuse a document whose characters alone put it over `max_document_tokens` (no tokenizer)."""
        if len(text) > self.max_document_tokens * CHARS_PER_TOKEN:
            raise LoramemError(_too_long(where, "document", f"{len(text):,} characters", self.max_document_tokens))

    def check_tokens(self, sources: Sequence[Source], count: Callable[[str], int], window: int, model: str) -> None:
        """Refuse any record or document over its limit in the model's tokens, or a record over its window.

        The character checks ran when the sources were read, so nothing counted here is large.
        """
        fits = window - TEMPLATE_TOKENS
        for source in sources:
            if not source.is_records:
                n = count(source.text)
                if n > self.max_document_tokens:
                    raise LoramemError(_too_long(str(source.path), "document", f"{n:,} tokens", self.max_document_tokens))
                continue
            for i, record in enumerate(source.records, 1):
                n = count(record.prompt) + count(record.target)
                where = f"{source.path}: record {i} ({_start(record.prompt)})"
                if n > self.max_record_tokens:
                    raise LoramemError(_too_long(where, "record", f"{n:,} tokens", self.max_record_tokens))
                if n > fits:
                    raise LoramemError(f"{where}: the record is too long: {n:,} tokens, over the {window:,}-token "
                                       f"window of {model} less {TEMPLATE_TOKENS} for the chat template; shorten it")


def _too_long(where: str, what: str, size: str, limit: int) -> str:
    return (f"{where}: the {what} is too long: {size}, over the limit of {limit:,} tokens per {what}; "
            f"shorten it, or raise the limit with --max-{what}-tokens")


def _start(text: str) -> str:
    words = text.split()
    return repr(" ".join(words[:6]) + (" ..." if len(words) > 6 else ""))
