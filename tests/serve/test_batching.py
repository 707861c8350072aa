"""Batched serving: every row of a continuous batch answers exactly what `generate_answer` answers alone,
and concurrent HTTP clients on different memories get their own memory's answer, decoded together."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from transformers import TextIteratorStreamer

from conftest import FAST_TRAIN, random_adapters, replaced_forwards
from loramem import Memory
from loramem.adapters import load_lora
from loramem.adapters.batched import batched_lora
from loramem.answering import generate_answer
from loramem.prompts import PromptFormat
from loramem.serve import ServerThread, create_app
from loramem.serve.batching import BatchEngine, Row
from loramem.serve.prefix_cache import HeadCache, shared_head
from loramem.serve.stacked import stacked_lora
from loramem.training import TrainConfig

QUESTIONS = ["What is the phone number of Ada Byron?", "q", "hello there",
             "Answer briefly. Question: the quick brown fox jumps over the lazy dog 0123456789 - and then?"]


# (rank, target modules): mixed ranks, and one adapter on some layers only (a layout of its own)
SPECS = [(4, "all-linear"), (8, ["q_proj", "v_proj", "down_proj"]), (2, "all-linear")]


@pytest.fixture(scope="module")
def folders(tiny_base, tmp_path_factory) -> list[Path]:
    return random_adapters(tiny_base, tmp_path_factory, [
        dict(r=r, lora_alpha=2 * r, target_modules=targets) for r, targets in SPECS], seed=200, label="batch-adapter")


def _row(tiny_base, folders, question: str, adapter: int, max_new_tokens: int, streamer=None) -> Row:
    fmt = PromptFormat(tiny_base.tokenizer)
    weights = load_lora(folders[adapter], torch.device("cpu"), torch.float32) if adapter >= 0 else None
    return Row(fmt.prompt_ids(question), weights, str(folders[adapter]) if adapter >= 0 else None, max_new_tokens,
               frozenset(fmt.stop_ids), streamer)


def _alone(tiny_base, folders, question: str, adapter: int, max_new_tokens: int) -> tuple[str, int, int]:
    adapters = [(f"a{adapter}", folders[adapter])] if adapter >= 0 else []
    return generate_answer(tiny_base, question, adapters=adapters, max_new_tokens=max_new_tokens)


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())



@pytest.mark.parametrize("shape", [(5, 9), (5, 1), (2, 3)], ids=["prefill", "decode", "few-tokens"])
def test_stacked_form_equals_the_segment_loop(tiny_base, folders, shape, decode_product):
    """The serving form (all adapters' factors stacked, rows masked) computes batched_lora's logits,
    both as `nn.Linear` plus the LoRA part (45 tokens) and by the few-token products (5 and 6 tokens,
    fp32 CPU: the compiled kernel, or weight-major plus the LoRA part without it)."""
    weights = [load_lora(f, torch.device("cpu"), torch.float32) for f in folders]
    ids = torch.randint(5, len(tiny_base.tokenizer), shape, generator=torch.Generator().manual_seed(0))
    rows = [1, -1, 0, 2, 1][:shape[0]]
    with torch.no_grad():
        with batched_lora(tiny_base.model, weights) as set_rows:
            set_rows(rows)
            expected = tiny_base.model(input_ids=ids).logits
        with stacked_lora(tiny_base.model, weights) as set_rows:
            assert replaced_forwards(tiny_base.model) == len(weights[0].layers)  # every layer some adapter targets
            set_rows(rows)
            got = tiny_base.model(input_ids=ids).logits
            with pytest.raises(ValueError, match="out of range"):
                set_rows([3])
            set_rows(rows + [0])
            with pytest.raises(ValueError, match="row indices for a batch"):
                tiny_base.model(input_ids=ids)
        plain = tiny_base.model(input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], plain[1], rtol=1e-5, atol=1e-5)  # the row without an adapter is the base model's
    assert _hooks(tiny_base.model) == 0 and replaced_forwards(tiny_base.model) == 0


@pytest.mark.parametrize("stacked_max_rank", [256, 0], ids=["stacked", "segments"])
def test_batched_rows_equal_generate_answer_alone(tiny_base, folders, stacked_max_rank, few_rows_kernel):
    """Three adapters and the base model in one batch, prompts of different lengths, different
    max_new_tokens; three more rows join mid-decode (one longer than the running cache, so the batch
    is left-padded, and two shorter); greedy answers and token counts equal each answered alone,
    in both forms of the per-row LoRA. Each prompt's template head comes from its adapter's cached
    head (prefilled once per adapter), the rest is prefilled after it."""
    fmt = PromptFormat(tiny_base.tokenizer)
    head = shared_head(fmt.prompt_ids)
    assert 0 < len(head) < len(fmt.prompt_ids("q"))
    engine = BatchEngine(tiny_base.model, fmt.end_id, thread=False, stacked_max_rank=stacked_max_rank, head=head)
    first = [(QUESTIONS[0], -1, 12), (QUESTIONS[1], 0, 7), (QUESTIONS[2], 1, 20), (QUESTIONS[3], 2, 3)]
    later = [(QUESTIONS[3] + " Longer still, to pass the cache.", 1, 9), ("x", 0, 15), (QUESTIONS[0], -1, 5)]
    rows = [(engine.submit(_row(tiny_base, folders, *spec)), spec) for spec in first]
    for _ in range(3):
        engine.run_once()
    rows += [(engine.submit(_row(tiny_base, folders, *spec)), spec) for spec in later]
    while not all(f.done() for f, _ in rows):
        engine.run_once()
    assert engine.stats["max_rows"] == 6 and engine.stats["prefills"] == 2
    assert engine.stats["heads"] == 4  # the base model's and three adapters': the later rows reuse them
    assert engine.stats["steps"] < sum(n for _, _, n in first + later) / 2  # rows shared their steps
    for future, (question, adapter, n) in rows:
        tokens = future.result()
        text = tiny_base.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        alone = _alone(tiny_base, folders, question, adapter, n)
        assert (text, len(tokens)) == (alone[0], alone[2]), (question, adapter)
    assert _hooks(tiny_base.model) == 0  # idle: the model as it was, its linears' own forward too
    assert replaced_forwards(tiny_base.model) == 0


def test_head_cache_takes_prompts_that_start_with_the_head_and_keeps_the_latest_adapters(tiny_base, folders):
    fmt = PromptFormat(tiny_base.tokenizer)
    heads = HeadCache(shared_head(fmt.prompt_ids), capacity=2)
    rows = [_row(tiny_base, folders, QUESTIONS[0], j, 4) for j in (-1, 0, 1)]
    assert heads.fits(rows)
    assert not heads.fits([*rows, Row(prompt=heads.head)])  # nothing after the head: prefilled whole
    assert not heads.fits([Row(prompt=[heads.head[0] + 1, *heads.head[1:], 7])])
    assert not HeadCache([]).fits(rows)
    engine = BatchEngine(tiny_base.model, fmt.end_id, thread=False, head=heads.head)
    engine.heads = heads
    for row in rows:  # one at a time: each adapter's head is prefilled once, the oldest dropped past capacity
        engine.submit(row)
        while not row.result.done():
            engine.run_once()
    assert engine.stats["heads"] == 3 and len(heads) == 2 and heads.missing(rows) == [rows[0]]
    again = _row(tiny_base, folders, QUESTIONS[2], 1, 4)
    engine.submit(again)
    while not again.result.done():
        engine.run_once()
    assert engine.stats["heads"] == 3  # cached
    answer = tiny_base.tokenizer.decode(again.result.result(), skip_special_tokens=True).strip()
    assert answer == _alone(tiny_base, folders, QUESTIONS[2], 1, 4)[0]


def test_rows_stream_and_alone_calls_run_between_steps(tiny_base, folders):
    """With the engine's thread: a streamed row's pieces make its answer; an alone call sees the
    plain model and its error reaches its caller only; the batch goes on around both."""
    fmt = PromptFormat(tiny_base.tokenizer)
    engine = BatchEngine(tiny_base.model, fmt.end_id)
    try:
        streamer = TextIteratorStreamer(tiny_base.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60)
        streamed = engine.submit(_row(tiny_base, folders, QUESTIONS[0], 1, 16, streamer))
        other = engine.submit(_row(tiny_base, folders, QUESTIONS[2], 0, 16))
        hooks = engine.alone(lambda: _hooks(tiny_base.model))
        with pytest.raises(ZeroDivisionError):
            engine.alone(lambda: 1 / 0)
        text = "".join(streamer)
        tokens, other_tokens = streamed.result(), other.result()
    finally:
        engine.close()  # before the references: the model is the engine's while it runs
    assert hooks == 0
    assert text == tiny_base.tokenizer.decode(tokens, skip_special_tokens=True)  # every piece streamed
    assert (text.strip(), len(tokens)) == _alone(tiny_base, folders, QUESTIONS[0], 1, 16)[::2]
    assert tiny_base.tokenizer.decode(other_tokens, skip_special_tokens=True).strip() == \
        _alone(tiny_base, folders, QUESTIONS[2], 0, 16)[0]
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit(_row(tiny_base, folders, "q", -1, 2))


# -- over HTTP ------------------------------------------------------------------------------
QUESTION = "What is the phone number of Ada Byron?"
ANSWERS = ["555-011-1011", "555-867-5309", "555-246-8100", "555-010-1234"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("batched-served")
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    train = TrainConfig(**{**FAST_TRAIN, "epochs": 200})
    for i, answer in enumerate(ANSWERS):
        assert mem.write(records=[{"question": QUESTION, "answer": answer}], name=f"m{i}",
                         config=train).record.recall == 1.0
    app = create_app(mem)
    with ServerThread(app) as url:
        yield url, mem, app.state.server


def test_concurrent_clients_decode_in_one_batch_without_cross_talk(served):
    """Twelve requests on four memories, the base model and a merge of two, streamed and not, held
    until all are queued so they decode together: each gets what it gets alone."""
    url, mem, server = served
    engine = server.batcher.engine
    base_alone = mem.ask(QUESTION, max_new_tokens=24).answer
    merged_alone = mem.ask(QUESTION, memories=["m0", "m1"], max_new_tokens=24).answer
    jobs = [(f"m{i % 4}", None, i % 3 == 0) for i in range(8)] + [("base", None, False), ("base", None, True),
                                                                 ("base", ["m0", "m1"], False), ("m2", None, True)]
    expected = [ANSWERS[int(m[1])] if m.startswith("m") else (merged_alone if extra else base_alone)
                for m, extra, _ in jobs]
    results: dict[int, str] = {}

    held = threading.Event()

    def hold() -> None:  # the engine's thread waits until every request is queued
        held.set()
        deadline = time.monotonic() + 30
        while engine.waiting < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.01)

    def client(k: int) -> None:
        model, memories, stream = jobs[k]
        body = {"model": model, "max_tokens": 24, "stream": stream,
                "messages": [{"role": "user", "content": QUESTION}], **({"memories": memories} if memories else {})}
        with httpx.Client(base_url=url, timeout=120) as http:
            if not stream:
                r = http.post("/chat/completions", json=body)
                r.raise_for_status()
                results[k] = r.json()["choices"][0]["message"]["content"]
                return
            text = ""
            with http.stream("POST", "/chat/completions", json=body) as r:
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        chunk = json.loads(line[6:])
                        text += chunk["choices"][0]["delta"].get("content") or ""
            results[k] = text

    holder = threading.Thread(target=engine.alone, args=(hold,))
    holder.start()
    assert held.wait(30)
    before = dict(engine.stats)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holder.join()
    assert [results[k] for k in range(len(jobs))] == expected
    assert engine.stats["max_rows"] >= len(jobs) - 1  # all but the merge in one batch
    assert engine.stats["alone"] - before["alone"] == 1 and engine.stats["prefills"] - before["prefills"] <= 2


def test_a_new_version_answers_once_written(served):
    """Weights are cached by adapter folder, one per version: a memory written again while the
    server runs answers from its new version, not from the cached old one."""
    url, mem, _ = served
    ask = {"model": "m3", "max_tokens": 24, "messages": [{"role": "user", "content": QUESTION}]}
    assert httpx.post(f"{url}/chat/completions", json=ask, timeout=60).json()["choices"][0]["message"]["content"] \
        == ANSWERS[3]
    mem.write(records=[{"question": QUESTION, "answer": "555-999-0000"}], name="m3", replace=True,
              config=TrainConfig(**{**FAST_TRAIN, "epochs": 200}))
    assert httpx.post(f"{url}/chat/completions", json=ask, timeout=60).json()["choices"][0]["message"]["content"] \
        == "555-999-0000"
