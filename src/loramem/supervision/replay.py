"""The supervision a stored memory was trained on, rebuilt from its catalogue entry; read-only.

The catalogue keeps a memory's source text, format and seed, not its examples. Records come back
from the text (a fact table is kept as `question answer` lines); a single document is chunked
and formatted again, its generated examples read from the store's supervision cache. Nothing is
ever generated here: a cache miss is reported, not filled, so a page view never runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loramem.errors import LoramemError
from loramem.store import MemoryRecord
from loramem.supervision.build import build_supervision
from loramem.supervision.cache import SupervisionCache
from loramem.supervision.examples import Example
from loramem.supervision.formats import parse_format
from loramem.supervision.generators import Generator, make_generator
from loramem.supervision.sources import document_source


class NotCached(LoramemError):
    """A generated example the supervision cache does not hold."""


@dataclass
class Replay:
    """Examples rebuilt for one memory; `complete` is False when some could not be (see `note`)."""

    examples: list[Example] = field(default_factory=list)
    complete: bool = True
    note: str = ""


class _CacheOnly(Generator):
    """Answers to the id of the generator that wrote the supervision, and refuses to generate."""

    def __init__(self, id: str) -> None:
        self._id = id

    @property
    def id(self) -> str:
        return self._id

    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        raise NotCached("not in the supervision cache")


def fact_line(line: str) -> Example:
    """One `question answer` line of a fact table, split after its one question mark when it has one."""
    question, mark, answer = line.partition("? ")
    if mark and "? " not in answer and answer.strip():
        return Example(prompt=question + "?", target=answer.strip(), kind="record")
    return Example(prompt=line, target="", kind="record")


def replay_supervision(record: MemoryRecord, base, cache: SupervisionCache) -> Replay:
    """The examples `record` was trained on, as far as the catalogue and `cache` hold them.

    `base` is the loaded base model (its tokenizer chunks documents as the write did).
    """
    kinds = set(record.formats)
    if kinds <= {"record"}:
        lines = [line for line in record.document.splitlines() if line.strip()]
        return Replay([fact_line(line) for line in lines], note="records, kept as 'question answer' lines")
    if "record" in kinds or len(record.sources) != 1:
        return Replay(complete=False, note=f"written from {len(record.sources)} inputs, whose texts the catalogue "
                      "keeps joined: the supervision is not rebuilt (the counts by kind are above)")
    config = record.config
    spec = config.get("generator_spec") or "auto"

    def generator() -> Generator:
        return _CacheOnly(make_generator(spec, lambda: base).id)

    tok = base.tokenizer
    try:
        sup = build_supervision([document_source(record.document, record.sources[0])],
                                parse_format(config.get("format") or "auto"), generator,
                                count_tokens=lambda t: len(tok(t, add_special_tokens=False)["input_ids"]),
                                cache=cache, seed=int(config.get("seed", 0)), progress=False)
    except NotCached:
        return Replay(complete=False, note="its generated examples are no longer in this store's supervision cache")
    except LoramemError as e:
        return Replay(complete=False, note=f"not rebuilt: {e}")
    if len(sup.examples) != record.examples:  # e.g. the write chunked with other settings
        return Replay(sup.examples, complete=False,
                      note=f"rebuilt {len(sup.examples)} examples; the write trained on {record.examples}")
    return Replay(sup.examples)
