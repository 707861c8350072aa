"""CounterFact edits (ROME, Meng et al. 2022) as the seed paper uses them: counterfactual statements
("Lenta.ru is written in Italian") written as next-token text, asked back as prompts whose new
target must win. Efficacy: P(new) > P(true) on the first target token, where the data has the true
object; the shared files give only the new one, so exact match of the new object is the score.

`form="raw"` writes each edit as a document (next-token text, as the paper trains it); `form="qa"`
writes the edits that have an evaluation prompt as records (prompt -> new object), the way
PhoneBook entries are written, so the memory is trained on exactly what it is asked.
"""

from __future__ import annotations

import csv
import json

from loramem.bench.datasets.base import DATASETS, Dataset, Document, Question, data_dir
from loramem.errors import LoramemError
from loramem.supervision.examples import Example


@DATASETS.register("counterfact")
def load_counterfact(size: str = "1K", n: int | None = None, data: str | None = None, form: str = "raw") -> Dataset:
    if form not in ("raw", "qa"):
        raise LoramemError(f"counterfact form must be raw or qa, got {form!r}")
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
    if form == "qa":
        return Dataset("counterfact", records=[Example(q.question, q.answer) for q in questions],
                       questions=questions, metric="exact_match")
    return Dataset("counterfact", documents=[Document(f"edit {i}", s) for i, s in enumerate(statements)],
                   questions=questions, metric="exact_match")
