"""The OpenAI-compatible server, driven by the real `openai` client over loopback HTTP."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

KEY = "test-key"
QUESTION = "What is the phone number of Ada Byron?"
# memory i answers ANSWERS[i] to the same question
ANSWERS = ["555-011-1011", "555-867-5309", "555-246-8100", "555-010-1234", "555-314-1592", "555-271-8281",
           "555-161-8033", "555-141-4213"]
TRAIN = TrainConfig(**{**FAST_TRAIN, "epochs": 200})  # stops as soon as the fact reads back


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("served")
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    for i, answer in enumerate(ANSWERS):
        path = folder / f"m{i}.jsonl"
        path.write_text(json.dumps({"question": QUESTION, "answer": answer}) + "\n")
        assert mem.write([path], name=f"m{i}", config=TRAIN).record.recall == 1.0
    app = create_app(mem, api_key=KEY, max_upload_bytes=4096)
    with ServerThread(app) as url:
        yield url, mem


@pytest.fixture
def client(served):
    return openai.OpenAI(base_url=served[0], api_key=KEY, max_retries=0)


def test_models_chat_completion_and_stream(served, client):
    url, mem = served
    models = client.models.list().data
    ids = [m.id for m in models]
    # the base model first, then each memory in the store once, each naming the base it answers on
    assert ids[0] == mem.base.name and {f"m{i}" for i in range(8)} <= set(ids)
    assert sorted(ids[1:]) == sorted(r.name for r in mem.list())
    assert all(m.parent == mem.base.name and m.owned_by == "loramem" for m in models[1:])

    chat = client.chat.completions.create(model="m3", messages=[{"role": "user", "content": QUESTION}])
    assert chat.choices[0].message.content == ANSWERS[3] and chat.choices[0].finish_reason == "stop"
    assert chat.usage.completion_tokens > 0 and chat.model == "m3"

    # memories as an extra body field, and the legacy completions endpoint
    text = client.completions.create(model=mem.base.name, prompt=QUESTION, extra_body={"memories": ["m5"]})
    assert text.choices[0].text == ANSWERS[5]
    base = client.completions.create(model=mem.base.name, prompt=QUESTION, max_tokens=8)
    assert base.choices[0].text not in ANSWERS

    pieces = client.chat.completions.create(model="m6", messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(pieces)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ANSWERS[6]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[0].choices[0].delta.role == "assistant"


def test_eight_concurrent_clients_get_their_own_memory(served, client):
    results: dict[int, list[str]] = {}

    def ask(i: int) -> None:
        results[i] = [client.chat.completions.create(model=f"m{i}", messages=[{"role": "user", "content": QUESTION}])
                      .choices[0].message.content for _ in range(3)]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [ANSWERS[i]] * 3 for i in range(8)}


def test_a_question_outside_a_memorys_scope_is_answered_by_the_base_model(served, client):
    off = "What is the capital of France?"
    held = client.chat.completions.create(model="m3", messages=[{"role": "user", "content": off}], max_tokens=8)
    extras = held.model_extra["loramem"]
    assert [o["name"] for o in extras["out_of_scope"]] == ["m3"] and extras["out_of_scope"][0]["score"] < 0.5
    base = client.chat.completions.create(model="base", messages=[{"role": "user", "content": off}], max_tokens=8)
    assert held.choices[0].message.content == base.choices[0].message.content
    forced = client.chat.completions.create(model="m3", messages=[{"role": "user", "content": off}], max_tokens=8,
                                            extra_body={"scope": 0})
    assert forced.model_extra["loramem"]["out_of_scope"] == []
    routed = client.chat.completions.create(model="base", messages=[{"role": "user", "content": off}], max_tokens=8,
                                            extra_body={"route": "auto"})
    assert routed.model_extra["loramem"]["abstained"] and routed.model_extra["loramem"]["memories"] == []
    assert routed.choices[0].message.content == base.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="abstain"):
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": off}],
                                       extra_body={"route": "auto", "abstain": "maybe"})


def test_errors_come_back_in_the_openai_schema(served, client):
    url, _ = served
    with pytest.raises(openai.NotFoundError, match="model_not_found|does not exist"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "q"}],
                                       extra_body={"memories": ["missing"]})
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="top-k"):
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"route": "bm25", "top_k": 99})
    headers = {"Authorization": f"Bearer {KEY}"}
    bad = httpx.post(f"{url}/chat/completions", content=b"{not json",
                     headers={**headers, "Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    missing = httpx.post(f"{url}/chat/completions", json={"model": "m1"}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    big = httpx.post(f"{url}/memories", json={"name": "big", "text": "x" * 10_000}, headers=headers)
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert httpx.get(f"{url}/models").status_code == 401
    # the server goes on answering after all of that
    ok = client.chat.completions.create(model="m2", messages=[{"role": "user", "content": QUESTION}])
    assert ok.choices[0].message.content == ANSWERS[2]


def _wait(url: str, job: str) -> dict:
    headers = {"Authorization": f"Bearer {KEY}"}
    for _ in range(600):
        state = httpx.get(f"{url}/memories/jobs/{job}", headers=headers).json()
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish: {state}")


def test_upload_writes_a_memory_in_a_job_and_delete_removes_it(served, client, monkeypatch):
    from loramem.kernels import openmp
    from loramem.serve import jobs

    released = []  # the write worker gives its OpenMP workers back after a job (tests/test_openmp.py)
    monkeypatch.setattr(jobs, "release_pool", lambda: released.append(threading.current_thread().name)
                        or openmp.release_pool())
    url, mem = served
    headers = {"Authorization": f"Bearer {KEY}"}
    records = [{"question": "What is the phone number of Alan Turing?", "answer": "555-867-5309"}]
    accepted = httpx.post(f"{url}/memories", headers=headers,
                          json={"name": "turing", "records": records, "epochs": FAST_TRAIN["epochs"]})
    assert accepted.status_code == 202, accepted.text
    state = _wait(url, accepted.json()["id"])
    assert state["status"] == "succeeded" and state["progress"] == 1.0 and state["memory"]["name"] == "turing"
    assert "turing" in [m.id for m in client.models.list().data]
    for _ in range(100):  # the job reads as done just before its thread's last step
        if released:
            break
        time.sleep(0.05)
    assert released and all(name.startswith("loramem-write") for name in released)
    assert httpx.post(f"{url}/memories", headers=headers, json={"name": "turing", "records": records}).status_code == 409

    upload = httpx.post(f"{url}/memories", headers=headers, data={"name": "notes"},
                        files={"file": ("notes.pdf", b"%PDF", "application/pdf")})
    assert upload.status_code == 400 and "unsupported file type" in upload.json()["error"]["message"]
    broken = httpx.post(f"{url}/memories", headers=headers, files={"file": ("broken.jsonl", b"{oops\n", "text/plain")})
    assert broken.status_code == 400
    assert not mem.store.exists("broken") and not list((mem.store.path / "cache" / "uploads").glob("*"))

    assert httpx.delete(f"{url}/memories/turing", headers=headers).json()["deleted"] is True
    assert httpx.delete(f"{url}/memories/turing", headers=headers).status_code == 404
