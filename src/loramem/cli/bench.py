"""The `bench` commands: parse, call one loramem.bench program, print its table or JSON.

Defaults come from the library: training settings from TrainConfig, a study's own choices
(routers, merges, presses, RHO values, sizes) from its module. A study that deliberately trains
otherwise than TrainConfig says so where it passes `default=`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from loramem.bench import corpus as corpus_study
from loramem.bench import formats as formats_study
from loramem.bench import generator as generator_study
from loramem.bench import kv as kv_study
from loramem.bench import partitions as partitions_study
from loramem.bench import perf as perf_study
from loramem.bench import route as route_study
from loramem.bench import routers as routers_study
from loramem.bench import serve as serve_study
from loramem.bench import updates as updates_study
from loramem.bench.experiment import ONLY_KEYS
from loramem.cli.options import (
    DeviceOpt,
    GeneratorKeyOpt,
    GeneratorModelOpt,
    GeneratorOpt,
    JsonOpt,
    ModelOpt,
    OutJsonOpt,
    choices,
    default_of,
    err_console,
    first_stage_names,
    generator_options,
    log,
    merge_names,
    out,
    train_option,
)
from loramem.errors import LoramemError
from loramem.modes.kv import PRESSES
from loramem.training import TrainConfig
from loramem.updates import UPDATES

bench_app = typer.Typer()  # its help: loramem.cli.lazy.LAZY_GROUPS
ResultsDirOpt = typer.Option(..., "--out", help="results folder (rerun to resume)")
PaperQAOpt = typer.Option(..., "--data", help="PaperQA JSON (a list of papers with title, introduction, QA)")
PapersOpt = typer.Option(None, "--papers", help="paper indices such as 0-2 or 0,4 (default: all)")
PaperQuestionsOpt = typer.Option(None, "--questions", min=1,
                                 help="at most this many questions per paper, evenly spread over the levels")
# bench formats and bench kv train at most 20 epochs, not TrainConfig's 40: the budget their committed
# studies were measured with (benchmarks/formats-paperqa/README.md, benchmarks/kv-paperqa/README.md)
PAPERQA_EPOCHS = 20


def _emit_json(results: dict, out_file: Path | None, as_json: bool) -> bool:
    """Write `results` to --out, print them with --json; True when nothing else should be printed."""
    if out_file:
        out_file.write_text(json.dumps(results, indent=2))
    if as_json:
        print(json.dumps(results))
    return as_json


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@bench_app.command("perf")
def bench_perf(
    out_file: Path | None = OutJsonOpt,
    device: str | None = DeviceOpt,
    rank: int = train_option("rank"),
    baseline_budget: float = typer.Option(default_of(perf_study.run_perf, "baseline_budget_s"), "--baseline-budget",
                                          help="seconds the usual recipe gets to verify its write"),
    quick: bool = typer.Option(False, "--quick", help="small sizes (40 / 12 entries, 120 s budget): a smoke run, "
                               "not the benchmark"),
    model: str | None = ModelOpt,
) -> None:
    """Training throughput, MFU, time to a verified write and answer latency vs. the usual recipe."""
    from loramem.bench.tables import targets_table
    from loramem.training import TrainConfig

    sizes = (dict(n_train=40, n_write=12, baseline_budget_s=min(baseline_budget, 120)) if quick
             else dict(baseline_budget_s=baseline_budget))
    results = perf_study.run_perf(config=TrainConfig(rank=rank), model=model, device=device, log=err_console.print,
                                  **sizes)
    out.print(targets_table("loramem bench perf", results, perf_study.PERF_TARGETS))
    if out_file:
        out_file.write_text(json.dumps(results, indent=2))
        out.print(f"wrote {out_file}")


_corpus = corpus_study.run_corpus


@bench_app.command("corpus")
def bench_corpus(
    entries: int = typer.Option(default_of(_corpus, "entries"), "--entries",
                                help="records per memory, from the start of each partition"),
    partitions: int = typer.Option(default_of(_corpus, "partitions"), "--partitions",
                                   help="how many of the 16 PhoneBook sectors (one memory each)"),
    batch_memories: int = typer.Option(default_of(_corpus, "batch_memories"), "--batch-memories",
                                       help="memories trained together in the batched way"),
    data: Path | None = typer.Option(None, "--data", help="the seed paper's data folder, holding pb_cf/ "
                                     "(default: $LORAMEM_DATA, else ../shared/data/lora-knowledge-memory)"),
    precision: str = train_option("precision"),
    as_json: bool = JsonOpt,
    out_file: Path | None = OutJsonOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Memories per hour, tokens/s, MFU and recall: PhoneBook sectors written one by one and batched."""
    from loramem.bench.tables import targets_table
    from loramem.training import TrainConfig

    results = _corpus(data, partitions, entries, batch_memories, model=model, device=device,
                      config=TrainConfig(precision=precision), log=log)
    if not _emit_json(results, out_file, as_json):
        shown = {k: v for k, v in results.items() if not isinstance(v, list)}
        out.print(targets_table("loramem bench corpus", shown, corpus_study.CORPUS_TARGETS))


@bench_app.command("route")
def bench_route(
    memories: int = typer.Option(default_of(route_study.run_route_bench, "n"), "--memories", help="catalogue size"),
    top_k: int = typer.Option(default_of(route_study.run_route_bench, "top_k"), "--top-k"),
    as_json: bool = JsonOpt,
    out_file: Path | None = OutJsonOpt,
) -> None:
    """Catalogue open time and top-k routing latency (p50/p99) over N memories."""
    from loramem.bench.tables import targets_table

    results = route_study.run_route_bench(memories, top_k, log=log)
    if not _emit_json(results, out_file, as_json):
        out.print(targets_table("loramem bench route", results, route_study.ROUTE_TARGETS))


@bench_app.command("routers")
def bench_routers(
    files: list[Path] = typer.Argument(..., help="one partition per file (.csv / .jsonl records), "
                                       "e.g. the 16 sectors of the 128K PhoneBook"),
    router: str | None = typer.Option(None, "--router", help="routers, comma-separated "
                                      f"(default: every one that reads only the catalogue, "
                                      f"{choices(first_stage_names())})"),
    top_k: str = typer.Option("1,3", "--top-k", help="k values, comma-separated"),
    per_partition: int | None = typer.Option(None, "--per-partition",
                                             help="questions per partition, evenly spread (default: all)"),
    as_json: bool = JsonOpt,
    out_file: Path | None = OutJsonOpt,
) -> None:
    """Router accuracy: how often each router puts a question's own partition in its top k."""
    from loramem.bench.tables import routers_table

    try:
        ks = sorted({int(k) for k in top_k.split(",")})
    except ValueError:
        raise LoramemError(f"--top-k takes whole numbers such as 1,3; got {top_k!r}") from None
    if ks[0] < 1:
        raise LoramemError(f"--top-k values must be at least 1; got {top_k!r}")
    names = _names(router) if router is not None else None
    results = routers_study.run_router_accuracy(files, names, ks, per_partition, log=log)
    if not _emit_json(results, out_file, as_json):
        out.print(routers_table(results, ks))


_partitions = partitions_study.run_partitions


@bench_app.command("partitions")
def bench_partitions(
    files: list[Path] = typer.Argument(..., help="one partition per file (.csv / .jsonl records)"),
    out_dir: Path = ResultsDirOpt,
    entries: int = typer.Option(default_of(_partitions, "entries"), "--entries",
                                help="records taken from the start of each partition"),
    rank: int = typer.Option(default_of(_partitions, "rank"), "--rank",
                             help="rank of each small memory (the large one: rank x partitions)"),
    epochs: int = typer.Option(default_of(_partitions, "epochs"), "--epochs",
                               help="upper bound; writes stop once their records read back"),
    questions: int | None = typer.Option(None, "--questions", help="questions per partition, evenly spread (default: all)"),
    merge: str = typer.Option(",".join(default_of(_partitions, "merges")), "--merge",
                              help=f"merge methods, comma-separated: {choices(merge_names())}"),
    top_k: int = typer.Option(default_of(_partitions, "top_k"), "--top-k", help="memories the router merges"),
    max_merge: int = typer.Option(default_of(_partitions, "max_merge"), "--max-merge",
                                  help="largest N of own memory + N-1 others"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """One large memory vs one per partition under the same parameters; routers vs the oracle; merges."""
    from loramem.merges import check_merge

    merges = [check_merge(m) for m in _names(merge)]
    report = _partitions(files, out_dir, entries, rank, epochs, questions, merges=merges, top_k=top_k,
                         max_merge=max_merge, model=model, device=device, log=log)
    print(report.read_text())
    out.print(f"wrote {report}")


@bench_app.command("serve")
def bench_serve(
    requests: int = typer.Option(default_of(serve_study.run_serve_bench, "per_client"), "--requests",
                                 help="requests per memory in each round"),
    as_json: bool = JsonOpt,
    out_file: Path | None = OutJsonOpt,
    store: Path | None = typer.Option(None, "--store", help="keep the 8 benchmark memories here (default: temporary)"),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """Requests/s and p50 latency of `loramem serve` with 1 and with 8 concurrent clients on 8 memories."""
    from loramem.bench.tables import serve_table

    results = serve_study.run_serve_bench(store, model, device, per_client=requests, log=err_console.print)
    if not _emit_json(results, out_file, as_json):
        out.print(serve_table(results))


def _stream_option(name: str, help: str):
    return typer.Option(default_of(updates_study.run_updates_bench, name), f"--{name}", help=help)


@bench_app.command("updates")
def bench_updates(
    out_dir: Path = ResultsDirOpt,
    method: str = typer.Option(",".join(UPDATES.names()), "--method", help=f"update methods, comma-separated: "
                               f"{choices(UPDATES.names())}"),
    records: str | None = typer.Option(None, "--records", help="a .jsonl/.csv fact table to stream (default: the "
                                       "seed paper's PhoneBook 1K)"),
    data: str | None = typer.Option(None, "--data", help="the seed paper's data folder (PhoneBook, CounterFact)"),
    start: int = _stream_option("start", "records in the first write"),
    updates: int = _stream_option("updates", "updates in the stream"),
    add: int = _stream_option("add", "new records per update"),
    change: int = _stream_option("change", "records whose answer changes, per update"),
    delete: int = _stream_option("delete", "records deleted per update"),
    edits: int = _stream_option("edits", "CounterFact edits added per update"),
    general: int = _stream_option("general", "general questions the base model must keep answering"),
    rank: int = train_option("rank"),
    epochs: int = train_option("epochs"),
    # the stream's memory keeps the base model's answers elsewhere (see loramem.bench.updates.ANCHORS)
    anchors: int = train_option("anchors", default=updates_study.ANCHORS),
    as_json: bool = JsonOpt,
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """A stream of updates to one memory (new, changed and deleted facts), measured after each, per method."""
    results = updates_study.run_updates_bench(
        out_dir, model, device, _names(method), records, data, start, updates, add, change, delete, edits, general,
        TrainConfig(rank=rank, epochs=epochs, anchors=anchors), log=log)
    report = updates_study.write_updates_report(out_dir)
    if as_json:
        print(json.dumps({m: updates_study.final_figures(rows) for m, rows in results.items()}))
    else:
        print(report.read_text())


def make_judge(wanted: bool, url: str | None):
    if not (wanted or url):
        return None
    from loramem.bench.judge import Judge

    return Judge(url=url)


@bench_app.command("formats")
def bench_formats(
    data: Path = PaperQAOpt,
    out_dir: Path = ResultsDirOpt,
    format: list[str] = typer.Option(["raw", "qa", "mixed"], "--format", help="format to compare (repeatable)"),
    papers: str | None = PapersOpt,
    rank: int = train_option("rank"),
    epochs: int = train_option("epochs", default=PAPERQA_EPOCHS),
    seed: int = train_option("seed"),
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
    from loramem.training import TrainConfig
    from loramem.training.config import parse_indices

    chosen = parse_indices(papers, "papers") if papers else None
    summary = formats_study.run_format_comparison(
        data, out_dir, format, chosen, TrainConfig(rank=rank, epochs=epochs, seed=seed), model=model, device=device,
        generator=generator, generator_options=generator_options(generator_model, generator_key), log=log,
        judge=make_judge(judge, judge_url))
    print(formats_study.summary_markdown(summary))
    out.print(f"wrote {out_dir / 'summary.md'}, {out_dir / 'summary.json'} and {out_dir / 'results.jsonl'}")


@bench_app.command("generator")
def bench_generator(
    data: Path = PaperQAOpt,
    paper: int = typer.Option(default_of(generator_study.run_generator_bench, "paper"), "--paper",
                              help="which paper's introduction (default 1: about 1,000 tokens in the dev set)"),
    plain_prompts: int = typer.Option(default_of(generator_study.run_generator_bench, "plain_prompts"), "--plain-prompts",
                                      help="prompts for the slow plain transformers path"),
    count: int = typer.Option(default_of(generator_study.run_generator_bench, "count"), "--count",
                              help="QA pairs for the document (default: the seed paper's 40)"),
    as_json: bool = JsonOpt,
) -> None:
    """The embedded generator (llama.cpp, batched) against plain transformers generate, on the same prompts."""
    result = generator_study.run_generator_bench(data, paper, plain_prompts, count, log=log)
    print(json.dumps(result) if as_json else generator_study.generator_table(result))


@bench_app.command("kv")
def bench_kv(
    data: Path = PaperQAOpt,
    out_dir: Path = typer.Option(..., "--out", help="results folder (rerun to resume; share it with bench formats "
                                 "to reuse the papers' memories)"),
    papers: str | None = PapersOpt,
    rho: str = typer.Option(",".join(f"{r:g}" for r in kv_study.RHOS), "--rho", help="compression values, comma-separated"),
    press: str = typer.Option(",".join(kv_study.PRESSES), "--press",
                              help=f"kvpress presses, comma-separated: {choices(tuple(PRESSES))}"),
    format: str = typer.Option(",".join(kv_study.FORMATS), "--format",
                               help="supervision formats of the memories, comma-separated"),
    questions: int | None = PaperQuestionsOpt,
    epochs: int = train_option("epochs", default=PAPERQA_EPOCHS),
    model: str | None = ModelOpt,
    device: str | None = DeviceOpt,
) -> None:
    """ROUGE-L vs KV compression with the adapter on in prefill+decode, decode or not at all; and the hybrids."""
    from loramem.training import TrainConfig
    from loramem.training.config import parse_indices

    try:
        rhos = [float(x) for x in rho.split(",")]
    except ValueError:
        raise LoramemError(f"--rho takes numbers such as 0,0.5,1; got {rho!r}") from None
    report = kv_study.run_kv_study(data, out_dir, parse_indices(papers, "papers") if papers else None, rhos,
                                   [p.strip() for p in press.split(",")], [f.strip() for f in format.split(",")],
                                   questions, TrainConfig(epochs=epochs), model, device, log=log)
    print(report.read_text())
    out.print(f"wrote {report}")


@bench_app.command("faults")
def bench_faults(
    kills: int = typer.Option(20, "--kills", min=1, help="times a writer is SIGKILLed during write and update"),
    race_seconds: float = typer.Option(10, "--race-seconds", min=1, help="how long commits race gc"),
    seed: int = typer.Option(0, "--seed", help="seeds the kill times"),
    as_json: bool = JsonOpt,
    out_file: Path | None = OutJsonOpt,
) -> None:
    """Kill writes, race commits against gc, lose the catalogue, fill the disk and send cross-site
    requests, on a tiny random model; count what was lost, tracebacks, and cross-site requests let in."""
    from loramem.bench.faults import run_faults
    from loramem.bench.tables import faults_table

    results = run_faults(kills, race_seconds, seed, log=err_console.print)
    if not _emit_json(results, out_file, as_json):
        out.print(faults_table(results))


@bench_app.command("run")
def bench_run(
    config: Path = typer.Argument(..., help="experiment YAML (see loramem.bench.experiment)"),
    out_dir: Path = ResultsDirOpt,
    only: list[str] = typer.Option([], "--only", help="run only these cells, e.g. --only size=2K --only rank=1,2 "
                                   f"(keys: {', '.join(ONLY_KEYS)})"),
) -> None:
    """Run an experiment grid from YAML, appending one JSONL row per run; resumes where it stopped."""
    from loramem.bench.experiment import ExperimentConfig, parse_only, run_experiment
    from loramem.bench.report import write_report

    results = run_experiment(ExperimentConfig.load(config), out_dir, only=parse_only(only), log=log)
    out.print(f"results in {results}; report in {write_report(out_dir)}")


@bench_app.command("report")
def bench_report(folder: Path = typer.Argument(..., help="an experiment's output folder")) -> None:
    """Markdown tables and PNG plots from an experiment's results."""
    from loramem.bench.report import write_report

    out.print(f"wrote {write_report(folder)}")
