"""PaperQA: paper introductions with 30 questions each (level 1 recall, 2 understanding, 3 reasoning)."""

from __future__ import annotations

import json
from pathlib import Path

from loramem.bench.datasets.base import DATASETS, Dataset, Document, Question, data_dir
from loramem.errors import LoramemError


def read_papers(path: str | Path) -> list[dict]:
    """Papers with `title`, `introduction` and `QA` (items with `question`, `answer`, `level`)."""
    try:
        papers = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise LoramemError(f"{path}: cannot read PaperQA JSON ({e})") from None
    if not isinstance(papers, list) or not all(
        isinstance(p, dict) and {"title", "introduction", "QA"} <= set(p) for p in papers
    ):
        raise LoramemError(f"{path}: expected a list of papers with title, introduction and QA")
    return papers


def paper_text(paper: dict) -> str:
    """The document a paper is written from: its title as a heading, then its introduction."""
    return f"# {paper['title']}\n\n{paper['introduction']}\n"


def choose_papers(data: str | Path, papers: list[int] | None) -> tuple[list[dict], list[int]]:
    """All papers of `data` and the indices asked for (None: all), refusing indices it does not hold."""
    all_papers = read_papers(data)
    chosen = papers if papers is not None else list(range(len(all_papers)))
    if any(i < 0 or i >= len(all_papers) for i in chosen):
        raise LoramemError(f"{data} holds papers 0-{len(all_papers) - 1}; asked for {chosen}")
    return all_papers, chosen


@DATASETS.register("paperqa")
def load_paperqa(path: str | None = None, papers: list[int] | None = None, data: str | None = None) -> Dataset:
    all_papers = read_papers(path or data_dir(data) / "paperqa" / "paperQA_dev.json")
    chosen = papers if papers is not None else range(len(all_papers))
    docs, questions = [], []
    for i in chosen:
        p = all_papers[i]
        docs.append(Document(p["title"], p["introduction"]))
        questions += [Question(q["question"], q["answer"], {"level": q.get("level"), "document": len(docs) - 1})
                      for q in p["QA"]]
    return Dataset("paperqa", documents=docs, questions=questions, metric="rouge_l")
