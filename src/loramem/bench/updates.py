"""`loramem bench updates`: a stream of updates to one memory, measured after each, per update method.

After the first write and after every update: the share of current facts read back (greedy
reproduces the answer: one teacher-forced pass, `read_back_adapter`), the share of superseded and
of deleted answers still produced (greedy answer contains the old one, the adapter on whatever
the question), the base model's own knowledge kept (country capitals it answers right with no
memory that its greedy answer with the memory still names: knowledge, not wording) both as a
user is answered, with the memory's scope gate (`loramem.scope`), and with the adapter forced on
(what the weights themselves kept), and the seconds the update took, beside the seconds a fresh
write of the change alone takes (measured just before it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from loramem.bench.datasets import DATASETS
from loramem.bench.metrics import normalize
from loramem.bench.update_stream import Truth, Update, make_stream
from loramem.errors import LoramemError
from loramem.scope import SCOPE
from loramem.supervision.examples import Example
from loramem.supervision.sources import read_source
from loramem.supervision.stored import RECORD
from loramem.training import TrainConfig
from loramem.training.trainer import read_back_adapter
from loramem.updates import UPDATES

NAME = "stream"
# The stream's memory is written with anchors (training/anchors.py): without them a PhoneBook
# memory answers "What is the capital of Japan?" with a phone number, and no update method could
# keep the base model's knowledge that the first write already took.
ANCHORS = 16
GENERAL_POOL = 160  # packaged country questions the probe draws its capital questions from
GENERAL_TOKENS = 16  # a capital question is answered right when its first 16 tokens name the capital
TARGETS = {"recall": 0.95, "superseded_still": 0.05, "deleted_still": 0.05, "base_kept_drop": 0.05, "time_ratio": 3.0}


def _contains(answer: str, expected: str) -> bool:
    return normalize(expected) in normalize(answer)


def general_questions(mem, n: int, seed: int = 0, pool: int = GENERAL_POOL) -> list[Example]:
    """Up to `n` packaged capital questions that the base model, with no memory, answers right.

    Questions that name their answer (the capital of Guinea-Bissau is Bissau) are left out: a
    model repeating the question would count as knowing it.
    """
    chosen: list[Example] = []
    if n <= 0:
        return chosen
    for q in DATASETS.get("countries")(n=pool, seed=seed).records:
        if not q.prompt.startswith("What is the capital") or normalize(q.target) in normalize(q.prompt):
            continue
        if _contains(mem.ask(q.prompt, max_new_tokens=GENERAL_TOKENS).answer, q.target):
            chosen.append(Example(q.prompt, q.target, RECORD))
            if len(chosen) == n:
                break
    return chosen


def measure(mem, truth: Truth, general: list[Example]) -> dict:
    record = mem.store.get(NAME)
    current = [Example(q, a, RECORD) for q, a in sorted(truth.current.items())]
    recall = read_back_adapter(mem.base, mem.store.adapter_path(record), current).float().mean().item()
    tokenizer = mem.base.tokenizer

    def still(pairs: Sequence[tuple[str, str]]) -> float:  # the weights: no scope gate to hide behind
        hits = [_contains(mem.ask(q, memories=[NAME], max_new_tokens=len(tokenizer(a)["input_ids"]) + 6,
                                  scope=0).answer, a) for q, a in pairs]
        return sum(hits) / len(hits) if hits else 0.0

    def kept(scope: float) -> float:
        hits = [_contains(mem.ask(e.prompt, memories=[NAME], max_new_tokens=GENERAL_TOKENS, scope=scope).answer,
                          e.target) for e in general]
        return sum(hits) / len(hits) if hits else 1.0

    return {"version": record.version, "facts": len(current), "recall": recall,
            "superseded_still": still(truth.superseded_pairs()), "superseded": len(truth.superseded_pairs()),
            "deleted_still": still(sorted(truth.deleted.items())), "deleted": len(truth.deleted),
            "base_kept": kept(SCOPE), "base_kept_weights": kept(0.0)}


def _alone_seconds(mem, update: Update, k: int, config: TrainConfig) -> float | None:
    """Seconds a fresh write of the update's records takes (None for an update that only deletes).

    Measured right before the update itself, in the same process, so that both see the same machine.
    """
    if not update.records:
        return None
    start = time.perf_counter()
    mem.write(records=update.records, name=f"change-{k}", config=config)
    seconds = time.perf_counter() - start
    mem.forget(f"change-{k}")
    return seconds


def load_records(records: str | None, data: str | None) -> list[Example]:
    if records:
        return read_source(records).records
    return DATASETS.get("phonebook")(size="1K", data=data).records


def run_updates_bench(
    out: Path,
    model: str | None = None,
    device: str | None = None,
    methods: Sequence[str] | None = None,
    records: str | None = None,
    data: str | None = None,
    start: int = 24,
    updates: int = 10,
    add: int = 2,
    change: int = 2,
    delete: int = 1,
    edits: int = 1,
    general: int = 20,
    config: TrainConfig | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the stream once per method into `out` (results-<method>.json); returns every method's rows."""
    from loramem import Memory
    from loramem.models import load_base

    methods = list(methods or UPDATES.names())
    for m in methods:
        UPDATES.get(m)
    config = config or TrainConfig(anchors=ANCHORS)
    pool = load_records(records, data)
    cf = DATASETS.get("counterfact")(size="1K", data=data, form="qa").records if edits else []
    first, stream = make_stream(pool, start, updates, add, change, delete, cf, edits, seed)
    settings = {"model": model, "records": records or "phonebook 1K", "start": start, "updates": updates, "add": add,
                "change": change, "delete": delete, "edits": edits, "general": general, "seed": seed,
                "config": asdict(config)}
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != json.loads(json.dumps(settings)):
        raise LoramemError(f"{out} holds a run with other settings ({saved}); choose another --out")
    saved.write_text(json.dumps(settings, indent=2))
    base = load_base(model, device)

    def fresh(label: str) -> Memory:
        store = out / "store" / label
        if store.exists():
            import shutil

            shutil.rmtree(store)
        return Memory(store=store, base=base, progress=False)

    probed = out / "general.json"  # the probe asks up to 160 questions: once per folder
    if probed.exists():
        general_set = [Example(**e) for e in json.loads(probed.read_text())]
    else:
        general_set = general_questions(fresh("probe"), general, seed)
        probed.write_text(json.dumps([e.to_dict() for e in general_set], indent=1))
    log(f"{len(general_set)} general questions the base model answers right")
    results = {}
    for method in methods:
        mem = fresh(method)
        truth = Truth(current={r["question"]: r["answer"] for r in first})
        t = time.perf_counter()
        mem.write(records=first, name=NAME, config=config)
        rows = [{"update": 0, **measure(mem, truth, general_set), "seconds": time.perf_counter() - t}]
        log(f"{method}: written, {rows[0]}")
        (out / f"results-{method}.json").write_text(json.dumps(rows, indent=2))
        for k, update in enumerate(stream, 1):
            alone = _alone_seconds(mem, update, k, config)
            t = time.perf_counter()
            # Accepted below target: the bench measures what each method makes of the stream.
            mem.update(NAME, records=update.records or None, remove_records=update.removed or None, method=method,
                       accept_below_target=True)
            seconds = time.perf_counter() - t
            truth.apply(update)
            row = {"update": k, "change": update.kinds, **measure(mem, truth, general_set), "seconds": seconds,
                   "alone_seconds": alone}
            rows.append(row)
            (out / f"results-{method}.json").write_text(json.dumps(rows, indent=2))  # what a stopped run measured
            log(f"{method}: update {k}: recall {row['recall']:.1%}, superseded {row['superseded_still']:.0%}, "
                f"deleted {row['deleted_still']:.0%}, base kept {row['base_kept']:.0%}, {seconds:.1f} s")
        (out / f"results-{method}.json").write_text(json.dumps(rows, indent=2))
        results[method] = rows
    return results


def final_figures(rows: list[dict]) -> dict:
    """The figures the targets are checked on: the last version, and the worst time ratio."""
    last = rows[-1]
    ratios = [r["seconds"] / r["alone_seconds"] for r in rows[1:] if r.get("alone_seconds")]
    return {"recall": last["recall"], "superseded_still": last["superseded_still"],
            "deleted_still": last["deleted_still"], "base_kept": last["base_kept"],
            "base_kept_weights": last.get("base_kept_weights"),
            "mean_update_seconds": sum(r["seconds"] for r in rows[1:]) / max(1, len(rows) - 1),
            "time_ratio": max(ratios) if ratios else None,
            "time_ratio_mean": sum(ratios) / len(ratios) if ratios else None}


def meets_targets(final: dict) -> bool:
    return (final["recall"] >= TARGETS["recall"] and final["superseded_still"] <= TARGETS["superseded_still"]
            and final["deleted_still"] <= TARGETS["deleted_still"] and final["base_kept"] >= 1 - TARGETS["base_kept_drop"]
            and final["time_ratio"] is not None and final["time_ratio"] <= TARGETS["time_ratio"])


def _verdict(final: dict, reached: int, planned: int) -> str:
    if not meets_targets(final):
        return "missed"
    return "met" if reached >= planned else f"met so far ({reached} of {planned} updates)"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def write_updates_report(out: Path) -> Path:
    """updates.md (a table per method, and the comparison) and updates-<method>.png, from the results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {p.stem.removeprefix("results-"): json.loads(p.read_text()) for p in sorted(out.glob("results-*.json"))}
    if not runs:
        raise LoramemError(f"{out}: no results-<method>.json yet")
    settings = json.loads((out / "settings.json").read_text())
    probed = out / "general.json"
    general = len(json.loads(probed.read_text())) if probed.exists() else settings["general"]
    lines = ["# Updating one memory: a stream of changes, measured after each", "",
             f"First write: {settings['start']} records of {settings['records']}; then {settings['updates']} updates, "
             f"each adding {settings['add']}, changing {settings['change']}, deleting {settings['delete']} and adding "
             f"{settings['edits']} CounterFact edit(s). Base knowledge: {general} capital questions the base model "
             f"answers right with no memory (at most {settings['general']}, from {GENERAL_POOL} packaged country "
             "questions), asked again with the memory on.", "",
             f"Base knowledge kept is measured as users are answered, a question outside the memory's scope (cosine "
             f"< {SCOPE} to its nearest record) going to the base model, and in brackets with the adapter forced on: "
             "what the weights themselves kept. Superseded and deleted answers are asked with the adapter forced on.",
             "",
             "| method | after updates | current facts read back | superseded still produced | deleted still produced | "
             "base knowledge kept (weights) | s / update | worst (mean) time vs writing the change alone | targets |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, rows in runs.items():
        f = final_figures(rows)
        ratio = f"{f['time_ratio']:.2f}x ({f['time_ratio_mean']:.2f}x)" if f["time_ratio"] else "-"
        lines.append(f"| {method} | {rows[-1]['update']} of {settings['updates']} | {f['recall']:.1%} | "
                     f"{f['superseded_still']:.0%} | {f['deleted_still']:.0%} | "
                     f"{f['base_kept']:.0%} ({_share(f['base_kept_weights'])}) | {f['mean_update_seconds']:.1f} | {ratio} | "
                     f"{_verdict(f, rows[-1]['update'], settings['updates'])} |")
    for method, rows in runs.items():
        lines += ["", f"## {method}", "", "| update | version | facts | read back | superseded still | deleted still | "
                  "base kept (weights) | seconds | change alone (s) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            alone = f"{r['alone_seconds']:.1f}" if r.get("alone_seconds") else "-"
            lines.append(f"| {r['update']} | {r['version']} | {r['facts']} | {r['recall']:.1%} | "
                         f"{r['superseded_still']:.0%} of {r['superseded']} | {r['deleted_still']:.0%} of {r['deleted']} | "
                         f"{r['base_kept']:.0%} ({_share(r.get('base_kept_weights'))}) | {r['seconds']:.1f} | {alone} |")
        fig, (ax, at) = plt.subplots(1, 2, figsize=(10, 3.6))
        xs = [r["update"] for r in rows]
        for key, label in (("recall", "current facts read back"), ("superseded_still", "superseded still produced"),
                           ("deleted_still", "deleted still produced"), ("base_kept", "base knowledge kept"),
                           ("base_kept_weights", "base knowledge kept, adapter forced on")):
            ax.plot(xs, [r.get(key, float("nan")) for r in rows], marker="o", label=label)
        ax.set(xlabel="update", ylabel="share", ylim=(-0.05, 1.05), title=f"{method}: what the memory answers")
        ax.legend(fontsize=8)
        at.plot(xs[1:], [r["seconds"] for r in rows[1:]], marker="o", label="update")
        at.plot(xs[1:], [r.get("alone_seconds") or float("nan") for r in rows[1:]], marker="s",
                label="writing the change alone")
        at.set(xlabel="update", ylabel="seconds", title=f"{method}: time per update")
        at.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"updates-{method}.png", dpi=110)
        plt.close(fig)
        lines += ["", f"![{method}](updates-{method}.png)"]
    report = out / "updates.md"
    report.write_text("\n".join(lines) + "\n")
    return report
