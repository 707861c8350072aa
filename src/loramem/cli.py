"""The `loramem` command line: parse, validate, call the library. Errors print as one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from loramem.bench import TAU
from loramem.errors import LoramemError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Store knowledge in LoRA adapters and read it back.")
out = Console()
err_console = Console(stderr=True)

StoreOpt = typer.Option(None, "--store", help="store folder (default: $LORAMEM_STORE, else a per-user folder)")
ModelOpt = typer.Option(None, "--model", help="base model: folder or hub id (default: embedded SmolLM2-135M-Instruct)")


DeviceOpt = typer.Option(None, "--device", help="cpu | cuda | auto (default: cuda when present)")


def _memory(store: Path | None, model: str | None = None, device: str | None = None):
    from loramem.api import Memory

    return Memory(store=store, model=model, device=device)


FormatOpt = typer.Option("auto", "--format", help="supervision for documents: auto | qa | raw | summary | rewrite | cloze | mixed, "
                         "or a mixture with per-chunk counts such as qa:40,summary:8,rewrite:4,raw")
def _generator_help() -> str:
    from loramem.supervision.generators import GENERATORS

    named = "; ".join(f"{name}: {GENERATORS.get(name).__doc__.strip().rstrip('.').lower()}"
                      for name in GENERATORS.names())
    return (f"who writes QA/summaries/rewrites: {named}; or a .gguf chat model, or an "
            "OpenAI-compatible URL such as http://127.0.0.1:8080/v1")


GeneratorOpt = typer.Option("auto", "--generator", help=_generator_help())
GeneratorModelOpt = typer.Option(None, "--generator-model", help="model name at the generator URL "
                                 "(default: $LORAMEM_GENERATOR_MODEL, else the server's first model)")
GeneratorKeyOpt = typer.Option(None, "--generator-key", help="API key for the generator URL "
                               "(default: $LORAMEM_GENERATOR_KEY, else $OPENAI_API_KEY)")
ChunkOpt = typer.Option(384, "--chunk-tokens", help="documents are cut into chunks of this many tokens (48 overlap)")


def _chunking(chunk_tokens: int):
    from loramem.supervision import ChunkSettings

    if chunk_tokens < 64:
        raise LoramemError(f"--chunk-tokens must be at least 64, got {chunk_tokens}")
    return ChunkSettings(max_tokens=chunk_tokens, overlap=min(48, chunk_tokens // 4))


def _generator_options(model: str | None, key: str | None) -> dict:
    return {k: v for k, v in (("model", model), ("api_key", key)) if v}


@app.command()
def write(
    paths: list[Path] = typer.Argument(..., help=".txt/.md documents or .jsonl/.csv question-answer records"),
    name: str | None = typer.Option(None, "--name", help="memory name (default: the first file's name)"),
    format: str = FormatOpt,
    rank: str = typer.Option("8", "--rank", help="LoRA rank, or auto (from this model's datasheet)"),
    epochs: int = typer.Option(40, "--epochs", help="most passes over the supervision"),
    seed: int = typer.Option(0, "--seed"),
    generator: str = GeneratorOpt,
    generator_model: str | None = GeneratorModelOpt,
    generator_key: str | None = GeneratorKeyOpt,
    objective: str = typer.Option("auto", "--objective", help="auto | answer | next-token | distill (deep context distillation)"),
    distill_hidden: float = typer.Option(0.0, "--distill-hidden", help="weight of the hidden-state distance when distilling"),
    target_modules: str = typer.Option("all-linear", "--target-modules", help="all-linear | ffn | attention"),
    layers: str = typer.Option("all", "--layers", help="all | early | late | indices such as 0-7 or 0,2,4"),
    chunk_tokens: int = ChunkOpt,
    replace: bool = typer.Option(False, "--replace", help="overwrite a memory of the same name"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted write of this name from its checkpoint"),
    collection: str | None = typer.Option(None, "--collection", help="write several memories grouped under this name"),
    split: str = typer.Option("per-document", "--split", help="with --collection: per-document, a number of memories, or auto"),
    lr: float = typer.Option(2e-3, "--lr", help="peak learning rate"),
    precision: str = typer.Option("auto", "--precision", help="training precision: auto | fp32 | bf16"),
    ray: bool = typer.Option(False, "--ray", help="one memory per file, written in parallel as Ray tasks"),
    address: str | None = typer.Option(None, "--address", help="with --ray: the cluster (default: a local Ray)"),
    cpus_per_task: int = typer.Option(1, "--cpus-per-task", help="with --ray: CPUs (and torch threads) per write"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Write documents or fact tables into a new memory, verified by read-back."""
    from loramem.training import TrainConfig

    if rank != "auto" and not rank.lstrip("-").isdigit():
        raise LoramemError(f"rank must be a positive integer or auto, got {rank!r}")
    config = TrainConfig(rank=8 if rank == "auto" else int(rank), epochs=epochs, seed=seed, lr=lr, precision=precision,
                         objective=objective, distill_hidden=distill_hidden, target_modules=target_modules, layers=layers)
    args = dict(replace=replace, format=format, generator=generator, config=config, resume=resume,
                rank="auto" if rank == "auto" else None, chunking=_chunking(chunk_tokens),
                generator_options=_generator_options(generator_model, generator_key))
    if ray:
        _write_with_ray(paths, name, collection, split, address, cpus_per_task, store, model, device, args)
        return
    mem = _memory(store, model, device)
    if collection:
        if name:
            raise LoramemError("--name and --collection do not go together: memories of a collection are named after it")
        for result in mem.write_collection(paths, collection, split, **args):
            _print_write(result)
        return
    _print_write(mem.write(paths, name=name, **args))


def _write_with_ray(paths, name, collection, split, address, cpus_per_task, store, model, device, args) -> None:
    from rich.progress import Progress

    from loramem.scale import write_with_ray
    from loramem.store import default_store_path

    if name or split != "per-document":
        raise LoramemError("--ray writes one memory per file, named after it: drop --name and --split")
    with Progress(console=err_console, transient=True) as bar:
        job = bar.add_task("writing with Ray", total=len(paths))
        result = write_with_ray(store or default_store_path(), paths, model, device, address, collection,
                                cpus_per_task, progress=lambda done, total, _n: bar.update(job, completed=done), **args)
    for entry in sorted(result.written, key=lambda e: e["name"]):
        out.print(f"wrote {entry['name']}: {entry['examples']} examples, rank {entry['rank']}, "
                  f"recall {entry['recall']:.1%}")
    for failed, error in sorted(result.failed.items()):
        err_console.print(f"failed {failed}: {error}", markup=False, highlight=False)
    if result.failed:
        raise typer.Exit(1)


def _print_write(result) -> None:
    for note in result.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if result.generator:
        err_console.print(f"supervision written by {result.generator}", markup=False, highlight=False)
    r = result.record
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.kinds.items()))
    resumed = f" (resumed after epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
    out.print(f"wrote {r.name}: {r.examples} examples ({kinds}), {r.tokens} tokens, rank {r.rank}, "
              f"{r.parameters:,} parameters, {result.epochs} epochs{resumed}, {result.seconds:.1f} s")
    out.print(f"read-back recall: {r.recall:.1%}")


@app.command()
def synth(
    paths: list[Path] = typer.Argument(..., help=".txt/.md documents or .jsonl/.csv records"),
    format: str = FormatOpt,
    generator: str = GeneratorOpt,
    generator_model: str | None = GeneratorModelOpt,
    generator_key: str | None = GeneratorKeyOpt,
    chunk_tokens: int = ChunkOpt,
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line: kind, prompt, target, chunk"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Print the supervision a write would train on, without training."""
    sup = _memory(store, model, device).supervision(
        paths, format=format, generator=generator, seed=seed, chunking=_chunking(chunk_tokens),
        generator_options=_generator_options(generator_model, generator_key),
    )
    for note in sup.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if sup.generator:
        err_console.print(f"supervision written by {sup.generator}", markup=False, highlight=False)
    for ex in sup.examples:
        if as_json:
            print(json.dumps({"kind": ex.kind, "prompt": ex.prompt, "target": ex.target, "chunk": ex.chunk}))
        else:
            print(f"[{ex.kind}] {ex.prompt}\n    → {ex.target}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(sup.kinds.items()))
    err_console.print(f"{len(sup.examples)} examples ({kinds})")


@app.command()
def ask(
    question: str = typer.Argument(..., help="the question"),
    memory: list[str] = typer.Option([], "--memory", "-m", help="memory to use (repeatable)"),
    mode: str | None = typer.Option(None, "--mode", help="parametric | icl | rag | parametric+icl | parametric+rag | kv | "
                                       "base (default: parametric with a memory)"),
    rag_top_k: int | None = typer.Option(None, "--rag-top-k", help="rag modes: passages put in context (default 3)"),
    retriever: str | None = typer.Option(None, "--retriever", help="rag modes: bm25 (default) | embedding"),
    press: str | None = typer.Option(None, "--press", help="kv: kvpress press (default expected_attention; also "
                                        "snapkv, knorm, streaming_llm, random, compactor, tova, observed_attention)"),
    compression: float | None = typer.Option(None, "--compression", help="kv: fraction of the document's KV pairs "
                                                "evicted, 0-1 (default 0.5; 1 = no document)"),
    adapter_phase: str | None = typer.Option(None, "--adapter-phase", help="kv: prefill+decode (default) | decode | none"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    route: str | None = typer.Option(None, "--route", help="pick memories by auto | embedding | bm25 | hybrid"),
    collection: str | None = typer.Option(None, "--collection", help="route only among this collection's memories"),
    top_k: int = typer.Option(1, "--top-k", help="how many routed memories to activate"),
    merge: str = typer.Option("sum", "--merge", help="how several memories combine: sum (exact) | cat | linear | ties | "
                              "dare_linear | dare_ties | svd"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Answer a question with the named memories."""
    options = {k: v for k, v in dict(rag_top_k=rag_top_k, retriever=retriever, press=press, compression=compression,
                                     adapter_phase=adapter_phase).items() if v is not None}
    answer = _memory(store, model, device).ask(question, memories=memory, mode=mode, max_new_tokens=max_new_tokens,
                                               route=route, top_k=top_k, merge=merge, collection=collection,
                                               mode_options=options)
    if answer.kv and not as_json:
        kv = answer.kv
        err_console.print(f"kv cache: {kv['kept_tokens']} of {kv['document_tokens']} document tokens kept, "
                          f"{kv['cache_bytes'] / 2**20:.1f} MiB")
    if as_json:
        print(json.dumps(answer.to_dict()))
    else:
        out.print(answer.answer, markup=False, highlight=False)


@app.command("ls")
def list_memories(as_json: bool = typer.Option(False, "--json"), store: Path | None = StoreOpt) -> None:
    """List the memories in the store."""
    records = _memory(store).list()
    if as_json:
        print(json.dumps([r.summary() for r in records]))
        return
    table = Table()
    for col in ("name", "collection", "sources", "rank", "examples", "params", "recall", "created"):
        table.add_column(col)
    for r in records:
        table.add_row(r.name, r.collection, ", ".join(r.sources), str(r.rank), str(r.examples), f"{r.parameters:,}",
                      f"{r.recall:.0%}", r.created)
    out.print(table if records else "no memories")


@app.command()
def show(name: str, store: Path | None = StoreOpt) -> None:
    """Show everything the catalogue holds about one memory."""
    mem = _memory(store)
    record = mem.show(name)
    placement = record.config.get("placement", {"target_modules": record.config.get("target_modules"), "layers": "all"})
    print(json.dumps({**record.summary(), "placement": placement, "path": str(mem.store.adapter_path(record))}, indent=2))


@app.command()
def rm(name: str, store: Path | None = StoreOpt) -> None:
    """Remove a memory and its adapter folder."""
    _memory(store).forget(name)
    out.print(f"removed {name}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (default: loopback only)"),
    port: int = typer.Option(8000, "--port"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="LORAMEM_API_KEY",
                                          help="every request must send Authorization: Bearer KEY"),
    max_upload_mb: float = typer.Option(16, "--max-upload-mb", help="largest request body accepted"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Serve the store behind an OpenAI-compatible API; `"model": "<memory>"` picks a memory."""
    from loramem.serve import serve as run

    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        err_console.print(f"warning: serving on {host} with no --api-key: anyone who reaches it can read and write "
                          "memories")
    mem = _memory(store, model, device)
    err_console.print(f"loramem: {mem.base.name} with {mem.store.count()} memories from {mem.store.path}; "
                      f"OpenAI base URL http://{host}:{port}/v1")
    run(mem, host=host, port=port, api_key=api_key, max_upload_bytes=int(max_upload_mb * 2**20))


@app.command()
def demo(store: Path | None = typer.Option(None, "--store", help="keep the demo memory here (default: a temporary folder)"),
         model: str | None = ModelOpt) -> None:
    """Write a small table of invented facts and ask it back, with and without the memory."""
    from loramem.demo import run_demo

    run_demo(store=store, model=model, console=out)


export_app = typer.Typer(help="Export memories for other serving engines.")
app.add_typer(export_app, name="export")


@export_app.command("vllm")
def export_vllm(
    out_dir: Path = typer.Argument(..., help="folder to write one adapter folder per memory into"),
    memory: list[str] = typer.Option([], "--memory", "-m", help="memory to export (repeatable; default: all)"),
    collection: str | None = typer.Option(None, "--collection", help="export this collection's memories"),
    store: Path | None = StoreOpt,
) -> None:
    """Write vLLM-ready LoRA folders and print the `vllm serve` command that loads them."""
    from loramem.export import export_vllm as run

    result = run(_memory(store).store, out_dir, memory or None, collection)
    err_console.print(f"exported {len(result.folders)} memories to {out_dir}")
    print(result.command)


bench_app = typer.Typer(help="Benchmarks: measure and print numbers (a table, and JSON with --out).")
app.add_typer(bench_app, name="bench")

@bench_app.command("perf")
def bench_perf(
    out_file: Path | None = typer.Option(None, "--out", help="write the results as JSON here"),
    device: str | None = DeviceOpt,
    rank: int = typer.Option(8, "--rank"),
    baseline_budget: float = typer.Option(900.0, "--baseline-budget", help="seconds the usual recipe gets to verify its write"),
    quick: bool = typer.Option(False, "--quick", help="small sizes (40 / 12 entries, 120 s budget): a smoke run, not the benchmark"),
    model: str | None = ModelOpt,
) -> None:
    """Training throughput, MFU, time to a verified write and answer latency vs. the usual recipe."""
    from loramem.bench.perf import PERF_TARGETS, run_perf

    sizes = dict(n_train=40, n_write=12, baseline_budget_s=min(baseline_budget, 120)) if quick else dict(baseline_budget_s=baseline_budget)
    from loramem.training import TrainConfig

    results = run_perf(config=TrainConfig(rank=rank), model=model, device=device, log=lambda m: err_console.print(m), **sizes)
    table = Table(title="loramem bench perf")
    for col in ("metric", "value", "target"):
        table.add_column(col)
    for key, value in results.items():
        target = PERF_TARGETS.get(key)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        mark = ""
        if target:
            ok = value >= target[0] if target[1] else value <= target[0]
            mark = ("[green]met " if ok else "[red]missed ") + ("≥ " if target[1] else "≤ ") + f"{target[0]:.4g}"
        table.add_row(key, shown, mark)
    out.print(table)
    if out_file:
        out_file.write_text(json.dumps(results, indent=2))
        out.print(f"wrote {out_file}")


def _emit_json(results: dict, out_file: Path | None, as_json: bool) -> bool:
    """Write `results` to --out, print them with --json; True when nothing else should be printed."""
    if out_file:
        out_file.write_text(json.dumps(results, indent=2))
    if as_json:
        print(json.dumps(results))
    return as_json


@bench_app.command("route")
def bench_route(
    memories: int = typer.Option(100_000, "--memories", help="catalogue size"),
    top_k: int = typer.Option(5, "--top-k"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    out_file: Path | None = typer.Option(None, "--out", help="write the results as JSON here"),
) -> None:
    """Catalogue open time and top-k routing latency (p50/p99) over N memories."""
    from loramem.bench.route import ROUTE_TARGETS, run_route_bench

    results = run_route_bench(memories, top_k, log=lambda m: err_console.print(m, markup=False))
    if _emit_json(results, out_file, as_json):
        return
    table = Table(title="loramem bench route")
    for col in ("metric", "value", "target"):
        table.add_column(col)
    for key, value in results.items():
        target = ROUTE_TARGETS.get(key)
        mark = "" if not target else (("[green]met" if value <= target[0] else "[red]missed") + f" ≤ {target[0]:g}")
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value), mark)
    out.print(table)


@bench_app.command("routers")
def bench_routers(
    files: list[Path] = typer.Argument(..., help="one partition per file (.csv / .jsonl records), e.g. the 16 sectors of the 128K PhoneBook"),
    router: str = typer.Option("embedding,bm25,hybrid", "--router", help="routers, comma-separated"),
    top_k: str = typer.Option("1,3", "--top-k", help="k values, comma-separated"),
    per_partition: int | None = typer.Option(None, "--per-partition", help="questions per partition, evenly spread (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    out_file: Path | None = typer.Option(None, "--out", help="write the results as JSON here"),
) -> None:
    """Router accuracy: how often each router puts a question's own partition in its top k."""
    from loramem.bench.routers import run_router_accuracy
    from loramem.routing import ROUTERS

    try:
        ks = sorted({int(k) for k in top_k.split(",")})
    except ValueError:
        raise LoramemError(f"--top-k takes whole numbers such as 1,3; got {top_k!r}") from None
    if ks[0] < 1:
        raise LoramemError(f"--top-k values must be at least 1; got {top_k!r}")
    names = [r.strip() for r in router.split(",") if r.strip()]
    for name in names:
        ROUTERS.get(name)
    results = run_router_accuracy(files, names, ks, per_partition, log=lambda m: err_console.print(m, markup=False))
    if _emit_json(results, out_file, as_json):
        return
    table = Table(title=f"router accuracy: {results['partitions']} partitions, {results['questions']:,} questions")
    for col in ("router", *[f"hit@{k}" for k in ks], "p50 ms"):
        table.add_column(col)
    for name, r in results["routers"].items():
        table.add_row(name, *[f"{r[f'hit@{k}']:.1%}" for k in ks], f"{r['p50_ms']:.1f}")
    out.print(table)


@bench_app.command("partitions")
def bench_partitions(
    files: list[Path] = typer.Argument(..., help="one partition per file (.csv / .jsonl records)"),
    out_dir: Path = typer.Option(..., "--out", help="results folder (rerun to resume)"),
    entries: int = typer.Option(24, "--entries", help="records taken from the start of each partition"),
    rank: int = typer.Option(4, "--rank", help="rank of each small memory (the large one: rank x partitions)"),
    epochs: int = typer.Option(60, "--epochs", help="upper bound; writes stop once their records read back"),
    questions: int | None = typer.Option(None, "--questions", help="questions per partition, evenly spread (default: all)"),
    merge: str = typer.Option("sum,linear,ties,dare_ties,svd", "--merge", help="merge methods, comma-separated"),
    top_k: int = typer.Option(3, "--top-k", help="memories the router merges"),
    max_merge: int = typer.Option(4, "--max-merge", help="largest N of own memory + N-1 others"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """One large memory vs one per partition under the same parameters; routers vs the oracle; merges."""
    from loramem.answering import check_merge
    from loramem.bench.partitions import ROUTERS, run_partitions

    merges = [check_merge(m.strip()) for m in merge.split(",") if m.strip()]
    report = run_partitions(files, out_dir, entries, rank, epochs, questions, ROUTERS, merges, top_k, max_merge,
                            model, device, log=lambda m: err_console.print(m, markup=False))
    print(report.read_text())
    out.print(f"wrote {report}")


@bench_app.command("serve")
def bench_serve(
    requests: int = typer.Option(4, "--requests", help="requests per memory in each round"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    out_file: Path | None = typer.Option(None, "--out", help="write the results as JSON here"),
    store: Path | None = typer.Option(None, "--store", help="keep the 8 benchmark memories here (default: temporary)"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Requests/s and p50 latency of `loramem serve` with 1 and with 8 concurrent clients on 8 memories."""
    from loramem.bench.serve import run_serve_bench

    results = run_serve_bench(store, model, device, per_client=requests, log=lambda m: err_console.print(m))
    if _emit_json(results, out_file, as_json):
        return
    table = Table(title="loramem bench serve")
    for col in ("clients", "requests", "requests/s", "p50 ms", "correct", "cross-talk"):
        table.add_column(col)
    for c in (1, 8):
        table.add_row(str(c), str(results[f"requests_{c}"]), f"{results[f'requests_per_s_{c}']:.2f}",
                      f"{results[f'p50_ms_{c}']:.0f}", f"{results[f'correct_{c}']:.0%}", f"{results[f'cross_talk_{c}']:.0%}")
    out.print(table)


def _judge(wanted: bool, url: str | None):
    if not (wanted or url):
        return None
    from loramem.bench.judge import Judge

    return Judge(url=url)


@bench_app.command("formats")
def bench_formats(
    data: Path = typer.Option(..., "--data", help="PaperQA JSON (a list of papers with title, introduction, QA)"),
    out_dir: Path = typer.Option(..., "--out", help="results folder (rerun to resume)"),
    format: list[str] = typer.Option(["raw", "qa", "mixed"], "--format", help="format to compare (repeatable)"),
    papers: str | None = typer.Option(None, "--papers", help="paper indices such as 0-2 or 0,4 (default: all)"),
    rank: int = typer.Option(8, "--rank"),
    epochs: int = typer.Option(20, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
    generator: str = GeneratorOpt,
    generator_model: str | None = GeneratorModelOpt,
    generator_key: str | None = GeneratorKeyOpt,
    judge: bool = typer.Option(False, "--judge", help="also grade every answer with the rubric judge (offline: the "
                               "embedded generator, or --judge-url)"),
    judge_url: str | None = typer.Option(None, "--judge-url", help="an OpenAI-compatible URL for the judge"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Closed-book ROUGE-L (and the rubric judge) on PaperQA questions for memories written with each format."""
    from loramem.bench.formats import run_format_comparison, summary_markdown
    from loramem.training import TrainConfig
    from loramem.training.config import parse_indices

    chosen = parse_indices(papers, "papers") if papers else None
    summary = run_format_comparison(data, out_dir, format, chosen, TrainConfig(rank=rank, epochs=epochs, seed=seed),
                                    model=model, device=device, generator=generator,
                                    generator_options=_generator_options(generator_model, generator_key),
                                    log=lambda m: err_console.print(m, markup=False), judge=_judge(judge, judge_url))
    print(summary_markdown(summary))
    out.print(f"wrote {out_dir / 'summary.md'}, {out_dir / 'summary.json'} and {out_dir / 'results.jsonl'}")


@bench_app.command("generator")
def bench_generator(
    data: Path = typer.Option(..., "--data", help="PaperQA JSON (a list of papers with title, introduction, QA)"),
    paper: int = typer.Option(1, "--paper", help="which paper's introduction (default 1: about 1,000 tokens in the dev set)"),
    plain_prompts: int = typer.Option(2, "--plain-prompts", help="prompts for the slow plain transformers path"),
    count: int | None = typer.Option(None, "--count", help="QA pairs per chunk (default: the qa format's)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """The embedded generator (llama.cpp, batched) against plain transformers generate, on the same prompts."""
    from loramem.bench.generator import generator_table, run_generator_bench

    result = run_generator_bench(data, paper, plain_prompts, count, log=lambda m: err_console.print(m, markup=False))
    print(json.dumps(result) if as_json else generator_table(result))


@bench_app.command("kv")
def bench_kv(
    data: Path = typer.Option(..., "--data", help="PaperQA JSON (a list of papers with title, introduction, QA)"),
    out_dir: Path = typer.Option(..., "--out", help="results folder (rerun to resume; share it with bench formats "
                                 "to reuse the papers' memories)"),
    papers: str | None = typer.Option(None, "--papers", help="paper indices such as 0-2 or 0,4 (default: all)"),
    rho: str = typer.Option("0,0.5,0.8,0.9,0.95,0.99,1", "--rho", help="compression values, comma-separated"),
    press: str = typer.Option("expected_attention,knorm", "--press", help="kvpress presses, comma-separated"),
    format: str = typer.Option("qa,raw", "--format", help="supervision formats of the memories, comma-separated"),
    questions: int | None = typer.Option(None, "--questions", help="at most this many questions per paper, evenly spread over the levels"),
    epochs: int = typer.Option(20, "--epochs"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """ROUGE-L vs KV compression with the adapter on in prefill+decode, decode or not at all; and the hybrids."""
    from loramem.bench.kv import run_kv_study
    from loramem.training import TrainConfig
    from loramem.training.config import parse_indices

    try:
        rhos = [float(x) for x in rho.split(",")]
    except ValueError:
        raise LoramemError(f"--rho takes numbers such as 0,0.5,1; got {rho!r}") from None
    report = run_kv_study(data, out_dir, parse_indices(papers, "papers") if papers else None, rhos,
                          [p.strip() for p in press.split(",")], [f.strip() for f in format.split(",")], questions,
                          TrainConfig(epochs=epochs), model, device, log=lambda m: err_console.print(m, markup=False))
    print(report.read_text())
    out.print(f"wrote {report}")


@app.command()
def datasheet(
    out_dir: Path | None = typer.Option(None, "--out", help="folder for datasheet.md/json and the plot (default: ./datasheet)"),
    quick: bool = typer.Option(False, "--quick", help="ranks 1 and 4, 16 to 64 entries, 25 epochs: under 20 minutes on 2 cores"),
    ranks: str | None = typer.Option(None, "--ranks", help="ranks to measure, e.g. 1,2,4,8,16"),
    tau: float = typer.Option(TAU, "--tau", help="read-back recall an entry count must reach to count as stored"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Measure this base model's LoRA memory capacity per rank and write its datasheet."""
    from loramem.bench.datasheet import measure, saved_path, summarize, write_datasheet
    from loramem.models import load_base
    from loramem.training import TrainConfig
    from loramem.training.config import parse_indices

    chosen = parse_indices(ranks, "ranks") if ranks else ([1, 4] if quick else [1, 2, 4, 8, 16, 32])
    base = load_base(model, device)
    probes = measure(base, chosen, tau=tau, start=16 if quick else 8, max_entries=64 if quick else 1024,
                     config=TrainConfig(epochs=25 if quick else 40), log=lambda m: err_console.print(m, markup=False))
    sheet = summarize(probes, tau, base.name)
    md = write_datasheet(sheet, out_dir or Path("datasheet"))
    saved = saved_path(base.fingerprint)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(sheet, indent=2))
    print(md.read_text())
    out.print(f"wrote {md} (and {saved}, used by write --rank auto)")


@bench_app.command("run")
def bench_run(
    config: Path = typer.Argument(..., help="experiment YAML (see loramem.bench.experiment)"),
    out_dir: Path = typer.Option(..., "--out", help="results folder (rerun to resume)"),
    only: list[str] = typer.Option([], "--only", help="run only these cells, e.g. --only size=2K --only rank=1,2 "
                                   "(keys: size, rank, format, objective, seed)"),
) -> None:
    """Run an experiment grid from YAML, appending one JSONL row per run; resumes where it stopped."""
    from loramem.bench.experiment import ExperimentConfig, parse_only, run_experiment
    from loramem.bench.report import write_report

    results = run_experiment(ExperimentConfig.load(config), out_dir, only=parse_only(only),
                             log=lambda m: err_console.print(m, markup=False))
    out.print(f"results in {results}; report in {write_report(out_dir)}")


@bench_app.command("report")
def bench_report(folder: Path = typer.Argument(..., help="an experiment's output folder")) -> None:
    """Markdown tables and PNG plots from an experiment's results."""
    from loramem.bench.report import write_report

    out.print(f"wrote {write_report(folder)}")


def main() -> None:
    try:
        app()
    except LoramemError as e:
        print(f"error: {e}", file=sys.stderr)  # one line, never wrapped
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
