"""Experiments from YAML: a grid of writes and evaluations, appended as JSONL rows, resumable.

```yaml
name: capacity
dataset: {name: phonebook, seed: 0}   # any DATASETS loader and its options
sizes: [24, 48, 96]                   # passed to the loader as `n` (or `size: 1K` strings)
ranks: [2, 8]
formats: [auto]                       # for documents; records are used as they are
placements: [{target_modules: all-linear, layers: all}]
objectives: [auto]
seeds: [0]
training: {epochs: 40, lr: 0.002}     # any TrainConfig field
metrics: [phone_digits]               # the first is the report's score; default: the dataset's own; `judge`: the rubric LLM judge
judge: {}                             # {}: the embedded generator offline; or {url: "http://127.0.0.1:8080/v1", model: null}
ask: true                             # false: score by read-back recall only (no generation)
max_questions: 100
```

Each run writes one memory, asks the dataset's questions with it (closed book), and appends a
row to `results.jsonl` in the output folder beside `config.yaml` (the resolved config). A run is
keyed on all its resolved settings (model, dataset options, training settings, metrics); one
already in `results.jsonl` is skipped, so rerunning an interrupted sweep resumes it. The settings
every run shares (all but the grid's axes) are saved in `settings.json`, and a rerun with other
ones is refused (`loramem.bench.resume`); the axes may grow. `only` picks some cells of the grid
(e.g. `{"size": ["2K"], "rank": ["2"]}`), to spread a grid over machines or sessions; every cell
lands in the same folder and report.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from loramem.bench.datasets import DATASETS, Dataset
from loramem.bench.metrics import METRICS
from loramem.bench.resume import claim_folder, model_name, settings_key
from loramem.bench.rows import append_jsonl, qa_rows, read_jsonl
from loramem.errors import LoramemError
from loramem.training import TrainConfig


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    model: str | None = None
    device: str | None = None
    dataset: dict = field(default_factory=lambda: {"name": "phonebook"})
    sizes: list = field(default_factory=lambda: [None])
    ranks: list[int] = field(default_factory=lambda: [8])
    formats: list[str] = field(default_factory=lambda: ["auto"])
    placements: list[dict] = field(default_factory=lambda: [{"target_modules": "all-linear", "layers": "all"}])
    objectives: list[str] = field(default_factory=lambda: ["auto"])
    seeds: list[int] = field(default_factory=lambda: [0])
    training: dict = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    judge: dict = field(default_factory=dict)  # url, model, api_key: for the `judge` metric
    ask: bool = True
    max_questions: int | None = None

    @classmethod
    def from_dict(cls, raw: dict, where: str = "config") -> ExperimentConfig:
        if not isinstance(raw, dict):
            raise LoramemError(f"{where}: expected a mapping of settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise LoramemError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        config = cls(**raw)
        config.validate(where)
        return config

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise LoramemError(f"{path}: cannot read the experiment config ({e})") from None
        return cls.from_dict(raw, str(path))

    def validate(self, where: str) -> None:
        DATASETS.get(str(self.dataset.get("name")))
        for m in self.metrics:
            if m == "judge":  # judge: {} runs the embedded generator offline; {url: ..., model: ...} a hosted one
                continue
            METRICS.get(m)
        train_fields = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(self.training) - train_fields)
        if bad:
            raise LoramemError(f"{where}: unknown training setting(s) {', '.join(bad)}; valid: {', '.join(sorted(train_fields))}")
        for run in self.runs():
            run.train_config()  # every combination must be a valid TrainConfig
            run.dataset_options()  # and give the loader only arguments it takes

    def shared_settings(self) -> dict:
        """What every run's row depends on but the grid's axes: a resumed folder must match it.

        Training settings are resolved (TrainConfig's defaults filled in), less those each run sets.
        The name and the device are left out: the same grid may be spread over machines.
        """
        per_run = {"rank", "seed", "objective", *(k for p in self.placements for k in p)}
        training = {k: v for k, v in asdict(TrainConfig(**self.training)).items() if k not in per_run}
        return {"model": model_name(self.model), "dataset": self.dataset, "training": training,
                "metrics": self.metrics, "judge": self.judge, "ask": self.ask, "max_questions": self.max_questions}

    def runs(self) -> list[Run]:
        grid = itertools.product(self.sizes, self.ranks, self.formats, self.placements, self.objectives, self.seeds)
        return [Run(self, size, rank, fmt, dict(placement), objective, seed)
                for size, rank, fmt, placement, objective, seed in grid]


@dataclass
class Run:
    config: ExperimentConfig
    size: object
    rank: int
    format: str
    placement: dict
    objective: str
    seed: int

    def params(self) -> dict:
        return {"size": self.size, "rank": self.rank, "format": self.format, "placement": self.placement,
                "objective": self.objective, "seed": self.seed}

    def settings(self) -> dict:
        """Everything this run's row depends on, resolved: what its key is made of."""
        c = self.config
        return {"model": model_name(c.model), "dataset": {"name": c.dataset["name"], **self.dataset_options()},
                "training": asdict(self.train_config()), "format": self.format, "metrics": c.metrics,
                "judge": c.judge, "ask": c.ask, "max_questions": c.max_questions}

    @property
    def key(self) -> str:
        return settings_key(self.settings())

    def train_config(self) -> TrainConfig:
        return TrainConfig(**{**self.config.training, "rank": self.rank, "seed": self.seed,
                              "objective": self.objective, **self.placement})

    def dataset_options(self) -> dict:
        """The loader's every argument: the config's options, the size, the run's seed, the loader's defaults."""
        options = {k: v for k, v in self.config.dataset.items() if k != "name"}
        if self.size is not None:
            options["size" if isinstance(self.size, str) else "n"] = self.size
        signature = inspect.signature(DATASETS.get(self.config.dataset["name"]))
        if "seed" in signature.parameters:
            options.setdefault("seed", self.seed)
        try:
            bound = signature.bind(**options)
        except TypeError as e:
            raise LoramemError(f"dataset {self.config.dataset['name']}: {e}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def dataset(self) -> Dataset:
        return DATASETS.get(self.config.dataset["name"])(**self.dataset_options())


ONLY_KEYS = ("size", "rank", "format", "objective", "seed", "variant")  # variant: of the run's resolved TrainConfig


def parse_only(items: list[str]) -> dict[str, set[str]]:
    """`["size=2K", "rank=1,2"]` -> {"size": {"2K"}, "rank": {"1", "2"}}: values of a key are alternatives."""
    only: dict[str, set[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or key not in ONLY_KEYS or not values:
            raise LoramemError(f"--only {item!r}: expected KEY=VALUE[,VALUE...] with KEY one of {', '.join(ONLY_KEYS)}")
        only.setdefault(key, set()).update(v.strip() for v in values.split(","))
    return only


def select(runs: list[Run], only: dict[str, set[str]]) -> list[Run]:
    """The runs whose settings match every key of `only` (values compared as text)."""
    def value(run: Run, key: str) -> str:
        params = run.params()
        return str(params[key] if key in params else getattr(run.train_config(), key))

    picked = [r for r in runs if all(value(r, k) in values for k, values in only.items())]
    if only and not picked:
        grid = {k: sorted({value(r, k) for r in runs}) for k in only}
        raise LoramemError(f"--only matches no run of this grid; it has {grid}")
    return picked


def done_keys(results: Path) -> set[str]:
    return {r["key"] for r in read_jsonl(results)}


def run_experiment(config: ExperimentConfig, out: Path, log: Callable[[str], None] = print,
                   progress: bool = True, only: dict[str, set[str]] | None = None) -> Path:
    """Run every run of `config` (or the cells `only` picks) not yet in `out/results.jsonl`; returns that file."""
    import yaml

    from loramem.api import Memory

    results = out / "results.jsonl"
    claim_folder(out, config.shared_settings(), results=[results])  # before config.yaml: it must not lie
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    done = done_keys(results)
    runs = select(config.runs(), only or {})
    todo = [r for r in runs if r.key not in done]
    picked = f" picked by --only of {len(config.runs())}" if only else ""
    log(f"{config.name}: {len(runs)} runs{picked}, {len(runs) - len(todo)} already done")
    mem = Memory(store=out / "store", model=config.model, device=config.device, progress=progress)
    for i, run in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {run.params()}")
        row = execute(mem, run)
        append_jsonl(results, [row])
        mem.forget(f"run-{run.key}")  # results are kept; the adapters of a sweep would fill the disk
    return results


def execute(mem, run: Run) -> dict:
    data = run.dataset()
    if not data.records and not data.documents:
        raise LoramemError(f"dataset {data.name} gave nothing to write for {run.params()}")
    documents = {f"document-{j}.md": f"# {doc.title}\n\n{doc.text}\n" for j, doc in enumerate(data.documents)}
    start = time.perf_counter()
    written = mem.write(records=qa_rows(data.records) if data.records else None, documents=documents,
                        name=f"run-{run.key}", format=run.format, config=run.train_config(), replace=True)
    record = written.record
    row = {"key": run.key, **run.params(), "dataset": data.name, "examples": record.examples,
           "tokens": record.tokens, "parameters": record.parameters, "recall": record.recall,
           "epochs": written.epochs, "kinds": written.kinds, "write_s": round(time.perf_counter() - start, 2),
           "entries": len(data.records) or len(data.documents)}
    if run.config.ask and data.questions:
        metrics = run.config.metrics or [data.metric]
        row["metric"] = metrics[0]  # the score the report ranks and plots by
        questions = data.questions[: run.config.max_questions]
        scores = {m: 0.0 for m in metrics}
        judge = None
        if "judge" in metrics:
            from loramem.bench.judge import Judge

            judge = Judge(**run.config.judge)
        answers = [mem.ask(q.question, memories=[record.name]).answer for q in questions]
        for m in metrics:
            if m == "judge":  # graded together: a batching judge decodes them side by side
                graded = judge.score_many([(q.question, a, q.answer) for q, a in zip(questions, answers)])
                scores[m] = sum(g["overall"] / 10 for g in graded)
            else:
                scores[m] = sum(METRICS.get(m)(a, q.answer) for q, a in zip(questions, answers))
        row.update({m: s / len(questions) for m, s in scores.items()})
        row["questions"] = len(questions)
    return row
