"""`loramem bench serve`: requests/s and latency of the HTTP server with 1 and with 8 concurrent clients.

Eight memories each hold one PhoneBook entry asked with the same kind of question; client j asks
memory j % 8 its own question over and over. Besides speed, every answer is checked: it must
hold its memory's number (correct) and no other memory's number (cross-talk), so the figure
also shows that concurrent requests never see each other's adapters, though the server decodes
them in one batch (`loramem.serve.batching`). Per round: `rows_per_step`, how many requests
shared a decode step on average; `step_ms`, `prefill_ms` and `rows_per_prefill`, what a decode
step and a prefill cost; `engine_busy`, the share of the round the engine spent in either.
`speedup` is the requests/s of 8 clients over that of 1, `p50_ratio` their median latencies; in
a closed loop (each client waits for its answer) the two are tied: 8 clients at 4x the
throughput wait 2x as long.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from loramem.bench import hardware
from loramem.bench.datasets.phonebook import phonebook
from loramem.bench.rows import qa_rows
from loramem.kernels.few_rows import kernel

MEMORIES = 8


def _prepare(mem, log, config=None) -> list:
    entries = phonebook(MEMORIES, seed=11)
    for i, entry in enumerate(entries):
        name = f"bench-serve-{i}"
        if mem.store.exists(name):
            continue
        log(f"writing memory {name} ({entry.prompt} → {entry.target}) ...")
        mem.write(records=qa_rows([entry]), name=name, config=config)
    return entries


def _round(url: str, entries: list, clients: int, per_client: int) -> dict:
    latencies: list[float] = []
    correct = crossed = 0
    lock = threading.Lock()

    def client(j: int) -> None:
        nonlocal correct, crossed
        i = j % MEMORIES
        with httpx.Client(base_url=url, timeout=600) as http:
            for _ in range(per_client):
                t = time.perf_counter()
                r = http.post("/chat/completions", json={
                    "model": f"bench-serve-{i}", "max_tokens": 24,
                    "messages": [{"role": "user", "content": entries[i].prompt}]})
                elapsed = time.perf_counter() - t
                r.raise_for_status()
                text = r.json()["choices"][0]["message"]["content"]
                with lock:
                    latencies.append(elapsed)
                    correct += entries[i].target in text
                    crossed += any(e.target in text for k, e in enumerate(entries) if k != i)

    threads = [threading.Thread(target=client, args=(j,)) for j in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    n = len(latencies)
    if n != clients * per_client:
        raise RuntimeError(f"only {n} of {clients * per_client} requests succeeded")
    return {"requests": n, "seconds": wall, "requests_per_s": n / wall, "p50_ms": statistics.median(latencies) * 1000,
            "correct": correct / n, "cross_talk": crossed / n}


def run_serve_bench(store: Path | None = None, model: str | None = None, device: str | None = None,
                    per_client: int = 25, config=None, log=print) -> dict:
    """Both rounds on a fresh server; `per_client` requests per memory a round (25: 200 requests each)."""
    from loramem.api import Memory
    from loramem.serve import ServerThread, create_app

    with tempfile.TemporaryDirectory(prefix="loramem-serve-") as tmp:
        mem = Memory(store=store or Path(tmp) / "store", model=model, device=device, progress=False)
        entries = _prepare(mem, log, config)
        app = create_app(mem)
        engine = app.state.server.batcher.engine
        with ServerThread(app) as url:
            _round(url, entries, 1, 1)  # warm-up: adapters into the cache
            results: dict = {"model": mem.base.name, "device": str(mem.base.device),
                             "hardware": hardware(mem.base.device), "memories": MEMORIES,
                             "decode_kernel": kernel() is not None}  # loramem.kernels: built, or torch ops
            for clients in (1, 8):
                log(f"{clients} client(s), {per_client * (MEMORIES // clients)} requests each ...")
                before = dict(engine.stats)
                r = _round(url, entries, clients, per_client * (MEMORIES // clients))
                spent = {k: engine.stats[k] - before[k] for k in ("steps", "rows_stepped", "prefills", "step_s",
                                                                     "prefill_s")}
                r["rows_per_step"] = spent["rows_stepped"] / max(spent["steps"], 1)
                r["step_ms"] = 1000 * spent["step_s"] / max(spent["steps"], 1)
                r["prefill_ms"] = 1000 * spent["prefill_s"] / max(spent["prefills"], 1)
                r["rows_per_prefill"] = r["requests"] / max(spent["prefills"], 1)
                r["engine_busy"] = (spent["step_s"] + spent["prefill_s"]) / r["seconds"]
                results.update({f"{k}_{clients}": v for k, v in r.items()})
    results["speedup"] = results["requests_per_s_8"] / results["requests_per_s_1"]
    results["p50_ratio"] = results["p50_ms_8"] / results["p50_ms_1"]
    return results
