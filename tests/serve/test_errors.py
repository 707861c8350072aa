"""A memory whose adapter file is corrupt answers a clear 500, and the server goes on serving the others."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

QUESTION = "What is the phone number of Ada Byron?"
ANSWERS = {"alpha": "555-867-5309", "omega": "555-246-8100"}  # omega's adapter file gets truncated
TRAIN = TrainConfig(**{**FAST_TRAIN, "epochs": 200})  # stops as soon as the fact reads back


@pytest.fixture(scope="module")
def url(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("corrupt")
    writer = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    for name, answer in ANSWERS.items():
        path = folder / f"{name}.jsonl"
        path.write_text(json.dumps({"question": QUESTION, "answer": answer}) + "\n")
        assert writer.write([path], name=name, config=TRAIN).record.recall == 1.0
    weights = writer.store.adapter_path(writer.store.get("omega")) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # a fresh Memory, as a server started on this store would have: no adapter cached from the writes
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    with ServerThread(create_app(mem)) as url:
        yield url


def _chat(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": QUESTION}], **extra}


def _assert_names_the_memory_and_the_fix(error: dict) -> None:
    assert error["type"] == "server_error", error
    assert "omega" in error["message"] and "loramem rm omega" in error["message"], error["message"]


def test_a_corrupt_adapter_answers_500_and_the_other_memories_still_answer(url):
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    for _ in range(2):  # the failure is not cached as a loaded adapter, nor does it break the next request
        broken = httpx.post(f"{url}/chat/completions", json=_chat("omega"), timeout=60)
        assert broken.status_code == 500, broken.text
        _assert_names_the_memory_and_the_fix(broken.json()["error"])
        with pytest.raises(openai.InternalServerError, match="omega"):
            client.chat.completions.create(**_chat("base", extra_body={"memories": ["omega"]}))
        chat = client.chat.completions.create(**_chat("alpha"))
        assert chat.choices[0].message.content == ANSWERS["alpha"]

    # streamed: the status line has gone before the adapter loads, so the error comes as an event
    with httpx.stream("POST", f"{url}/chat/completions", json=_chat("omega", stream=True), timeout=60) as events:
        data = [json.loads(line[6:]) for line in events.iter_lines() if line.startswith("data: {")]
    errors = [d["error"] for d in data if "error" in d]
    assert len(errors) == 1
    _assert_names_the_memory_and_the_fix(errors[0])
    streamed = client.chat.completions.create(**_chat("alpha"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == ANSWERS["alpha"]
