"""CounterFact edits (ROME, Meng et al. 2022) as the seed paper uses them: counterfactual statements
("Lenta.ru is written in Italian") written as next-token text, asked back as prompts whose new
target must win. Efficacy: P(new) > P(true) on the first target token, where the data has the true
object; the shared files give only the new one, so exact match of the new object is the score.
"""

from __future__ import annotations

import csv
import json

from loramem.bench.datasets.base import DATASETS, Dataset, Document, Question, data_dir


@DATASETS.register("counterfact")
def load_counterfact(size: str = "1K", n: int | None = None, data: str | None = None) -> Dataset:
    folder = data_dir(data) / "pb_cf"
    with open(folder / f"counterfact_edit_{size}.csv", newline="") as f:
        statements = [row["text"].strip() for row in csv.DictReader(f) if row.get("text", "").strip()]
    if n is not None:
        statements = statements[:n]
    wanted = set(statements)
    questions = []
    for item in json.loads((folder / "counterfact_eval_qa.json").read_text()):
        statement = f"{item['question']} {item['answer']}".strip()
        if statement in wanted:
            questions.append(Question(item["question"], item["answer"], {"true": item.get("true")}))
    return Dataset("counterfact", documents=[Document(f"edit {i}", s) for i, s in enumerate(statements)],
                   questions=questions, metric="exact_match")
