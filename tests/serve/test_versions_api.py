"""Updating over HTTP: a job makes the next version, the server answers with it unless a request
pins an older one, versions are listed and rolled back, and bad updates are refused at once."""

from __future__ import annotations

import httpx
import openai
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

ADA = "What is the phone number of Ada Byron?"
ALAN = "What is the phone number of Alan Turing?"


@pytest.fixture
def served(tmp_path, tiny_model_dir, facts_jsonl):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    assert mem.write([facts_jsonl], name="facts", config=TrainConfig(**FAST_TRAIN)).record.recall == 1.0
    with ServerThread(create_app(mem)) as url:
        yield url, mem


def _wait(url: str, job: str) -> dict:
    import time

    for _ in range(1200):
        state = httpx.get(f"{url}/memories/jobs/{job}").json()
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish: {state}")


def test_update_pin_list_and_roll_back_over_http(served):
    url, mem = served
    client = openai.OpenAI(base_url=url, api_key="none")

    def ask(model: str) -> str:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": ADA}], max_tokens=12)
        return reply.choices[0].message.content

    accepted = httpx.post(f"{url}/memories/facts/versions", json={"records": [{"question": ADA, "answer": "555-777-0001"}]})
    assert accepted.status_code == 202 and accepted.json()["object"] == "memory.update"
    state = _wait(url, accepted.json()["id"])
    assert state["status"] == "succeeded", state
    assert state["memory"]["version"] == 2 and state["memory"]["recall"] == 1.0
    assert ask("facts") == "555-777-0001" and ask("facts@1") == "555-010-1234"
    listed = httpx.get(f"{url}/memories/facts/versions").json()["data"]
    assert [(v["version"], v["current"]) for v in listed] == [(1, False), (2, True)]
    assert listed[1]["change"]["superseded"] == 1
    assert httpx.post(f"{url}/memories/facts/rollback", json={"version": 1}).json()["version"] == 1
    assert ask("facts") == "555-010-1234"

    missing = httpx.post(f"{url}/memories/facts/rollback", json={"version": 9})
    assert missing.status_code == 404 and "no version 9" in missing.json()["error"]["message"]
    assert httpx.post(f"{url}/memories/nope/versions", json={"records": []}).status_code == 404
    not_held = httpx.post(f"{url}/memories/facts/versions", json={"remove": [{"question": "Who is Zed?", "answer": "1"}]})
    assert not_held.status_code == 400 and "holds no record" in not_held.json()["error"]["message"]
    assert httpx.post(f"{url}/memories/facts/versions", json={}).status_code == 400
    assert [v.version for v in mem.log("facts")] == [1, 2]  # the refused updates changed nothing
    with pytest.raises(openai.NotFoundError):
        ask("facts@7")


def test_an_update_short_of_its_target_fails_its_job_and_changes_nothing(served):
    url, mem = served
    change = {"records": [{"question": "What is the phone number of Edsger Dijkstra?", "answer": "555-314-1592"},
                          {"question": ADA, "answer": "555-777-0001"}]}
    for bad in (0, "many", True):
        refused = httpx.post(f"{url}/memories/facts/versions", json={**change, "epochs": bad})
        assert refused.status_code == 400 and "epochs must be a positive integer" in refused.json()["error"]["message"]
    assert httpx.post(f"{url}/memories/facts/versions", json={**change, "accept_below_target": "yes"}).status_code == 400
    accepted = httpx.post(f"{url}/memories/facts/versions", json={**change, "epochs": 1})
    assert accepted.status_code == 202
    state = _wait(url, accepted.json()["id"])
    assert state["status"] == "failed" and state["error"].startswith("update of 'facts' not committed: ")
    assert "version 1 stays current" in state["error"]
    listed = httpx.get(f"{url}/memories/facts/versions").json()["data"]
    assert [(v["version"], v["current"]) for v in listed] == [(1, True)]
