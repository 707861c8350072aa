"""`loramem bench generator`: the embedded generator's runtime against plain transformers `generate`.

Both run in one process on the same prompts: the QA prompts (every facet of every chunk) that a
write of one document with the seed paper's `qa:40/doc` sends. The chosen path is the full `qa` format through the batched
llama.cpp engine, fresh (no supervision cache): seconds, generated tokens and the QA pairs that
pass the support check. The plain path is the same model loaded by transformers (GGUF
dequantized to fp32), greedy `generate` one prompt at a time, on the first `plain_prompts` of
those prompts (it is slow: the whole set would take many minutes). Throughput for both is
generated tokens per second of wall time, prefill included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _document(data: Path, paper: int) -> tuple[str, str]:
    from loramem.bench.datasets.paperqa import choose_papers

    papers, _ = choose_papers(data, [paper])
    return papers[paper]["title"], papers[paper]["introduction"]


def run_generator_bench(data: Path, paper: int = 1, plain_prompts: int = 2, count: int = 40,
                        log: Callable[[str], None] = print) -> dict:
    """Measure both paths on one PaperQA introduction; returns the JSON object `--json` prints."""
    from loramem.models import load_base
    from loramem.supervision.build import ChunkSettings
    from loramem.supervision.chunking import chunk_text
    from loramem.supervision.formats import FORMATS, parse_format
    from loramem.supervision.formats.base import Part
    from loramem.supervision.formats.qa import round_prompts
    from loramem.supervision.generators import make_generator

    title, text = _document(data, paper)
    base = load_base()  # the default model's tokenizer cuts the chunks, as a write does
    count_tokens = lambda t: len(base.tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    chunking = ChunkSettings()  # a write's defaults
    chunks = chunk_text(text, chunking.max_tokens, chunking.overlap, count_tokens)
    qa = FORMATS.get("qa")()
    n = parse_format(f"qa:{count}/doc").count("qa", count, len(chunks))
    gen = make_generator("embedded", lambda: base)
    engine = gen.engine
    log(f"paper {paper}: {count_tokens(text)} tokens, {len(chunks)} chunks, qa:{n} per chunk; "
        f"llama.cpp with {gen.slots} slots")

    from concurrent.futures import ThreadPoolExecutor

    before = dict(engine.stats)
    start = time.perf_counter()
    with ThreadPoolExecutor(gen.concurrency) as pool:
        made = list(pool.map(lambda c: qa.make(Part(c, len(chunks), title), n, gen, 0), chunks))
    qa_seconds = time.perf_counter() - start
    generated = engine.stats["generated_tokens"] - before["generated_tokens"]
    kept = sum(e.kind == "qa" for m in made for e in m.examples)
    log(f"llama.cpp, batched: {kept} QA pairs kept, {generated} tokens in {qa_seconds:.1f} s")

    prompts = [p for c in chunks for p in round_prompts(title, c.text, n)]  # each chunk's first round
    plain = _plain_generate(gen, prompts[:plain_prompts], log)
    plain_kept = sum(len(_kept_pairs(text_, chunks[0].text)) for text_ in plain["texts"])
    result = {
        "paper": paper, "document_tokens": count_tokens(text), "chunks": len(chunks), "qa_asked": count,
        "qa_per_chunk": n,
        "slots": gen.slots, "runtime": "llama.cpp (llama-cpp-python), continuous batching",
        "qa_seconds": round(qa_seconds, 1), "qa_pairs_kept": kept, "generated_tokens": generated,
        "prompt_tokens_prefilled": engine.stats["prompt_tokens"] - before["prompt_tokens"],
        "prompt_tokens_shared": engine.stats["shared_prompt_tokens"] - before["shared_prompt_tokens"],
        "tokens_per_s": round(generated / qa_seconds, 2),
        "qa_pairs_per_minute": round(kept / qa_seconds * 60, 1),
        "plain_prompts": len(plain["texts"]), "plain_generated_tokens": plain["tokens"],
        "plain_seconds": round(plain["seconds"], 1), "plain_load_seconds": round(plain["load_seconds"], 1),
        "tokens_per_s_plain": round(plain["tokens"] / plain["seconds"], 2),
        "qa_pairs_per_minute_plain": round(plain_kept / plain["seconds"] * 60, 1),
    }
    result["speedup"] = round(result["tokens_per_s"] / result["tokens_per_s_plain"], 2)
    return result


def _kept_pairs(text: str, passage: str) -> list[tuple[str, str]]:
    from loramem.supervision.formats.qa import grounded_answer, parse_pairs

    return [(q, a) for q, a in parse_pairs(text) if grounded_answer(q, a, passage) is not None]


def _plain_generate(gen, prompts: list[str], log: Callable[[str], None]) -> dict:
    """The same GGUF in transformers (fp32), greedy `generate` one prompt at a time, same token ids."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(gen.path)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    load = time.perf_counter() - start
    log(f"transformers: loaded the GGUF (dequantized) in {load:.0f} s")
    texts, tokens, seconds = [], 0, 0.0
    stop = [t for t in range(model.config.vocab_size) if gen.engine.is_eog(t)][:8] or None
    for prompt in prompts:
        ids = torch.tensor([gen.prompt_tokens(prompt)])
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=gen.max_new_tokens,
                                 do_sample=False, eos_token_id=stop, pad_token_id=stop[0] if stop else None)
        seconds += time.perf_counter() - start
        new = out[0, ids.shape[1]:].tolist()
        tokens += len(new)
        texts.append(gen.decode(new))
        log(f"transformers: {len(new)} tokens in {time.perf_counter() - start:.1f} s")
    return {"texts": texts, "tokens": tokens, "seconds": seconds, "load_seconds": load}


def generator_table(r: dict) -> str:
    rows = [("runtime", r["runtime"], "transformers generate, fp32, one prompt at a time"),
            ("prompts", f"all QA prompts of {r['chunks']} chunks", f"first {r['plain_prompts']}"),
            ("generated tokens", r["generated_tokens"], r["plain_generated_tokens"]),
            ("seconds", r["qa_seconds"], r["plain_seconds"]),
            ("generated tokens/s", r["tokens_per_s"], r["tokens_per_s_plain"]),
            ("QA pairs kept per minute", r["qa_pairs_per_minute"], r["qa_pairs_per_minute_plain"])]
    lines = ["| | chosen path | plain path |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"\nspeedup {r['speedup']}x; {r['qa_pairs_kept']} QA pairs kept in {r['qa_seconds']} s "
                 f"for a {r['document_tokens']}-token introduction")
    return "\n".join(lines)
