"""End to end on the bundled SmolLM2-135M-Instruct: the default a user gets. Slower; runs in CI."""

from __future__ import annotations

import json
import random

import pytest

from loramem import Memory
from loramem.models.default import default_model_folder

pytestmark = pytest.mark.real_model

FIRST = ["Maren", "Osric", "Talia", "Bruno", "Nadia", "Eamon", "Ilka", "Corwin", "Petra", "Yusuf"]
LAST = ["Quillon", "Brandt", "Okafor", "Severin", "Lindahl", "Moreau", "Tanaka", "Halvorsen"]


def phonebook(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names = rng.sample([f"{first} {last}" for first in FIRST for last in LAST], n)
    return [
        {"question": f"What is the phone number of {name}?",
         "answer": f"{rng.randint(200, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"}
        for name in names
    ]


def test_default_model_is_cached_as_safetensors():
    folder = default_model_folder()
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert default_model_folder() == folder


def test_phonebook_written_with_defaults_is_answered_back(tmp_path):
    entries = phonebook(8, seed=7)
    path = tmp_path / "phonebook.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    mem = Memory(store=tmp_path / "store", progress=False)
    result = mem.write([path], name="pb")
    assert result.record.recall >= 0.9
    with_memory = [mem.ask(e["question"], memories=["pb"]).answer for e in entries]
    without = [mem.ask(e["question"]).answer for e in entries]
    hits = sum(e["answer"] in a for e, a in zip(entries, with_memory))
    base_hits = sum(e["answer"] in a for e, a in zip(entries, without))
    assert hits >= 7, with_memory
    assert base_hits == 0, without


def test_mixed_supervision_from_a_document(tmp_path):
    """The local generator on the real model: every format yields examples drawn from the document."""
    doc = tmp_path / "harbour.md"
    doc.write_text(
        "# The Harbour of Kessreth\n\nThe harbour of Kessreth was built in 1642 by the merchant Ilse Varnhagen. "
        "It has three stone piers and a lighthouse painted green. Ships from Kessreth carried salt and amber "
        "to the northern ports. In 1710 a storm destroyed the eastern pier, which was rebuilt in granite.\n"
    )
    mem = Memory(store=tmp_path / "store", progress=False)
    sup = mem.supervision([doc], format="qa:4,summary,rewrite,raw", generator="local")
    kinds = sup.kinds
    assert kinds.get("raw") == 1 and kinds.get("qa", 0) + kinds.get("cloze", 0) >= 4, kinds
    assert kinds.get("summary", 0) + kinds.get("rewrite", 0) >= 1, (kinds, sup.notes)
    text = doc.read_text()
    assert all(e.chunk and e.chunk.split()[0] in text for e in sup.examples)
    assert any(w in e.target for e in sup.examples for w in ("1642", "Varnhagen", "amber"))
