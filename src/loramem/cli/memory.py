"""The user's commands: write, inspect, ask, serve and export memories, and the model's datasheet."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from loramem.bench import TAU
from loramem.bench.datasheet_run import QUICK
from loramem.cli.lazy import LoramemGroup
from loramem.cli.options import (
    ChunkOpt,
    DeviceOpt,
    FormatOpt,
    GeneratorKeyOpt,
    GeneratorModelOpt,
    GeneratorOpt,
    JsonOpt,
    ModelOpt,
    StoreOpt,
    ask_served,
    choices,
    chunking,
    err_console,
    generator_options,
    input_limits,
    limit_option,
    log,
    merge_names,
    mode_names,
    open_memory,
    open_store,
    out,
    route_names,
    train_option,
    with_mode_options,
)
from loramem.errors import LoramemError
from loramem.handoff import KEY_ENV
from loramem.options import user_option
from loramem.routing import AUTO
from loramem.routing.abstention import ABSTAIN
from loramem.scope import SCOPE
from loramem.training import TrainConfig
from loramem.training.config import DEFAULT_BATCH_MEMORIES, parse_rank
from loramem.updates import DEFAULT_UPDATE, UPDATES

app = typer.Typer(cls=LoramemGroup, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Store knowledge in LoRA adapters and read it back.")


@app.command()
def write(
    paths: list[Path] = typer.Argument(..., help=".txt/.md documents or .jsonl/.csv question-answer records"),
    name: str | None = typer.Option(None, "--name", help="memory name (default: the first file's name)"),
    format: str = FormatOpt,
    rank: str = typer.Option(str(user_option(TrainConfig, "rank").default), "--rank",
                             help="LoRA rank, or auto (from this model's datasheet)"),
    variant: str = train_option("variant"),
    epochs: int = train_option("epochs"),
    patience: int | None = train_option("patience"),
    seed: int = train_option("seed"),
    generator: str = GeneratorOpt,
    generator_model: str | None = GeneratorModelOpt,
    generator_key: str | None = GeneratorKeyOpt,
    objective: str = train_option("objective"),
    distill_hidden: float = train_option("distill_hidden"),
    target_modules: str = train_option("target_modules"),
    layers: str = train_option("layers"),
    anchors: int = train_option("anchors"),
    chunk_tokens: int = ChunkOpt,
    max_record_tokens: int = limit_option("max_record_tokens"),
    max_document_tokens: int = limit_option("max_document_tokens"),
    replace: bool = typer.Option(False, "--replace", help="overwrite a memory of the same name"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted write of this name from its checkpoint"),
    collection: str | None = typer.Option(None, "--collection", help="write several memories grouped under this name"),
    split: str = typer.Option("per-document", "--split", help="with --collection: per-document, a number of memories, or auto"),
    batch_memories: int = typer.Option(DEFAULT_BATCH_MEMORIES, "--batch-memories",
                                       help="with --collection: memories trained together in one batch, each as if "
                                       "alone (1: one after another)"),
    lr: float = train_option("lr"),
    precision: str = train_option("precision"),
    ray: bool = typer.Option(False, "--ray", help="one memory per file, written in parallel as Ray tasks"),
    address: str | None = typer.Option(None, "--address", help="with --ray: the cluster (default: a local Ray)"),
    cpus_per_task: int = typer.Option(1, "--cpus-per-task", help="with --ray: CPUs (and torch threads) per write"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Write documents or fact tables into a new memory, verified by read-back."""
    rank = parse_rank(rank)
    config = TrainConfig(**({} if rank == "auto" else {"rank": rank}), variant=variant, epochs=epochs, patience=patience,
                         seed=seed, lr=lr, precision=precision, objective=objective, distill_hidden=distill_hidden,
                         target_modules=target_modules, layers=layers, anchors=anchors)
    args = dict(replace=replace, format=format, generator=generator, config=config, resume=resume,
                rank=rank if rank == "auto" else None, chunking=chunking(chunk_tokens),
                generator_options=generator_options(generator_model, generator_key),
                limits=input_limits(max_record_tokens, max_document_tokens))
    if ray:
        _write_with_ray(paths, name, collection, split, address, cpus_per_task, store, model, device, args)
        return
    mem = open_memory(store, model, device)
    if collection is not None:
        if name is not None:
            raise LoramemError("--name and --collection do not go together: memories of a collection are named after it")
        for result in mem.write_collection(paths, collection, split, batch_memories=batch_memories, **args):
            _print_write(result)
        return
    _print_write(mem.write(paths, name=name, **args))


def _write_with_ray(paths, name, collection, split, address, cpus_per_task, store, model, device, args) -> None:
    from rich.progress import Progress

    from loramem.scale import write_with_ray
    from loramem.store import default_store_path

    if name is not None or split != "per-document":
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


def _print_notes(notes: list[str], generator: str | None) -> None:
    for note in notes:
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if generator:
        err_console.print(f"supervision written by {generator}", markup=False, highlight=False)


def _print_write(result) -> None:
    _print_notes(result.notes, result.generator)
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
    max_record_tokens: int = limit_option("max_record_tokens"),
    max_document_tokens: int = limit_option("max_document_tokens"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line: kind, prompt, target, chunk"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Print the supervision a write would train on, without training."""
    sup = open_memory(store, model, device).supervision(
        paths, format=format, generator=generator, seed=seed, chunking=chunking(chunk_tokens),
        generator_options=generator_options(generator_model, generator_key),
        limits=input_limits(max_record_tokens, max_document_tokens),
    )
    _print_notes(sup.notes, sup.generator)
    for ex in sup.examples:
        if as_json:
            print(json.dumps({"kind": ex.kind, "prompt": ex.prompt, "target": ex.target, "chunk": ex.chunk}))
        else:
            print(f"[{ex.kind}] {ex.prompt}\n    → {ex.target}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(sup.kinds.items()))
    err_console.print(f"{len(sup.examples)} examples ({kinds})")


@app.command()
@with_mode_options(after="mode")
def ask(
    question: str = typer.Argument(..., help="the question"),
    memory: list[str] = typer.Option([], "--memory", "-m", help="memory to use (repeatable)"),
    mode: str | None = typer.Option(None, "--mode", help=f"{choices(mode_names())} (default: parametric with a memory)"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    route: str | None = typer.Option(None, "--route", help=f"pick memories by {choices(route_names())} "
                                     f"(auto: {AUTO})"),
    collection: str | None = typer.Option(None, "--collection", help="route only among this collection's memories"),
    top_k: int = typer.Option(1, "--top-k", help="how many routed memories to activate"),
    merge: str = typer.Option("sum", "--merge", help=f"how several memories combine: {choices(merge_names())} "
                              "(sum: the exact sum of their deltas)"),
    scope: float = typer.Option(SCOPE, "--scope", min=0.0, max=1.0,
                                help="the cosine a question needs to a fact-table memory's nearest record for its "
                                "adapter to answer (0: always)"),
    abstain: str = typer.Option("base", "--abstain", help=f"a routed question no memory holds is answered by: "
                                f"{choices(ABSTAIN)} (base: the base model; rag: rag over the routed collection's "
                                "documents; never: the top route all the same)"),
    as_json: bool = JsonOpt,
    no_server: bool = typer.Option(False, "--no-server", help="answer in this process even when a `loramem serve` "
                                   "runs on the store (by default it answers, in its own time)"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
    **mode_options,
) -> None:
    """Answer a question with the named memories."""
    args = dict(question=question, memories=memory, mode=mode, max_new_tokens=max_new_tokens, route=route, top_k=top_k,
                merge=merge, collection=collection, mode_options={k: v for k, v in mode_options.items() if v is not None},
                scope=scope, abstain=abstain)
    answer = None if no_server or device is not None else ask_served(store, model, args)
    if answer is None:
        answer = open_memory(store, model, device).ask(**args).to_dict()
    for held in [] if as_json else answer["out_of_scope"]:  # --json carries them in its object
        err_console.print(f"memory {held['name']!r}: the question is outside its scope (nearest record "
                          f"{held['score']:.2f} < {scope:.2f}); the base model answers")
    if answer["abstained"] and not as_json:
        best = answer["routes"][0] if answer["routes"] else None
        err_console.print(f"no memory holds this question (best route {best['name']!r}, score {best['score']:.2f}): "
                          f"answered by {'rag over the collection' if answer['mode'] == 'rag' else 'the base model'}"
                          if best else "no memory holds this question: answered without one")
    if answer["kv"] and not as_json:
        kv = answer["kv"]
        err_console.print(f"kv cache: {kv['kept_tokens']} of {kv['document_tokens']} document tokens kept, "
                          f"{kv['cache_bytes'] / 2**20:.1f} MiB")
    if as_json:
        print(json.dumps(answer))
    else:
        out.print(answer["answer"], markup=False, highlight=False)


@app.command("ls")
def list_memories(as_json: bool = typer.Option(False, "--json"), store: Path | None = StoreOpt) -> None:
    """List the memories in the store."""
    records = open_store(store).list()
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
    catalogue = open_store(store)
    record = catalogue.get(name)
    placement = record.config.get("placement", {"target_modules": record.config.get("target_modules"), "layers": "all"})
    print(json.dumps({**record.summary(), "placement": placement, "path": str(catalogue.adapter_path(record))}, indent=2))


@app.command()
def rm(name: str, store: Path | None = StoreOpt) -> None:
    """Remove a memory with all its versions and their adapter folders."""
    open_store(store).remove(name)
    out.print(f"removed {name}")


@app.command()
def update(
    name: str = typer.Argument(..., help="the memory to change"),
    paths: list[Path] = typer.Argument(None, help="records to add or supersede, documents to add or revise"),
    remove: list[Path] = typer.Option([], "--remove", help="a records file whose questions go, or the name of a "
                                      "document to remove (repeatable)"),
    method: str = typer.Option(DEFAULT_UPDATE, "--method", help=f"{choices(UPDATES.names())}"),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="epoch limit of each training round "
                                      "(default: the memory's own)"),
    accept_below_target: bool = typer.Option(False, "--accept-below-target", help="commit and make current a "
                                             "next version that reads back less than the memory's target "
                                             "(refused by default, the current version staying)"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Change a memory into its next version: add, supersede or remove knowledge, verified by read-back.

    A next version that does not read back the memory's target (every record of a fact table) is not
    committed: the current version stays, and the error says how far it got."""
    mem = open_memory(store, model, device)
    result = mem.update(name, paths or [], remove=remove, method=method, epochs=epochs,
                        accept_below_target=accept_below_target)
    _print_notes(result.notes, result.generator)
    r = result.record
    changed = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in result.change.items())
    out.print(f"updated {r.name} to version {r.version} (from {result.previous}) by {result.method}: {changed}; "
              f"{result.epochs} epochs, {result.seconds:.1f} s")
    out.print(f"read-back recall: {result.recall:.1%} (target {result.target:.0%}); superseded answers still produced: "
              f"{result.superseded_still:.0%}; removed answers still produced: {result.removed_still:.0%}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (default: loopback only)"),
    port: int = typer.Option(8000, "--port"),
    api_key: str | None = typer.Option(None, "--api-key", envvar=KEY_ENV,
                                       help="every request must send Authorization: Bearer KEY"),
    max_upload_mb: float = typer.Option(16, "--max-upload-mb", help="largest request body accepted"),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help=(
        "a name clients may reach the server by, besides loopback names, --host and the addresses it is "
        "reached on (repeatable; * allows any): e.g. this machine's LAN name, or a reverse proxy's")),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Serve the store behind an OpenAI-compatible API; `"model": "<memory>"` picks a memory.

    Requests under other Host names, state-changing requests from other sites' pages and bodies
    that are not JSON are refused, key or no key (loramem.serve.origin).
    """
    from loramem.serve import serve as run

    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        err_console.print(f"warning: serving on {host} with no --api-key: anyone who reaches it can read and write "
                          "memories")
    mem = open_memory(store, model, device)
    err_console.print(f"loramem: {mem.base.name} with {mem.store.count()} memories from {mem.store.path}; "
                      f"OpenAI base URL http://{host}:{port}/v1")
    run(mem, host=host, port=port, api_key=api_key, max_upload_bytes=int(max_upload_mb * 2**20),
        allowed_hosts=allowed_host)


@app.command()
def demo(store: Path | None = typer.Option(None, "--store", help="keep the demo memory here (default: a temporary folder)"),
         model: str | None = ModelOpt) -> None:
    """Write a small table of invented facts and ask it back, with and without the memory."""
    from loramem.demo import run_demo

    run_demo(store=store, model=model, console=out)


@app.command()
def datasheet(
    out_dir: Path | None = typer.Option(None, "--out", help="folder for datasheet.md/json and the plot (default: ./datasheet)"),
    quick: bool = typer.Option(False, "--quick", help=f"ranks {' and '.join(map(str, QUICK.ranks))}, {QUICK.start} to "
                               f"{QUICK.max_entries} entries, {QUICK.epochs} epochs: under 20 minutes on 2 cores"),
    ranks: str | None = typer.Option(None, "--ranks", help="ranks to measure, e.g. 1,2,4,8,16"),
    tau: float = typer.Option(TAU, "--tau", help="read-back recall an entry count must reach to count as stored"),
    batch_memories: int = typer.Option(1, "--batch-memories", min=1, help=(
        "probes trained together: every rank searches at once, rank r from the first size x r / the "
        "smallest rank (1: one rank after another, each from the last one's capacity)")),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Measure this base model's LoRA memory capacity per rank and write its datasheet."""
    from loramem.bench.datasheet_run import run_datasheet
    from loramem.training.config import parse_indices

    chosen = parse_indices(ranks, "ranks") if ranks else None
    md, saved = run_datasheet(model, device, out_dir or Path("datasheet"), chosen, quick=quick, tau=tau, log=log,
                              batch_memories=batch_memories)
    print(md.read_text())
    out.print(f"wrote {md} (and {saved}, used by write --rank auto)")


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

    result = run(open_store(store), out_dir, memory or None, collection)
    err_console.print(f"exported {len(result.folders)} memories to {out_dir}")
    print(result.command)


@export_app.command("gguf")
def export_gguf(
    out_dir: Path = typer.Argument(..., help="folder to write one llama.cpp adapter (NAME.gguf) and Modelfile per memory into"),
    memory: list[str] = typer.Option([], "--memory", "-m", help="memory to export (repeatable; default: all)"),
    collection: str | None = typer.Option(None, "--collection", help="export this collection's memories"),
    store: Path | None = StoreOpt,
    model: str | None = ModelOpt,
) -> None:
    """Write llama.cpp LoRA adapters (GGUF) and print the llama-server and Ollama commands that load them."""
    from loramem.export_gguf import export_gguf as run

    mem = open_memory(store, model, "cpu")
    result = run(mem.store, mem.base, out_dir, memory or None, collection)
    err_console.print(f"exported {len(result.files)} memories to {out_dir}")
    print(result.commands)
