"""Continuous batching over llama.cpp: many completions decode together, one token each per step.

On a CPU, decoding one stream of a 1.5B model is bound by reading the weights once per token;
decoding k streams in one `llama_decode` call reads them once for all k, so throughput grows
with k until the cores' arithmetic is the bound. The engine keeps up to `slots` sequences in
one unified KV cache: callers (threads) submit prompts, a prompt is prefilled once, its n
completions share that prefix (`llama_memory_seq_cp`) and then decode side by side with every
other caller's. Greedy completions equal one-stream greedy decoding (pinned by a test).

Prompts stay in the cache after their completions finish (the last `cached_prompts`, in extra
sequence ids that hold their cells until a decode needs the room), so a later prompt that begins the same
way (the shared instructions of every QA prompt, a chunk asked again in a second round, the judge's
rubric) prefills only what is new. On a CPU prefill is most of a short completion's cost.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from loramem.supervision.generators.http import GeneratorError


@dataclass
class Request:
    tokens: list[int]  # the prompt, chat template applied
    n: int
    seed: int
    sample: bool  # else the first completion is greedy and the rest sampled
    max_new: int
    future: Future = field(default_factory=Future)
    done: list = field(default_factory=list)  # [index, tokens] of finished completions


@dataclass
class _Prompt:
    request: Request
    seqs: list[int]  # the slots of its completions; the prompt is read into the first
    pos: int  # prompt tokens already in the cache (borrowed or read)


@dataclass
class _Stream:
    request: Request
    index: int  # which of the request's n completions
    rng: np.random.Generator | None  # None: greedy
    pos: int
    last: int = -1
    out: list[int] = field(default_factory=list)


class LlamaCppEngine:
    """A llama.cpp model and context serving batched completions from a background thread."""

    def __init__(self, path: str, slots: int = 16, context_per_slot: int = 1536, threads: int | None = None,
                 temperature: float = 0.8, top_p: float = 0.95, batch_tokens: int = 512,
                 cached_prompts: int = 4) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.slots, self.per_slot, self.batch_tokens = slots, context_per_slot, batch_tokens
        self.cache_ids = list(range(slots, slots + cached_prompts))  # sequence ids that keep finished prompts
        self._cached: dict[int, list[int]] = {}  # cache id -> the prompt whose cells it holds; oldest first
        self.temperature, self.top_p = temperature, top_p
        # The Llama object loads the model and gives tokenizer and metadata; its own context is tiny and unused.
        threads = threads or os.cpu_count() or 1  # llama-cpp-python's default, half the cores, idles one of two
        try:
            self.llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise GeneratorError(f"llama.cpp cannot load {path}: {e}") from None
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = slots * context_per_slot  # kept prompts give their cells back when a decode needs them
        params.n_batch = params.n_ubatch = batch_tokens
        params.n_seq_max = slots + cached_prompts
        params.kv_unified = True  # completions of one prompt share its cells
        params.n_threads = params.n_threads_batch = self.llm.n_threads
        self.ctx = llama_cpp.llama_init_from_model(self.llm._model.model, params)
        if not self.ctx:
            raise GeneratorError(f"llama.cpp could not allocate a {params.n_ctx}-token context (out of memory?); "
                                 "use fewer slots")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = self.llm._model.vocab
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.batch = llama_cpp.llama_batch_init(batch_tokens, 0, 1)
        self._queue: queue.Queue[Request] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = {"generated_tokens": 0, "prompt_tokens": 0, "decode_calls": 0, "shared_prompt_tokens": 0,
                      "busy_s": 0.0}

    # -- public --------------------------------------------------------------------------
    def submit(self, tokens: list[int], n: int = 1, seed: int = 0, sample: bool = False,
               max_new: int = 512) -> list[Future]:
        """Queue `n` completions of `tokens` (the first greedy unless `sample`); futures of token lists.

        A request holds at most `slots` completions; more are queued as further requests.
        """
        if len(tokens) + max_new > self.per_slot:
            raise GeneratorError(f"prompt of {len(tokens)} tokens plus {max_new} new exceeds the "
                                 f"{self.per_slot}-token slot; use shorter chunks")
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llama.cpp engine", daemon=True)
                self._thread.start()
        requests = [Request(tokens, min(self.slots, n - k), seed + k, sample or k > 0, max_new)
                    for k in range(0, n, self.slots)]
        for request in requests:
            self._queue.put(request)
        return [r.future for r in requests]

    def close(self) -> None:
        """Free the context and the model (before interpreter exit tears the bindings down)."""
        if self.ctx:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.ctx = None
            self.llm.close()

    def is_eog(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        free = list(range(self.slots))
        active: dict[int, _Stream] = {}
        waiting: list[Request] = []
        prompt: _Prompt | None = None  # the prompt being prefilled, a slice per step beside the decoding rows
        while True:
            try:  # block only when there is nothing to decode
                idle = not active and not waiting and prompt is None
                waiting.append(self._queue.get(timeout=None if idle else 0))
                while True:
                    waiting.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            try:
                while prompt is None and waiting and len(free) >= waiting[0].n:
                    request = waiting.pop(0)
                    if not request.future.done():  # a caller that timed out cancelled it
                        prompt = self._admit(request, free, active)
                if active or prompt is not None:
                    prompt = self._step(active, free, prompt)
            except Exception as e:  # fail every caller, not only the one whose step broke
                failed = [s.request for s in active.values()] + waiting + ([prompt.request] if prompt else [])
                for request in failed:
                    if not request.future.done():
                        request.future.set_exception(e)
                active.clear(), waiting.clear(), self._cached.clear()
                prompt = None
                self.lib.llama_memory_clear(self.memory, True)
                free = list(range(self.slots))

    def _fill(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, pos, seq, wants logits) items in one llama_decode call."""
        b = self.batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i] = token, pos, 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        code = self.lib.llama_decode(self.ctx, b)
        self.stats["decode_calls"] += 1
        if code == 1 and self._cached:  # no room: the kept prompts give their cells back, then try again
            for cache_id in list(self._cached):
                self._evict(cache_id)
            code = self.lib.llama_decode(self.ctx, b)
            self.stats["decode_calls"] += 1
        if code != 0:
            raise GeneratorError(f"llama.cpp decode failed (code {code}; 1 means the KV cache is full)")

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.lib.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def _pick(self, logits: np.ndarray, rng: np.random.Generator | None) -> int:
        if rng is None:
            return int(np.argmax(logits))
        top = np.argpartition(logits, -64)[-64:]  # nucleus sampling over the 64 most likely tokens
        z = logits[top].astype(np.float64) / self.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), self.top_p)) + 1]
        q = p[keep] / p[keep].sum()
        return int(top[keep][rng.choice(len(keep), p=q)])

    def _admit(self, request: Request, free: list[int], active: dict[int, _Stream]) -> _Prompt:
        """Take slots for the request and borrow the cells of the longest prompt prefix held.

        A prompt that begins like one in the cache (the same rules and passage under another
        request) prefills only the rest: on a CPU, prefill is most of a short completion's cost.
        """
        seqs = [free.pop(0) for _ in range(request.n)]
        tokens = request.tokens
        held = {seq: s.request.tokens for seq, s in active.items()} | self._cached
        source, shared = _longest_prefix(tokens, held)
        shared = min(shared, len(tokens) - 1)  # the last prompt token is decoded, for its logits
        if shared >= 32:
            self.lib.llama_memory_seq_cp(self.memory, source, seqs[0], 0, shared)
            if source in self._cached:  # most recently used: the last to be evicted
                self._cached[source] = self._cached.pop(source)
        else:
            shared = 0
        self.stats["prompt_tokens"] += len(tokens) - shared
        self.stats["shared_prompt_tokens"] += shared
        return _Prompt(request, seqs, shared)

    def _step(self, active: dict[int, _Stream], free: list[int], prompt: _Prompt | None) -> _Prompt | None:
        """One llama_decode call: a token for every decoding row, and the next slice of `prompt`.

        Prompt tokens ride in the same call as the rows (as llama.cpp's server does), so admitting
        a prompt costs no call of its own and the rows keep decoding while it is read.
        Returns the prompt while some of it is still to be read.
        """
        seqs = list(active)
        items = [(active[s].last, active[s].pos, s, True) for s in seqs]
        part: list[int] = []
        if prompt is not None:
            tokens, start = prompt.request.tokens, prompt.pos
            part = tokens[start:start + max(1, self.batch_tokens - len(items))]
            items += [(t, start + j, prompt.seqs[0], start + j == len(tokens) - 1) for j, t in enumerate(part)]
        t0 = time.perf_counter()
        self._fill(items)
        for i, seq in enumerate(seqs):
            stream = active[seq]
            stream.out.append(stream.last)
            stream.pos += 1
            stream.last = self._pick(self._logits(i), stream.rng)
        self.stats["generated_tokens"] += len(seqs)
        self.stats["busy_s"] += time.perf_counter() - t0
        for seq in seqs:
            self._maybe_finish(seq, active, free)
        if prompt is None:
            return None
        prompt.pos += len(part)
        if prompt.pos < len(prompt.request.tokens):
            return prompt
        self._start(prompt, self._logits(len(items) - 1).copy(), active, free)
        return None

    def _start(self, prompt: _Prompt, last: np.ndarray, active: dict[int, _Stream], free: list[int]) -> None:
        """The prompt is read: keep it, share it with the request's other slots, pick first tokens."""
        request, seqs = prompt.request, prompt.seqs
        self._keep(request.tokens, seqs[0])
        for k, seq in enumerate(seqs):
            if k:
                self.lib.llama_memory_seq_cp(self.memory, seqs[0], seq, -1, -1)
            rng = None if k == 0 and not request.sample else np.random.default_rng(request.seed + k)
            active[seq] = _Stream(request, k, rng, pos=len(request.tokens), last=self._pick(last, rng))
        for seq in seqs:
            self._maybe_finish(seq, active, free)

    def _keep(self, tokens: list[int], seq: int) -> None:
        """Hold the prompt's cells in a cache id, evicting the oldest kept prompt (or one this extends)."""
        if not self.cache_ids:
            return
        for cache_id, kept in list(self._cached.items()):
            if kept == tokens[: len(kept)]:  # the new prompt covers it
                self._evict(cache_id)
        if len(self._cached) == len(self.cache_ids):
            self._evict(next(iter(self._cached)))
        cache_id = next(c for c in self.cache_ids if c not in self._cached)
        self.lib.llama_memory_seq_cp(self.memory, seq, cache_id, 0, len(tokens))
        self._cached[cache_id] = tokens

    def _evict(self, cache_id: int) -> None:
        self.lib.llama_memory_seq_rm(self.memory, cache_id, -1, -1)
        del self._cached[cache_id]

    def _maybe_finish(self, seq: int, active: dict[int, _Stream], free: list[int]) -> None:
        stream = active[seq]
        abandoned = stream.request.future.done()  # cancelled by a caller that stopped waiting
        if not (abandoned or self.is_eog(stream.last) or len(stream.out) >= stream.request.max_new):
            return
        del active[seq]
        self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
        free.append(seq)
        request = stream.request
        request.done.append((stream.index, stream.out))
        if len(request.done) == request.n and not request.future.done():
            request.future.set_result([out for _, out in sorted(request.done)])


def _longest_prefix(tokens: list[int], held: dict[int, list[int]]) -> tuple[int, int]:
    """(seq, length) of the held prompt that shares the longest prefix with `tokens`."""
    best, length = -1, 0
    for seq, other in held.items():
        n = min(len(tokens), len(other))
        k = next((i for i in range(n) if tokens[i] != other[i]), n)
        if k > length:
            best, length = seq, k
    return best, length


def wait(futures: list[Future], timeout: float | None, what: str) -> list[list[int]]:
    """The futures' completions in order, or a GeneratorError once `timeout` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[list[int]] = []
    try:
        for f in futures:
            out += f.result(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        for f in futures:
            f.cancel()
        raise GeneratorError(f"{what}: no completion within {timeout:g} s") from None
    return out
