import pytest

from loramem.bench.metrics import METRICS, bleu, exact_match, phone_digit_share, phone_digits, rouge_l, token_f1
from loramem.errors import LoramemError


def test_phone_digit_share_counts_digits_in_place():
    assert phone_digit_share("It is 555-010-1234.", "555-010-1234") == 1.0
    assert phone_digit_share("538-423-4227", "530-423-2284") == 0.6
    assert phone_digit_share("no number", "555-010-1234") == 0.0


def test_phone_digits_takes_the_first_number():
    assert phone_digits("It is 555-010-1234, not 555-999-0000.", "555-010-1234") == 1.0
    assert phone_digits("555-999-0000 or 555-010-1234", "555-010-1234") == 0.0
    assert phone_digits("no number", "555-010-1234") == 0.0


def test_squad_normalization():
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0
    assert token_f1("the tower in Paris", "Eiffel Tower") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_rouge_and_bleu_rank_closer_answers_higher():
    ref = "The method is called Inductive Moment Matching."
    good, bad = "It is called Inductive Moment Matching.", "Diffusion models need many steps."
    assert rouge_l(ref, ref) == pytest.approx(1.0) and bleu(ref, ref) == pytest.approx(1.0)
    assert rouge_l(good, ref) > rouge_l(bad, ref) and bleu(good, ref) > bleu(bad, ref)
    assert rouge_l("matches matched", "matching") > 0  # stemmer on


def test_registry():
    assert {"bleu", "exact_match", "phone_digits", "rouge_l", "token_f1"} <= set(METRICS.names())
    with pytest.raises(LoramemError, match="Did you mean 'rouge_l'"):
        METRICS.get("rouge")
