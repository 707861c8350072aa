"""PhoneBook in the seed paper's format, generated for any size and seed.

"What is the phone number of NAME?" → "XXX-XXX-XXXX", with unique invented names.
"""

from __future__ import annotations

import random

from loramem.supervision import Example

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
    names = [f"{f} {l}" for f in _FIRST for l in _LAST]
    if n > len(names):
        raise ValueError(f"at most {len(names)} unique names; asked for {n}")
    rng = random.Random(seed)
    chosen = rng.sample(names, n)
    return [
        Example(
            prompt=f"What is the phone number of {name}?",
            target=f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            kind="record",
        )
        for name in chosen
    ]
