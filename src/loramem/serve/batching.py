"""Serving many memories at once: concurrent requests decoded in one batch, each row with its own adapter.

`Memory.ask` answers one request at a time: a decode step reads all the model's weights for one
token, so eight clients wait eight times as long. Here concurrent requests that each use one
memory (or none) share the base model's GEMMs, as S-LoRA and Punica serve adapters: each row gets
its own LoRA product, from `loramem.serve.stacked` (one product over all the batch's adapters,
while their ranks sum to at most STACKED_MAX_RANK) or else `loramem.adapters.batched`.

Continuous batching. One engine thread owns the model. Between decode steps it admits waiting
requests: their prompts are prefilled together (left-padded, each row its own adapter, from its
adapter's cached template head when the prompt starts with it: `loramem.serve.prefix_cache`), and their
KV cache is left-padded to the running batch's length and joined to it; the attention mask hides
the padding and each row carries its own position ids, so a row computes what it would alone.
Every step decodes one greedy token for every row; a row stops at an end token or its
`max_new_tokens`, and its cache row leaves the batch (columns that only padding used are cut).

Requests that are not one memory in the parametric or base mode (merges of several memories,
kv, rag, icl, routed requests), and adapters the hook path cannot apply (DoRA, ...), run alone
through `Memory.ask`, on the same thread between steps, so nothing else ever touches the model
while a batch decodes. A request's memory is resolved once, when it arrives: a new version
written while it decodes does not change its answer, and weights are cached by adapter folder
(one per version).

What it buys depends on how much more a step of 8 rows costs than one. SmolLM2-135M fp32, 2-core
AMD EPYC, decode steps on a compiled kernel that reads each weight once for all rows
(`loramem.kernels`), prefills on each row's own adapter from cached heads: 1.49 and 5.12 requests/s
with 1 and 8 clients, 3.45x (`benchmarks/serve-cpu.json`). What 8 clients do not share is compute
(each prefill's GEMMs, each row's share of a step), so a faster one-request path lowers the ratio.
A GPU step of 8 rows costs about what one does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch

from loramem.adapters import AdapterCache, LoraWeights, UnsupportedAdapter
from loramem.adapters.batched import batched_lora
from loramem.kernels.decode_linear import decode_linears
from loramem.kernels.openmp import release_pool
from loramem.modes import MODES, default_mode
from loramem.prompts import PromptFormat
from loramem.scope import SCOPE
from loramem.serve.batch_cache import BatchCache, unbatchable_reason
from loramem.serve.prefix_cache import HeadCache, shared_head
from loramem.serve.stacked import STACKED_MAX_RANK, stacked_lora, stacked_rank


@dataclass(eq=False)  # rows are told apart by identity
class Row:
    """One request in the batch: its prompt, its adapter (None: the base model) and how it ends."""

    prompt: list[int]
    adapter: LoraWeights | None = None
    key: str | None = None  # the adapter's cache key: one per adapter folder (memory version), device and dtype
    max_new_tokens: int = 64
    stop_ids: frozenset[int] = frozenset()
    streamer: object | None = None  # a transformers streamer: gets the prompt, then each token, then end()
    tokens: list[int] = field(default_factory=list)
    position: int = 0  # position id of the next token fed
    result: Future = field(default_factory=Future)  # resolves to the generated ids (end token included)

    @property
    def finished(self) -> bool:
        return bool(self.tokens) and (self.tokens[-1] in self.stop_ids or len(self.tokens) >= self.max_new_tokens)


@dataclass(eq=False)
class _Alone:
    """A call that needs the model to itself (a merge, kv, ...): run between decode steps."""

    call: Callable[[], object]
    result: Future = field(default_factory=Future)


class BatchEngine:
    """Continuous greedy batching over `model` (a causal LM): `generate(row)` waits for its tokens.

    The engine's thread is the model's only user: whatever else needs it goes through `alone`.
    The batch's adapter hooks are on the model only while rows decode (off when the batch empties
    and during an alone call), since entering them costs milliseconds (~6.5 ms for 8 adapters on
    SmolLM2's 210 linear layers), too much to pay every step. With `thread=False` nothing runs
    until `run_once()` is called (tests drive the steps by hand, to join requests at chosen points).
    """

    def __init__(self, model: torch.nn.Module, pad_id: int, max_batch: int = 16, thread: bool = True,
                 stacked_max_rank: int = STACKED_MAX_RANK, head: Sequence[int] = ()) -> None:
        import inspect

        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model, self.pad_id, self.max_batch = model, pad_id, max_batch
        self.stacked_max_rank = stacked_max_rank  # above it, the segment loop of loramem.adapters.batched
        release_pool()  # the creating thread's OpenMP workers (left by a write) would slow every step (kernels/openmp.py)
        self.keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.heads = HeadCache(head)  # the prompts' shared head, prefilled once per adapter (prefix_cache.py)
        self.stats = {"steps": 0, "rows_stepped": 0, "prefills": 0, "alone": 0, "max_rows": 0, "heads": 0,
                      "step_s": 0.0, "prefill_s": 0.0}  # seconds in decode steps and in prefills
        self._queue: deque[Row | _Alone] = deque()
        self._wake = threading.Condition()
        self._rows: list[Row] = []
        self._kv = BatchCache()  # the batch's KV cache and attention mask, rows in the order of _rows
        self._lora = ExitStack()
        self._slots: dict[str, int] = {}  # adapter key -> its index in the active batched_lora
        self._set_rows = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="loramem-batch") if thread else None
        if self._thread:
            self._thread.start()

    # -- callers -----------------------------------------------------------------------------
    def submit(self, row: Row) -> Future:
        """Queue `row`; its future resolves to the generated token ids."""
        if not row.prompt:
            raise ValueError("an empty prompt")
        if row.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {row.max_new_tokens}")
        row.position = len(row.prompt)
        self._put(row)
        return row.result

    @property
    def waiting(self) -> int:
        """Requests and alone calls queued, not yet started."""
        return len(self._queue)

    def generate(self, row: Row) -> list[int]:
        return self.submit(row).result()

    def alone(self, call: Callable[[], object]):
        """Run `call` with the model to itself, between two decode steps; return what it returns."""
        job = _Alone(call)
        self._put(job)
        return job.result.result()

    def close(self) -> None:
        """Stop the thread; requests still waiting fail."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread:
            self._thread.join(timeout=30)
        for item in [*self._queue, *self._rows]:
            if not item.result.done():
                item.result.set_exception(RuntimeError("the server is shutting down"))
        self._queue.clear()
        self._rows = []
        self._lora.close()

    def _put(self, item: Row | _Alone) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the batch engine is closed")
            self._queue.append(item)
            self._wake.notify()

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._queue and not self._rows:
                    self._wake.wait()
                if self._closed:
                    return
            try:
                self.run_once()
            except Exception as e:  # a bug, not a request's error: fail the batch, keep serving
                self._fail(self._rows, e)
                self._rows = []
                self._kv.clear()
                self._close_lora()

    def run_once(self) -> None:
        """One iteration: run a waiting alone call, or admit waiting rows and decode one token for all."""
        joining: list[Row] = []
        alone = None
        with self._wake:
            if self._queue and isinstance(self._queue[0], _Alone):
                alone = self._queue.popleft()
            room = self.max_batch - len(self._rows)
            while alone is None and self._queue and isinstance(self._queue[0], Row) and len(joining) < room:
                joining.append(self._queue.popleft())
        if alone is not None:
            self._run_alone(alone)
            return
        with torch.no_grad():
            if joining:
                tick = time.perf_counter()
                self._admit(joining)
                self.stats["prefill_s"] += time.perf_counter() - tick
            if self._rows:
                tick = time.perf_counter()
                self._step()
                self.stats["step_s"] += time.perf_counter() - tick
        if not self._rows:
            self._close_lora()  # idle: the model as it was

    def _run_alone(self, job: _Alone) -> None:
        self._close_lora()  # its hooks off: the call sees the plain model
        self.stats["alone"] += 1
        try:
            job.result.set_result(job.call())
        except BaseException as e:  # the caller's request fails, the engine goes on
            job.result.set_exception(e)

    def _fail(self, rows: Sequence[Row], error: BaseException) -> None:
        for row in rows:
            if row.streamer is not None:
                row.streamer.end()
            if not row.result.done():
                row.result.set_exception(error)

    # -- adapters ----------------------------------------------------------------------------
    def _close_lora(self) -> None:
        self._lora.close()
        self._lora, self._slots, self._set_rows = ExitStack(), {}, None

    def _use_adapters(self, rows: Sequence[Row]) -> None:
        """Hooks for every adapter `rows` use; rebuilt only when one is missing (stale ones stay)."""
        needed = {r.key: r.adapter for r in rows if r.key is not None}
        if self._set_rows is not None and needed.keys() <= self._slots.keys():
            return
        self._close_lora()
        adapters = list(needed.values())
        form = stacked_lora if stacked_rank(adapters) <= self.stacked_max_rank else batched_lora
        stack = ExitStack()
        self._set_rows = stack.enter_context(form(self.model, adapters))
        stack.enter_context(decode_linears(self.model))  # every linear the stacked form did not replace
        self._lora, self._slots = stack, {k: j for j, k in enumerate(needed)}

    def _index(self, rows: Sequence[Row]) -> None:
        self._set_rows(torch.tensor([self._slots[r.key] if r.key is not None else -1 for r in rows]))

    # -- prefill and decode ------------------------------------------------------------------
    def _admit(self, rows: list[Row]) -> None:
        """Prefill `rows` together and join the survivors (no end token yet) to the batch."""
        from transformers import DynamicCache

        try:
            self._use_adapters([*self._rows, *rows])
        except (UnsupportedAdapter, ValueError) as e:  # one of the new adapters does not fit: they fail, the batch goes on
            self._fail(rows, e)
            self._use_adapters(self._rows)
            return
        device = next(self.model.parameters()).device
        extra = {"logits_to_keep": 1} if self.keep_logits else {}
        lead = len(self.heads.head) if self.heads.fits(rows) else 0  # tokens the rows' adapters' heads hold
        try:
            cache = self._heads(rows, device, extra) if lead else DynamicCache(config=self.model.config)
            width = max(len(r.prompt) for r in rows) - lead
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), lead + width), dtype=torch.long)
            mask[:, :lead] = 1
            for i, r in enumerate(rows):
                ids[i, width - len(r.prompt) + lead:] = torch.tensor(r.prompt[lead:])
                mask[i, lead + width - len(r.prompt) + lead:] = 1
            ids, mask = ids.to(device), mask.to(device)
            positions = (mask.cumsum(-1) - 1).clamp_(min=0)[:, lead:]  # each row counts from its first token, as alone
            self._index(rows)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                                use_cache=True, **extra).logits[:, -1]
        except Exception as e:
            self._fail(rows, e)
            return
        self.stats["prefills"] += 1
        for r in rows:
            if r.streamer is not None:
                r.streamer.put(torch.tensor([r.prompt]))  # the prompt first: streamers skip it
        survivors = self._emit(rows, logits.float().argmax(-1).tolist())
        if survivors:
            self._kv.join(cache, mask, [i for i, r in enumerate(rows) if r in survivors])
            self._rows.extend(survivors)
        self.stats["max_rows"] = max(self.stats["max_rows"], len(self._rows))

    def _heads(self, rows: list[Row], device, extra: dict):
        """A cache holding each row's adapter's head, prefilling the heads not cached yet (one batch)."""
        from transformers import DynamicCache

        missing = self.heads.missing(rows)
        if missing:
            cache = DynamicCache(config=self.model.config)
            self._index(missing)
            ids = torch.tensor([self.heads.head] * len(missing), device=device)
            self.model(input_ids=ids, past_key_values=cache, use_cache=True, **extra)
            self.heads.store(missing, cache)
            self.stats["heads"] += len(missing)
        return self.heads.batch(rows, self.model.config)

    def _step(self) -> None:
        """One greedy token for every row of the batch."""
        rows = self._rows
        mask = self._kv.next_mask()  # (rows, cache length + 1)
        ids = torch.tensor([[r.tokens[-1]] for r in rows], device=mask.device)
        positions = torch.tensor([[r.position] for r in rows], device=mask.device)
        self._use_adapters(rows)  # back after an alone call took the hooks off
        self._index(rows)
        try:
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                past_key_values=self._kv.cache, use_cache=True).logits[:, -1]
        except Exception as e:  # the batch's cache is unusable now: every row fails, the engine starts afresh
            self._fail(rows, e)
            self._rows = []
            self._kv.clear()
            return
        self._kv.mask = mask
        for r in rows:
            r.position += 1
        self.stats["steps"] += 1
        self.stats["rows_stepped"] += len(rows)
        survivors = self._emit(rows, logits.float().argmax(-1).tolist())
        if len(survivors) < len(rows):
            self._kv.retire([i for i, r in enumerate(rows) if r in survivors])
            self._rows = survivors

    def _emit(self, rows: Sequence[Row], tokens: Sequence[int]) -> list[Row]:
        """Append each row's new token, stream it, finish rows that are done; the rows that go on."""
        going = []
        for r, token in zip(rows, tokens):
            r.tokens.append(token)
            if r.streamer is not None:
                r.streamer.put(torch.tensor([token]))
            if r.finished:
                if r.streamer is not None:
                    r.streamer.end()
                r.result.set_result(list(r.tokens))
            else:
                going.append(r)
        return going


class Batcher:
    """The server's answering: one-memory parametric and base requests batched, the rest alone.

    `answer(args)` takes `Server.resolve`'s arguments (and a `streamer`) and returns an `Answer`,
    as `Memory.ask(**args)` would.
    """

    def __init__(self, memory, max_batch: int = 16) -> None:
        self.memory = memory
        self.base = memory.base
        self.format = PromptFormat(self.base.tokenizer)
        self.unbatchable = unbatchable_reason(self.base.model)
        self.engine = BatchEngine(self.base.model, self.format.end_id, max_batch,
                                  head=shared_head(self.format.prompt_ids))
        self.adapters: AdapterCache = memory.adapters

    def close(self) -> None:
        self.engine.close()

    def answer(self, args: dict):
        row, records, outside = self._row(args)
        if row is None:
            return self.engine.alone(lambda: self.memory.ask(**args))
        start = time.perf_counter()
        tokens = self.engine.generate(row)
        from loramem.api import Answer

        text = self.base.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return Answer(answer=text, memories=[r.name for r in records], versions=[r.version for r in records],
                      mode=args.get("mode") or default_mode(bool(records)), question=args["question"],
                      prompt_tokens=len(row.prompt), seconds=time.perf_counter() - start,
                      completion_tokens=len(tokens), truncated=len(tokens) >= row.max_new_tokens,
                      out_of_scope=outside)

    def _row(self, args: dict) -> tuple[Row | None, list, list[dict]]:
        """The batch row of a request, its memory's record and the memories held back by their scope
        (`loramem.scope`), resolved now (a version written while the request decodes does not change its
        answer); (None, [], []) when it must run alone."""
        names = list(dict.fromkeys(args.get("memories") or []))
        if args.get("mode") is not None and args["mode"] not in MODES.names():
            return None, [], []  # refused where it runs alone, with the registry's message
        mode = MODES.get(args.get("mode") or default_mode(bool(names)))
        if (self.unbatchable or args.get("route") is not None or not mode.batched or len(names) > 1
                or (mode.needs_memory and not names) or args.get("mode_options")):
            return None, [], []
        records = [self.memory.store.get(n) for n in names]
        self.memory._check_base(records)  # one message for a memory of another base model
        adapter = key = None
        scoped = self.memory.scope.split(args["question"], records if mode.needs_memory else [],
                                         args.get("scope", SCOPE))
        if scoped.inside:
            path = Path(self.memory.store.adapter_path(scoped.inside[0]))
            param = next(self.base.model.parameters())
            try:
                adapter = self.adapters.get(path, param.device, param.dtype, scoped.inside[0].name)
            except UnsupportedAdapter:  # not plain LoRA: PEFT's path, alone
                return None, [], []
            key = f"{path.resolve()}|{param.device}|{param.dtype}"
        row = Row(prompt=self.format.prompt_ids(args["question"]), adapter=adapter, key=key,
                  max_new_tokens=int(args.get("max_new_tokens") or 64), stop_ids=frozenset(self.format.stop_ids),
                  streamer=args.get("streamer"))
        return row, records, scoped.outside
