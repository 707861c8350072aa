"""Benchmark datasets by name: PhoneBook, CounterFact, PaperQA, and packaged real facts."""

from loramem.bench.datasets import counterfact, packaged, paperqa, phonebook  # noqa: F401  (registration)
from loramem.bench.datasets.base import DATASETS, Dataset, Document, Question
from loramem.bench.datasets.phonebook import phonebook as generate_phonebook

__all__ = ["DATASETS", "Dataset", "Document", "Question", "generate_phonebook"]
