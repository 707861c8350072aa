"""Sources + format spec → the examples a write trains on (what `loramem synth` prints)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from loramem.errors import LoramemError
from loramem.supervision.cache import SupervisionCache, cache_key
from loramem.supervision.chunking import chunk_text
from loramem.supervision.examples import Example
from loramem.supervision.formats import FORMATS, FormatSpec, Part
from loramem.supervision.formats.base import Made
from loramem.supervision.generators import Generator
from loramem.supervision.sources import Source
from loramem.supervision.templates import load_template


@dataclass
class ChunkSettings:
    max_tokens: int = 384
    overlap: int = 48


@dataclass
class Supervision:
    examples: list[Example]
    notes: list[str] = field(default_factory=list)  # where a format made fewer examples than asked
    generator: str = ""  # who wrote the generated examples ('' when no format needed a generator)
    origins: list[str] = field(default_factory=list)  # the file name each example came from, in order

    @property
    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.examples:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out


def build_supervision(
    sources: list[Source],
    spec: FormatSpec,
    generator: Callable[[], Generator],
    count_tokens: Callable[[str], int] | None = None,
    cache: SupervisionCache | None = None,
    chunking: ChunkSettings | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Supervision:
    """Records as they are; each document chunked and turned into examples by every format in `spec`.

    `generator` makes the generator, once, when a format needs one (its id is part of the cache
    key); chunks found in `cache` cost no completions.
    """
    chunking = chunking or ChunkSettings()
    examples: list[Example] = []
    origins: list[str] = []
    notes: list[str] = []
    tasks = []
    for source in sources:
        if source.is_records:
            examples.extend(source.records)
            origins.extend([source.path.name] * len(source.records))
            continue
        chunks = chunk_text(source.text, chunking.max_tokens, chunking.overlap, count_tokens)
        if not chunks:
            raise LoramemError(f"{source.path}: no sentences to learn from")
        tasks.extend((source, Part(c, len(chunks), source.title), name, spec.count(name, n, len(chunks)))
                     for c in chunks for name, n in spec.parts)
    gen: Generator | None = None
    if any(FORMATS.get(name).uses_generator for _, _, name, _ in tasks):
        gen = generator()
        if gen.note:
            notes.append(gen.note)

    def run(task) -> Made:
        source, part, name, n = task
        fmt = FORMATS.get(name)()
        key = None
        if fmt.uses_generator:
            version = load_template(fmt.template).version
            key = cache_key(part.chunk.text, part.title, name, fmt.version, n, gen.id, version, seed)
        made = cache.get(key) if cache is not None and key else None
        if made is None:
            made = fmt.make(part, n, gen if fmt.uses_generator else None, seed)
            if cache is not None and key:
                cache.put(key, made)
        return made

    # A batching generator serves several chunks at once: their prompts decode side by side.
    workers = max(1, min(gen.concurrency if gen else 1, len(tasks)))
    made_for: dict = {}  # examples made per document
    with ThreadPoolExecutor(workers) as pool, \
            tqdm(total=len(tasks), desc="supervision", unit="chunk", disable=not progress or not tasks, leave=False) as bar:
        for (source, *_), made in zip(tasks, pool.map(lambda t: _tick(run(t), bar), tasks)):
            examples.extend(made.examples)
            origins.extend([source.path.name] * len(made.examples))
            made_for[source.path] = made_for.get(source.path, 0) + len(made.examples)
            if made.note:
                notes.append(f"{source.path.name}: {made.note}")
    for source in sources:
        if not source.is_records and not made_for.get(source.path):
            raise LoramemError(f"{source.path}: the format {spec} made no examples from it")
    return Supervision(examples, notes, generator=gen.label if gen else "", origins=origins)


def _tick(made: Made, bar) -> Made:
    bar.update()
    return made
