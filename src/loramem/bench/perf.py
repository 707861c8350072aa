"""`loramem bench perf`: loramem's trainer and reader against the usual recipe, in one process.

Throughput counts *content tokens*: the tokens of "question answer" for each example trained
on, the same numerator for both recipes, so chat-template and padding overhead count as cost.
FLOPs are counted by torch's FlopCounterMode on one real training step of loramem's path.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from loramem.adapters import AdapterCache, hooked
from loramem.answering import generate_answer
from loramem.bench import hardware
from loramem.bench.baseline import usual_recipe
from loramem.bench.datasets.phonebook import phonebook
from loramem.bench.rows import qa_rows
from loramem.merges import ties_merge
from loramem.models import load_base
from loramem.prompts import PromptFormat
from loramem.training import TrainConfig, train_memory
from loramem.training.batching import encode, make_batches
from loramem.training.lora_state import attached_lora
from loramem.training.loss import supervised_forward
from loramem.training.precision import training_dtype, training_model

PERF_TARGETS = {  # key: (target, higher is better)
    "train_speedup": (3, True), "mfu": (0.6, True), "write_speedup": (4, True),
    "answer_speedup_vs_icl": (3, True), "activation_share": (0.1, False), "write_peak_rss_bytes": (3 * 2**30, False),
}


def matmul_peak_flops(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                      size: int = 2048, reps: int = 10) -> float:
    """Best of several square matmuls: the practical peak of `device` for `dtype`."""
    device = torch.device(device)
    if device.type == "cuda":
        size = 8192
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best


def content_tokens(tokenizer, examples) -> int:
    return sum(len(tokenizer(f"{e.prompt} {e.target}", add_special_tokens=False)["input_ids"]) for e in examples)


def flops_per_token(base, examples, config: TrainConfig) -> float:
    """Forward + backward FLOPs of loramem's training step, per processed token. Counted on the
    padded batch with its head run once: the FLOPs the step needs (packed, the dense block mask
    would add attention over pairs the mask discards)."""
    fmt = PromptFormat(base.tokenizer)
    batch = make_batches(encode(fmt, examples[: config.batch_size]), config.batch_size, fmt.end_id)[0]
    model = training_model(base, training_dtype(config.precision, base))
    with attached_lora(model, config) as peft_model, FlopCounterMode(display=False) as counter:
        supervised_forward(peft_model.get_base_model(), batch, packed=False).loss.backward()
    return counter.get_total_flops() / batch.n_tokens


def _answer_seconds(base, question: str, reps: int = 3, **kw) -> float:
    generate_answer(base, question, **kw)  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        generate_answer(base, question, **kw)
    return (time.perf_counter() - t) / reps


ACTIVATION_STAGES = ("route", "read", "merge", "hook")  # in the order _activation_seconds runs them


def _activation_seconds(mem, question: str) -> dict[str, float]:
    """Route a question to three memories (hybrid router), read them from disk (cold adapter
    cache), merge them with TIES and activate the result; the seconds of each stage and in all.
    The router's models and index are warm, as they are in a running process."""
    marks = [time.perf_counter()]
    names = [r.name for r in mem.route(question, "auto", top_k=3)]
    marks.append(time.perf_counter())
    cache = AdapterCache()
    param = next(mem.base.model.parameters())
    loaded = [(cache.get(mem.store.adapter_path(mem.store.get(n)), param.device, param.dtype), 1.0) for n in names]
    marks.append(time.perf_counter())
    merged = ties_merge(loaded)
    marks.append(time.perf_counter())
    with hooked(mem.base.model, [(merged, 1.0)]):
        marks.append(time.perf_counter())
    stages = dict(zip(ACTIVATION_STAGES, (b - a for a, b in zip(marks, marks[1:]))))
    return {"total": marks[-1] - marks[0], **stages}


def run_perf(n_train: int = 200, n_write: int = 48, model: str | None = None, device: str | None = None,
             baseline_budget_s: float = 900.0, config: TrainConfig | None = None, log=print) -> dict:
    """Run every measurement and return the results (see the module docstring for the units)."""
    from loramem.api import Memory

    base = load_base(model, device)
    config = config or TrainConfig()
    rank = config.rank
    results: dict = {"model": base.name, "device": str(base.device), "hardware": hardware(base.device), "rank": rank,
                     "precision": str(training_dtype(config.precision, base)).replace("torch.", "")}

    with tempfile.TemporaryDirectory(prefix="loramem-perf-") as tmp:
        tmp = Path(tmp)
        mem = Memory(store=tmp / "store", base=base, progress=False)  # shared: a second copy would inflate the RSS
        # 1. Verified write of a 48-entry PhoneBook (>= 95% read back), loramem first: its peak RSS.
        write_set = phonebook(n_write, seed=1)
        log(f"verified write of {n_write} entries with loramem ...")
        t = time.perf_counter()
        mem.write(records=qa_rows(write_set), name="pb48", config=replace(config, target_recall=0.95))
        results["verified_write_s"] = time.perf_counter() - t
        results["verified_write_recall"] = mem.show("pb48").recall
        results["write_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

        # 2. Training throughput on a 200-entry PhoneBook, one epoch each.
        train_set = phonebook(n_train, seed=2)
        n_content = content_tokens(base.tokenizer, train_set)
        log(f"one epoch over {n_train} entries with loramem ...")
        ours = train_memory(base, train_set, replace(config, epochs=1), tmp / "ours", progress=False)
        log(f"one epoch over {n_train} entries with the usual recipe ...")
        theirs = usual_recipe(base, train_set, rank=rank, max_epochs=1)
        results["train_tokens_per_s"] = n_content / ours.train_seconds
        results["train_tokens_per_s_baseline"] = n_content / theirs.train_seconds
        results["train_speedup"] = theirs.train_seconds / ours.train_seconds
        results["processed_tokens_per_s"] = ours.processed_tokens / ours.train_seconds
        results["processed_tokens_per_s_baseline"] = theirs.processed_tokens / theirs.train_seconds

        # 3. Utilization: counted FLOPs of loramem's step against the measured fp32 matmul peak.
        results["matmul_peak_flops"] = matmul_peak_flops(torch.float32, base.device)
        results["train_flops_per_s"] = flops_per_token(base, train_set, config) * results["processed_tokens_per_s"]
        results["mfu"] = results["train_flops_per_s"] / results["matmul_peak_flops"]
        if results["precision"] == "bfloat16":  # measured only where bf16 is fast: emulated, it takes minutes
            results["matmul_peak_flops_bf16"] = matmul_peak_flops(torch.bfloat16, base.device)
            results["mfu_vs_training_dtype_peak"] = results["train_flops_per_s"] / results["matmul_peak_flops_bf16"]

        # 4. Answer latency: the document (~2K tokens) in context vs. the memory.
        question = write_set[0].prompt
        doc_set = write_set + phonebook(400, seed=3)
        lines, doc = [], ""
        for e in doc_set:
            lines.append(f"{e.prompt} {e.target}")
            doc = "\n".join(lines)
            if len(base.tokenizer(doc)["input_ids"]) >= 2048:
                break
        results["icl_document_tokens"] = len(base.tokenizer(doc)["input_ids"])
        log("answer latency ...")
        adapter = [("pb48", mem.store.adapter_path(mem.show("pb48")))]
        results["answer_s_icl"] = _answer_seconds(base, question, context=doc)
        results["answer_s_memory"] = _answer_seconds(base, question, adapters=adapter)
        results["answer_speedup_vs_icl"] = results["answer_s_icl"] / results["answer_s_memory"]

        # 5. Activation: three memories routed, loaded from disk and merged with TIES.
        for i in (1, 2):
            mem.write(records=qa_rows(phonebook(4, seed=10 + i)), name=f"m{i}", config=replace(config, epochs=1))
        _activation_seconds(mem, question)  # warm-up: loads the embedding model, builds the BM25 index
        timings = [_activation_seconds(mem, question) for _ in range(5)]
        results["activation_s"] = statistics.median(t["total"] for t in timings)
        for stage in ACTIVATION_STAGES:
            results[f"activation_{stage}_s"] = statistics.median(t[stage] for t in timings)
        results["activation_share"] = results["activation_s"] / results["answer_s_memory"]

        # 6. The usual recipe's verified write, last: it is the slowest part.
        log(f"verified write of {n_write} entries with the usual recipe (budget {baseline_budget_s:.0f} s) ...")
        slow = usual_recipe(base, write_set, rank=rank, max_epochs=200, target_recall=0.95, budget_s=baseline_budget_s)
        results["verified_write_s_baseline"] = slow.seconds
        results["verified_write_baseline_reached"] = slow.reached
        results["verified_write_baseline_recall"] = slow.recall
        results["write_speedup"] = slow.seconds / results["verified_write_s"]
    return results
