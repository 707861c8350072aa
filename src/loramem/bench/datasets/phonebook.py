"""PhoneBook: the seed paper's files, or generated for any size and seed.

"What is the phone number of NAME?" → "XXX-XXX-XXXX". The paper's files hold one `text` column,
`Question: What is the phone number of NAME? Answer: XXX-XXX-XXXX`; sizes are in Llama-3 tokens
(1K = 48 entries). Scored by the digits of the first XXX-XXX-XXXX in the answer.
"""

from __future__ import annotations

import random

from loramem.bench.datasets.base import DATASETS, Dataset, Question, data_dir
from loramem.errors import LoramemError
from loramem.supervision.examples import Example
from loramem.supervision.sources import read_source
from loramem.supervision.stored import RECORD

_FIRST = (
    "Ada Alma Anton Aria Basil Beatrix Bram Celia Cyrus Dalia Dorian Edith Elias Ember Felix Freya "
    "Gemma Gideon Greta Hana Hugo Ida Ines Ivo Jada Jonas Juno Kai Klara Lars Lena Leon Lia Malin "
    "Marco Mila Nico Nora Odile Olaf Pia Quentin Rhea Rufus Saga Silas Tessa Theo Uma Vera Viggo "
    "Wren Xavier Yara Yves Zara Zeno"
).split()
_LAST = (
    "Abbott Albers Baptiste Barros Becker Brandt Calloway Castel Dahl Delgado Engel Esposito Falk "
    "Ferreira Gallo Geller Hahn Holm Ibarra Ingram Jansen Jovanovic Kaur Keller Laine Lindgren "
    "Mancini Moreau Nakamura Novak Okafor Olsen Pereira Petrov Quinn Rahman Rossi Sandoval Sato "
    "Schultz Tanaka Toivonen Ueda Varga Vogel Weiss Winter Yilmaz Young Zamora Ziegler"
).split()


def phonebook(n: int, seed: int = 0) -> list[Example]:
    """`n` entries with unique names (up to ~2,900 from the built-in name lists)."""
    names = [f"{first} {last}" for first in _FIRST for last in _LAST]
    if n > len(names):
        raise ValueError(f"at most {len(names)} unique names; asked for {n}")
    rng = random.Random(seed)
    chosen = rng.sample(names, n)
    return [
        Example(
            prompt=f"What is the phone number of {name}?",
            target=f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            kind=RECORD,
        )
        for name in chosen
    ]


@DATASETS.register("phonebook")
def load_phonebook(size: str | None = None, n: int | None = None, seed: int = 0, data: str | None = None) -> Dataset:
    """The paper's `phonebook_qa_{size}.csv` (e.g. size="1K"), or `n` generated entries."""
    if size is not None:
        records = read_source(data_dir(data) / "pb_cf" / f"phonebook_qa_{size}.csv").records
        if n is not None:
            records = records[:n]
    elif n is not None:
        records = phonebook(n, seed)
    else:
        raise LoramemError("phonebook needs a size (the paper's files: 1K, 2K, ...) or n entries to generate")
    return Dataset("phonebook", records=records, questions=[Question(r.prompt, r.target) for r in records],
                   metric="phone_digits")
