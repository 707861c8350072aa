"""The model matrix: each family loramem supports, as a tiny random model built in code
(loramem.models.tiny.FAMILIES), written to alone and batched, in each placement, asked in every
mode (kv through a real kvpress press), merged by every method, updated, served with concurrent
requests, and exported for vLLM and llama.cpp (or refused by name where llama.cpp's conversion of
the family is not known)."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import LoramemError
from loramem.export import export_vllm
from loramem.export_gguf import ARCHITECTURES, export_gguf
from loramem.merges import MERGES
from loramem.models.tiny import FAMILIES, build_tiny_model
from loramem.modes import MODES
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

ADA, NUMBER = "What is the phone number of Ada Byron?", "555-010-1234"
# FAST_TRAIN's learning rate overshoots on some families' random initialisations (OLMo 2 read back
# nothing at 1e-2); half of it reads every family's facts back within 50 epochs
TRAIN = {**FAST_TRAIN, "lr": 5e-3, "epochs": 200}


def _records(path, *pairs):
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_is_written_asked_merged_updated_served_and_exported(family, tmp_path):
    mem = Memory(store=tmp_path / "store", model=str(build_tiny_model(tmp_path / family, family=family)),
                 progress=False)
    facts = _records(tmp_path / "facts.jsonl", (ADA, NUMBER), ("What is the phone number of Alan Turing?", "555-867-5309"))
    fast = TrainConfig(**TRAIN)
    assert mem.write([facts], name="facts", config=fast).record.recall == 1.0
    parts = [_records(tmp_path / f"part{i}.jsonl", (f"What is the code of item {i}?", f"{i}{i}{i}-{i}")) for i in (1, 2)]
    assert [r.record.recall for r in mem.write_collection(parts, "parts", batch_memories=2, config=fast)] == [1.0, 1.0]
    for placement, layers in (("ffn", "all"), ("attention", "0")):
        written = mem.write([parts[0]], name=f"{placement}-only", config=TrainConfig(
            **{**TRAIN, "epochs": 1, "target_modules": placement, "layers": layers}))
        targets = set(json.loads((mem.store.adapter_path(written.record) / "adapter_config.json").read_text())[
            "target_modules"])
        packed_or_not = {"ffn": {"gate_proj", "gate_up_proj"}, "attention": {"q_proj", "qkv_proj"}}[placement]
        assert targets & packed_or_not  # Phi-3's packed layers are in its placements

    assert mem.ask(ADA, memories=["facts"]).answer.strip() == NUMBER
    for mode in MODES.names():
        assert isinstance(mem.ask(ADA, memories=["facts"], mode=mode, max_new_tokens=4).answer, str)
    kv = mem.ask(ADA, memories=["facts"], mode="kv", max_new_tokens=4, mode_options={"compression": 0.5})
    assert kv.kv["kept_tokens"] < kv.kv["document_tokens"]  # a press evicted half the document's cache
    members = ["parts-part1", "parts-part2"]
    for merge in MERGES.names():
        assert isinstance(mem.ask(ADA, memories=members, merge=merge, max_new_tokens=4).answer, str)

    change = _records(tmp_path / "change.jsonl", (ADA, "555-777-0001"))
    assert mem.update("facts", [change]).recall == 1.0
    assert mem.ask(ADA, memories=["facts"]).answer.strip() == "555-777-0001"

    answers: list[str] = []
    with ServerThread(create_app(mem)) as url, httpx.Client(timeout=120) as client:
        def ask(memory: str) -> None:
            reply = client.post(f"{url}/completions", json={"model": memory, "prompt": ADA, "max_tokens": 24})
            answers.append(reply.json()["choices"][0]["text"].strip())

        threads = [threading.Thread(target=ask, args=(m,)) for m in ("facts", "facts", members[0])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers.count("555-777-0001") >= 2

    assert set(export_vllm(mem.store, tmp_path / "vllm", ["facts"]).folders) == {"facts"}
    if family in ARCHITECTURES:
        assert export_gguf(mem.store, mem.base, tmp_path / "gguf", ["facts"]).files["facts"].exists()
    else:
        with pytest.raises(LoramemError, match=f"not {family!r}"):
            export_gguf(mem.store, mem.base, tmp_path / "gguf", ["facts"])
