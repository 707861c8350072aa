"""Answer-quality metrics, by name. Each takes (prediction, reference) and returns a float in [0, 1]."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from functools import cache

from loramem.registry import Registry

METRICS: Registry[Callable[[str, str], float]] = Registry("metric")

_PHONE = re.compile(r"\d{3}-\d{3}-\d{4}")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@METRICS.register("phone_digits")
def phone_digits(prediction: str, reference: str) -> float:
    """PhoneBook: 1 when the first XXX-XXX-XXXX in the answer has the reference's digits."""
    found = _PHONE.search(prediction)
    return float(bool(found) and re.sub(r"\D", "", found.group()) == re.sub(r"\D", "", reference))


@METRICS.register("phone_digit_share")
def phone_digit_share(prediction: str, reference: str) -> float:
    """PhoneBook, graded: the share of the reference's digits that the answer's first XXX-XXX-XXXX
    has in the same places (0 when it has none). Shows how far a damaged memory is from the number."""
    found = _PHONE.search(prediction)
    gold = re.sub(r"\D", "", reference)
    if not found or not gold:
        return 0.0
    got = re.sub(r"\D", "", found.group())
    return sum(a == b for a, b in zip(got, gold)) / len(gold)


def normalize(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


@METRICS.register("exact_match")
def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


@METRICS.register("token_f1")
def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 over normalized tokens."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@METRICS.register("rouge_l")
def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 with the Porter stemmer (rouge-score), as the seed paper reports."""
    return _rouge().score(reference, prediction)["rougeL"].fmeasure


@METRICS.register("bleu")
def bleu(prediction: str, reference: str) -> float:
    """Sentence BLEU-4 (NLTK) with method-1 smoothing, as the seed paper computes it."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    pred, ref = prediction.lower().split(), reference.lower().split()
    if not pred or not ref:
        return 0.0
    return float(sentence_bleu([ref], pred, smoothing_function=SmoothingFunction().method1))
