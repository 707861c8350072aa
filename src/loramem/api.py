"""The Python API: `Memory(store=..., model=...)` with write, ask, list and forget."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from loramem.activation import AdapterCache
from loramem.answering import generate_answer
from loramem.errors import BaseModelMismatchError, LoramemError
from loramem.models import BaseModel, load_base
from loramem.modes import MODES
from loramem.store import MemoryRecord, MemoryStore, validate_name
from loramem.supervision import Example, Source, read_sources
from loramem.supervision.generators import GENERATORS
from loramem.training import TrainConfig, train_memory


@dataclass
class Answer:
    """One answer and how it was made."""

    answer: str
    memories: list[str]
    mode: str
    question: str
    prompt_tokens: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WriteResult:
    record: MemoryRecord
    seconds: float
    epochs: int
    kinds: dict[str, int] = field(default_factory=dict)


def default_name(paths: Sequence[str | Path]) -> str:
    stem = Path(paths[0]).stem
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip(".-_") or "memory"
    return name[:128]


def _hash_sources(sources: list[Source]) -> str:
    return hashlib.sha256("".join(s.digest for s in sources).encode()).hexdigest()


class Memory:
    """A store of LoRA memories over one base model.

    >>> mem = Memory(store="my-store")                     # default model: SmolLM2-135M-Instruct
    >>> mem.write(["facts.jsonl"], name="facts")
    >>> mem.ask("What is the phone number of Ada Byron?", memories=["facts"]).answer
    """

    def __init__(
        self,
        store: str | Path | None = None,
        model: str | None = None,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.store = MemoryStore(store)
        self.model_spec = model
        self.device = device
        self.progress = progress
        self._base: BaseModel | None = None
        self.adapters = AdapterCache()  # loaded adapter weights, so repeated asks skip the disk

    @property
    def base(self) -> BaseModel:
        """The base model, loaded on first use (commands that need none never pay for it)."""
        if self._base is None:
            self._base = load_base(self.model_spec, self.device)
        return self._base

    # -- write -------------------------------------------------------------------------------
    def supervision(self, sources: list[Source], generator: str = "local") -> list[Example]:
        """The examples a write trains on: records as they are, documents through `generator`."""
        examples: list[Example] = []
        gen = None
        for source in sources:
            if source.is_records:
                examples.extend(source.records)
                continue
            if gen is None:
                cls = GENERATORS.get(generator)
                gen = cls(base=self.base) if generator == "local" else cls()
            made = gen.generate(source.text, source.title)
            if not made:
                raise LoramemError(f"{source.path}: no usable sentences to learn from")
            examples.extend(made)
        return examples

    def write(
        self,
        paths: Sequence[str | Path],
        name: str | None = None,
        replace: bool = False,
        generator: str = "local",
        config: TrainConfig | None = None,
        **settings,
    ) -> WriteResult:
        """Write the files at `paths` into one memory; `settings` override TrainConfig fields."""
        start = time.perf_counter()
        config = config or TrainConfig(**settings)
        name = validate_name(name or default_name(paths))
        self.store.check_writable_name(name, replace)
        GENERATORS.get(generator)
        sources = read_sources(list(paths))
        examples = self.supervision(sources, generator)
        with self.store.staging() as staged:
            result = train_memory(self.base, examples, config, staged, progress=self.progress)
            kinds: dict[str, int] = {}
            for ex in examples:
                kinds[ex.kind] = kinds.get(ex.kind, 0) + 1
            record = MemoryRecord(
                name=name,
                folder="",
                source_hash=_hash_sources(sources),
                sources=[str(s.path.name) for s in sources],
                base_model=self.base.name,
                base_fingerprint=self.base.fingerprint,
                rank=config.rank,
                formats=sorted(kinds),
                examples=result.n_examples,
                tokens=result.tokens,
                parameters=result.parameters,
                recall=result.recall,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                document="\n\n".join(s.text for s in sources),
                config={**asdict(config), "epochs_run": result.epochs, "steps": result.steps,
                        "train_seconds": round(result.seconds, 2), "generator": generator},
            )
            self.store.commit(staged, record, replace=replace)
        return WriteResult(record=record, seconds=time.perf_counter() - start, epochs=result.epochs, kinds=kinds)

    # -- read --------------------------------------------------------------------------------
    def _check_base(self, records: list[MemoryRecord]) -> None:
        for r in records:
            if r.base_fingerprint != self.base.fingerprint:
                raise BaseModelMismatchError(
                    f"memory {r.name!r} was written on base model {r.base_model} "
                    f"(fingerprint {r.base_fingerprint}), not on {self.base.name} "
                    f"({self.base.fingerprint}); ask with --model {r.base_model}"
                )

    def ask(
        self,
        question: str,
        memories: Sequence[str] = (),
        mode: str | None = None,
        max_new_tokens: int = 64,
    ) -> Answer:
        """Answer `question` drawing on the named memories in `mode` (default: parametric)."""
        if not question.strip():
            raise LoramemError("the question is empty")
        mode = mode or ("parametric" if memories else "base")
        answer_mode = MODES.get(mode)()
        if answer_mode.needs_memory and not memories:
            raise LoramemError(f"mode {mode!r} needs at least one memory (--memory NAME)")
        records = [self.store.get(n) for n in dict.fromkeys(memories)]
        self._check_base(records)
        plan = answer_mode.plan(records)
        start = time.perf_counter()
        adapters = [(r.name, self.store.adapter_path(r)) for r in plan.adapters]
        text, n_prompt = generate_answer(self.base, question, plan.context, adapters, max_new_tokens, self.adapters)
        return Answer(
            answer=text, memories=[r.name for r in records], mode=mode, question=question,
            prompt_tokens=n_prompt, seconds=time.perf_counter() - start,
        )

    # -- catalogue ---------------------------------------------------------------------------
    def list(self) -> list[MemoryRecord]:
        return self.store.list()

    def show(self, name: str) -> MemoryRecord:
        return self.store.get(name)

    def forget(self, name: str) -> MemoryRecord:
        return self.store.remove(name)
