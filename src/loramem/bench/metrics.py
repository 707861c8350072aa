"""Answer-quality metrics, by name. Each takes (prediction, reference) and returns a float in [0, 1]."""

from __future__ import annotations

import re
from functools import cache
from typing import Callable

from loramem.registry import Registry

METRICS: Registry[Callable[[str, str], float]] = Registry("metric")


@cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@METRICS.register("rouge_l")
def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 with the Porter stemmer (rouge-score), as the seed paper reports."""
    return _rouge().score(reference, prediction)["rougeL"].fmeasure


_PHONE = re.compile(r"\d{3}-\d{3}-\d{4}")


@METRICS.register("phone_digits")
def phone_digits(prediction: str, reference: str) -> float:
    """PhoneBook: 1 when the first XXX-XXX-XXXX in the answer has the reference's digits."""
    found = _PHONE.search(prediction)
    return float(bool(found) and re.sub(r"\D", "", found.group()) == re.sub(r"\D", "", reference))
