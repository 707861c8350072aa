"""The Python API: `Memory(store=..., model=...)` with write, ask, list and forget."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loramem.adapters import AdapterCache
from loramem.answering import Merge, check_merge, generate_answer, model_window
from loramem.errors import BaseModelMismatchError, LoramemError
from loramem.models import BaseModel, load_base
from loramem.modes import MODES, default_mode
from loramem.prompts import PromptFormat, check_question
from loramem.routing import ROUTERS, Route, resolve_router
from loramem.routing.abstention import check_abstain
from loramem.scope import SCOPE, ScopeGate
from loramem.store import MemoryRecord, MemoryStore, validate_name
from loramem.store.versions import Version
from loramem.supervision import (
    ChunkSettings,
    Source,
    Supervision,
    parse_format,
    read_sources,
)
from loramem.supervision.generators import check_generator
from loramem.supervision.limits import InputLimits
from loramem.training import TrainConfig
from loramem.training.config import DEFAULT_BATCH_MEMORIES
from loramem.writing import WriteResult, default_name, plan_write, write_planned

if TYPE_CHECKING:
    from loramem.updates.apply import UpdateResult


@dataclass
class Answer:
    """One answer and how it was made."""

    answer: str
    memories: list[str]
    mode: str
    question: str
    prompt_tokens: int
    seconds: float
    routes: list[dict] = field(default_factory=list)  # {name, score} when a router picked the memories
    completion_tokens: int = 0
    truncated: bool = False  # stopped at max_new_tokens rather than at the end of the answer
    kv: dict | None = None  # kv mode: document_tokens, kept_tokens, cache_bytes
    versions: list[int] = field(default_factory=list)  # the version of each memory that answered
    out_of_scope: list[dict] = field(default_factory=list)  # {name, version, score}: adapters held back (scope.py)
    abstained: bool = False  # routed, and no memory held the answer: answered without one (routing/abstention.py)

    def to_dict(self) -> dict:
        return asdict(self)


class Memory:
    """A store of LoRA memories over one base model.

    >>> mem = Memory(store="my-store")                     # default model: SmolLM2-135M-Instruct
    >>> mem.write(["facts.jsonl"], name="facts")
    >>> mem.write(records=[{"question": "Who?", "answer": "Ada."}], name="ada")  # data in memory
    >>> mem.ask("What is the phone number of Ada Byron?", memories=["facts"]).answer

    `base` is a model already loaded by `loramem.models.load_base`, shared instead of loaded again
    (several `Memory`s over one model, or a benchmark that holds it); it is never changed.
    """

    def __init__(
        self,
        store: str | Path | None = None,
        model: str | None = None,
        device: str | None = None,
        progress: bool = True,
        base: BaseModel | None = None,
    ) -> None:
        if base is not None and model is not None:
            raise LoramemError("give either model (a name to load) or base (a loaded model), not both")
        self.store = MemoryStore(store)
        self.model_spec = base.name if base is not None else model
        self.device = device
        self.progress = progress
        self._base: BaseModel | None = base
        self.adapters = AdapterCache()  # loaded adapter weights, so repeated asks skip the disk
        self._routers: dict = {}
        self.scope = ScopeGate(self.store)  # which fact-table memories a question is about

    @property
    def base(self) -> BaseModel:
        """The base model, loaded on first use (commands that need none never pay for it)."""
        if self._base is None:
            self._base = load_base(self.model_spec, self.device)
        return self._base

    # -- write -------------------------------------------------------------------------------
    def supervision(
        self,
        paths: Sequence[str | Path] = (),
        format: str = "auto",
        generator: str = "auto",
        seed: int = 0,
        chunking: ChunkSettings | None = None,
        generator_options: dict | None = None,
        records: Sequence[dict] | None = None,
        documents: Mapping[str, str] | None = None,
        limits: InputLimits | None = None,
    ) -> Supervision:
        """The examples a write of these inputs trains on: records as they are, documents through `format`.

        Generated examples are cached in the store, so asking again (or writing) costs nothing.
        `limits` (default: InputLimits()) bounds what one record and one document may hold.
        """
        return self._build(read_sources(paths, records, documents, limits), format, generator, seed, chunking,
                           generator_options, limits=limits)

    def _build(self, sources: list[Source], format: str, generator: str, seed: int,
               chunking: ChunkSettings | None, generator_options: dict | None,
               limits: InputLimits | None = None) -> Supervision:
        """The supervision; llama.cpp generation runs in a child process (supervision/isolated.py).

        Every record and document is first counted in the model's tokens against `limits`.
        """
        from loramem.supervision.isolated import BuildJob, build

        parse_format(format)
        tok = self.base.tokenizer
        (limits or InputLimits()).check_tokens(sources, lambda text: len(tok(text, add_special_tokens=False)["input_ids"]),
                                               model_window(self.base.model), self.base.name)
        check_generator(generator)
        return build(BuildJob(sources, format, generator, generator_options, seed, chunking,
                              self.store.path / "cache" / "supervision", self.model_spec, self.device, self.progress),
                     lambda: self.base)

    def write(
        self,
        paths: Sequence[str | Path] = (),
        name: str | None = None,
        replace: bool = False,
        format: str = "auto",
        generator: str = "auto",
        config: TrainConfig | None = None,
        resume: bool = False,
        chunking: ChunkSettings | None = None,
        generator_options: dict | None = None,
        rank: int | str | None = None,
        collection: str = "",
        on_epoch: Callable[[int, float], None] | None = None,
        records: Sequence[dict] | None = None,
        documents: Mapping[str, str] | None = None,
        limits: InputLimits | None = None,
        **settings,
    ) -> WriteResult:
        """Write the files at `paths`, and data given in memory, into one memory.

        `settings` are TrainConfig fields, applied on top of `config` when one is given. `records`
        are question-answer dicts, as the rows of a .jsonl file; `documents` map a label
        (standing for a file name, e.g. `notes.md`) to a document's text. Both are checked as files
        are, so a caller holding data need not write temporary files. `limits` (default:
        InputLimits()) bounds what one record and one document may hold, in tokens.

        `rank="auto"` picks the rank from this base model's datasheet (`loramem datasheet`), or
        built-in defaults when none was measured. Progress is checkpointed after every epoch;
        `resume=True` continues an interrupted write of the same name, inputs and settings from
        its last checkpoint. `on_epoch(epoch, seconds)` is called after each training epoch.
        """
        return write_planned(self, plan_write(
            self, paths, name, replace=replace, format=format, generator=generator, config=config, resume=resume,
            chunking=chunking, generator_options=generator_options, rank=rank, collection=collection,
            on_epoch=on_epoch, records=records, documents=documents, limits=limits, **settings))

    def write_collection(
        self, paths: Sequence[str | Path], collection: str, split: str | int = "per-document",
        batch_memories: int = DEFAULT_BATCH_MEMORIES, **write_args,
    ) -> list[WriteResult]:
        """Write knowledge as several memories grouped in `collection`, for routing to find them.

        `split="per-document"`: one memory per input file. An integer N: the records of the inputs
        cut into N memories of consecutive records. `"auto"`: N from this base model's datasheet
        (the fewest memories whose rank holds the records).

        Up to `batch_memories` memories train together in one batch over the base model, each as
        if written alone (its own examples, schedule, early stop, checkpoint-free training, record
        and commit; see `loramem.write_many`); 1 writes them one after another, as does `resume`.
        """
        from loramem.write_many import write_many

        validate_name(collection)
        sources = read_sources(list(paths), limits=write_args.get("limits"))
        if split == "per-document":
            return write_many(self, [dict(paths=[s.path], name=f"{collection}-{default_name([s.path])}"[:128],
                                          collection=collection, **write_args) for s in sources], batch_memories)
        records = [r for s in sources for r in s.records]
        if any(not s.is_records for s in sources):
            raise LoramemError("only records (.jsonl/.csv) can be split into N memories; split documents per-document")
        if split == "auto":
            from loramem.capacity import load_saved, recommend

            rank, parts = recommend(load_saved(self.base.fingerprint), len(records))
            write_args = {**write_args, "rank": rank}
        elif isinstance(split, int) or str(split).isdigit():
            parts = int(split)
        else:
            raise LoramemError(f"split must be per-document, auto or a number of memories; got {split!r}")
        if not 1 <= parts <= len(records):
            raise LoramemError(f"cannot split {len(records)} records into {parts} memories")
        writes = []
        for i in range(parts):
            part = records[i * len(records) // parts : (i + 1) * len(records) // parts]
            rows = [{"question": r.prompt, "answer": r.target} for r in part]
            writes.append(dict(records=rows, name=f"{collection}-{i:02d}", collection=collection, **write_args))
        return write_many(self, writes, batch_memories)

    # -- read --------------------------------------------------------------------------------
    def _check_base(self, records: list[MemoryRecord]) -> None:
        for r in records:
            # '' for a folder that `recover` found without its record
            if r.base_fingerprint and r.base_fingerprint != self.base.fingerprint:
                raise BaseModelMismatchError(
                    f"memory {r.name!r} was written on base model {r.base_model} "
                    f"(fingerprint {r.base_fingerprint}), not on {self.base.name} "
                    f"({self.base.fingerprint}); ask with --model {r.base_model}"
                )

    def route(self, question: str, router: str = "auto", top_k: int = 1, collection: str | None = None) -> list[Route]:
        """The `top_k` memories of the store (or of `collection`) best suited to `question`, by `router`."""
        name = resolve_router(router)
        cls = ROUTERS.get(name)
        count = self.store.count(collection)
        where = f"collection {collection!r}" if collection is not None else f"the store {self.store.path}"
        if not count:
            raise LoramemError(f"{where} holds no memories to route to")
        if top_k < 1 or top_k > count:
            raise LoramemError(f"top-k must be between 1 and the {count} memories in {where}, got {top_k}")
        if name not in self._routers:
            self._routers[name] = cls(self.store, self)
        return self._routers[name].route(question, top_k, collection)

    def ask(
        self,
        question: str,
        memories: Sequence[str] = (),
        mode: str | None = None,
        max_new_tokens: int = 64,
        route: str | None = None,
        top_k: int = 1,
        merge: str | Merge = "sum",
        collection: str | None = None,
        streamer=None,
        mode_options: dict | None = None,
        scope: float = SCOPE,
        abstain: str = "base",
    ) -> Answer:
        """Answer `question` drawing on the named memories in `mode` (default: parametric).

        With `route` (`auto`, `embedding`, `bm25`, `hybrid`) and no named memories, a router
        picks the `top_k` memories; several active memories add their deltas exactly. `streamer`
        (a transformers streamer) receives the answer's tokens as they are made. `mode_options` are
        the mode's settings: `rag_top_k` and `retriever` for the rag modes; `press`, `compression`
        and `adapter_phase` for kv. A fact-table memory's adapter stays off for a question outside
        its scope, cosine `scope` to its nearest record (`loramem.scope`; 0: always on). A question whose
        prompt and answer do not fit in the model's window raises QuestionTooLong, before any routing.
        A routed question that no memory holds (`loramem.routing.abstention`) is answered without one:
        by the base model (`abstain="base"`), by `rag` over the routed collection's documents
        (`"rag"`), or routed anyway (`"never"`); the answer says `abstained`.
        """
        if not question.strip():
            raise LoramemError("the question is empty")
        merge = merge if isinstance(merge, Merge) else Merge(check_merge(merge))

        def check_length() -> None:
            check_question(PromptFormat(self.base.tokenizer), question, model_window(self.base.model), max_new_tokens)

        check_abstain(abstain)
        routes: list[Route] = []
        abstained = False
        if route is not None:
            if memories:
                raise LoramemError("give either --memory names or --route, not both")
            check_length()
            routes = self.route(question, route, top_k, collection)
            memories = [r.name for r in routes]
            if abstain != "never" and not self._routers[resolve_router(route)].holds(question, routes):
                abstained = True
                memories = self.store.names(collection) if abstain == "rag" else []
                mode = abstain
        mode = mode or default_mode(bool(memories))
        answer_mode = MODES.get(mode)(**(mode_options or {}))
        if answer_mode.needs_memory and not memories:
            raise LoramemError(f"mode {mode!r} needs at least one memory (--memory NAME)")
        records = [self.store.get(n) for n in dict.fromkeys(memories)]  # unknown names fail before the model loads
        if route is None:
            check_length()
        self._check_base(records)
        plan = answer_mode.plan(records, question)
        start = time.perf_counter()
        scoped = self.scope.split(question, plan.adapters, scope)
        adapters = [(r.name, self.store.adapter_path(r)) for r in scoped.inside]
        kv = None
        if plan.kv is not None:
            from loramem.kv import kv_answer

            text, n_prompt, n_new, stats = kv_answer(self.base, question, plan.context or "", adapters, plan.kv,
                                                     max_new_tokens, self.adapters, merge)
            kv = asdict(stats)
        else:
            text, n_prompt, n_new = generate_answer(self.base, question, plan.context, adapters, max_new_tokens,
                                                    self.adapters, merge, streamer)
        return Answer(
            answer=text, memories=[r.name for r in records], versions=[r.version for r in records], mode=mode,
            question=question,
            prompt_tokens=n_prompt, seconds=time.perf_counter() - start,
            routes=[r.summary() for r in routes],
            completion_tokens=n_new, truncated=n_new >= max_new_tokens, kv=kv, out_of_scope=scoped.outside,
            abstained=abstained,
        )

    # -- catalogue ---------------------------------------------------------------------------
    def list(self) -> list[MemoryRecord]:
        return self.store.list()

    def show(self, name: str) -> MemoryRecord:
        return self.store.get(name)

    def forget(self, name: str) -> MemoryRecord:
        """Remove memory `name` with all its versions."""
        return self.store.remove(name)

    # -- versions ----------------------------------------------------------------------------
    def update(
        self,
        name: str,
        paths: Sequence[str | Path] = (),
        remove: Sequence[str | Path] = (),
        records: Sequence[dict] | None = None,
        documents: Mapping[str, str] | None = None,
        remove_records: Sequence[dict] | None = None,
        method: str | None = None,
        epochs: int | None = None,
        accept_below_target: bool = False,
    ) -> UpdateResult:
        """Change memory `name` into its next version, verified as a write is.

        `paths`, `records` and `documents` add knowledge: a record whose question the memory holds
        supersedes its answer, a document named like a held one replaces it (a revision). `remove`
        lists record files whose questions go, or names of documents to remove; `remove_records`
        are records given in memory. Removed answers are trained out, towards the base model's own
        answer. `method` is one of `loramem.updates.UPDATES` (default: the benchmark's pick).

        The next version must read back what a write of the memory stops on (every record of a fact
        table); one that falls short within `epochs` a round (default: the memory's own limit) is not
        committed and BelowTargetError says why, the current version staying as it is, unless
        `accept_below_target` (then it is committed and made current, marked in its log).
        """
        from loramem.updates.apply import update_memory

        return update_memory(self, name, paths, remove, records, documents, remove_records, method, epochs,
                             accept_below_target)

    def log(self, name: str) -> list[Version]:
        """Every kept version of memory `name`, oldest first."""
        return self.store.versions(name)

    def rollback(self, name: str, version: int) -> MemoryRecord:
        """Make version `version` of memory `name` current again."""
        return self.store.rollback(name, version)

    def gc(self, name: str | None = None, keep: int = 0) -> tuple[int, int]:
        """Delete old versions but the current one and the `keep` newest others; (versions, folders) removed."""
        return self.store.gc(name, keep)
