"""`loramem bench knowledge-base`: routing, abstention and answers over a collection of papers
(registered on the bench app when imported)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from loramem.bench import knowledge_base as kb
from loramem.cli.bench import PaperQAOpt, PaperQuestionsOpt, PapersOpt, ResultsDirOpt, bench_app
from loramem.cli.options import (
    GeneratorKeyOpt,
    GeneratorModelOpt,
    GeneratorOpt,
    JsonOpt,
    ModelOpt,
    choices,
    generator_options,
    log,
    merge_names,
    out,
    route_names,
)
from loramem.errors import LoramemError


@bench_app.command("knowledge-base")
def bench_knowledge_base(
    data: Path = PaperQAOpt,
    out_dir: Path = ResultsDirOpt,
    papers: str | None = PapersOpt,
    questions: int | None = PaperQuestionsOpt,
    index_only: bool = typer.Option(False, "--index-only", help="index the papers (and distractors) without training "
                                    "and measure the first-stage routers only"),
    distractors: int = typer.Option(0, "--distractors", help="Wikipedia memories added to the collection", min=0),
    router: list[str] = typer.Option([], "--router", help=f"router to measure (repeatable; default: every one): "
                                     f"{choices(route_names()[1:])}"),
    merge: list[str] = typer.Option([], "--merge", help=f"merge over the routed top k (repeatable): "
                                    f"{choices(merge_names())}"),
    top_k: int = typer.Option(kb.TOP_K, "--top-k", help="routes kept per question (and merged)"),
    scale: str = typer.Option("1000,10000", "--scale", help="also time routing among this many memories "
                              "(copies of the indexed ones), comma-separated; 0: not"),
    judge: bool = typer.Option(False, "--judge", help="also grade answers with the rubric judge"),
    generator: str = GeneratorOpt,
    generator_model: str | None = GeneratorModelOpt,
    generator_key: str | None = GeneratorKeyOpt,
    model: str | None = ModelOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Route PaperQA questions among paper memories (and distractors); with a full run, answer them in every arm."""
    from loramem.bench.tables import knowledge_base_table
    from loramem.training.config import parse_indices

    chosen = parse_indices(papers, "papers") if papers else None
    try:
        sizes = [n for n in (int(x) for x in scale.split(",") if x.strip()) if n > 0]
    except ValueError:
        raise LoramemError(f"--scale takes memory counts such as 1000,10000 (0: none); got {scale!r}") from None
    routers = [r.strip() for r in router if r.strip()]
    made_by = dict(generator=generator, generator_options=generator_options(generator_model, generator_key))
    if index_only:
        results = kb.run_index_only(data, out_dir, chosen, distractors, routers, top_k, model, **made_by, scale=sizes,
                                     questions=questions, log=log)
        (out_dir / "routing.json").write_text(json.dumps(results, indent=2))
        if as_json:
            print(json.dumps(results))
        else:
            out.print(knowledge_base_table(results))
            out.print(f"wrote {out_dir / 'routes.jsonl'} and {out_dir / 'routing.json'}")
        return
    from loramem.bench.knowledge_base_answers import MERGES, run_answers
    from loramem.cli.bench import make_judge

    if distractors:
        raise LoramemError("--distractors are index-only memories (no adapter to answer with): use them with --index-only")

    report = run_answers(data, out_dir, chosen, routers, merge or MERGES, top_k, model=model, **made_by,
                         judge=make_judge(judge, None), scale=sizes, questions=questions, log=log)
    if as_json:
        print((out_dir / "summary.json").read_text())
    else:
        print(report.read_text())
        out.print(f"wrote {report}")
