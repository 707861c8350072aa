"""The web page's JSON endpoints and the key rule, over real HTTP on the tiny model (no browser)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.modes import MODES
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

KEY = "page-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "What is the phone number of Ada Byron?"


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("pages")
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    facts = folder / "ada.jsonl"
    facts.write_text(json.dumps({"question": QUESTION, "answer": "555-010-1234"}) + "\n")
    mem.write([facts], name="ada", config=TrainConfig(**FAST_TRAIN))
    mem.write(documents={"notes.md": "# Notes\n\nThe lighthouse keeper's name is Elsa. She paints the tower blue."},
              name="notes", format="raw", config=TrainConfig(**{**FAST_TRAIN, "epochs": 2}))
    with ServerThread(create_app(mem, api_key=KEY, max_upload_bytes=8192)) as url:
        yield url.removesuffix("/v1"), mem


def get(root: str, path: str, **kw) -> httpx.Response:
    return httpx.get(root + path, headers=AUTH, timeout=60, **kw)


def test_the_page_is_public_but_nothing_of_the_store_is(served):
    root, _ = served
    page = httpx.get(root + "/")
    assert page.status_code == 200 and '<script type="module" src="/web/app.js">' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert httpx.get(root + "/web/app.js").status_code == 200
    assert httpx.get(root + "/web/nope.js").status_code == 404
    assert "ada" not in page.text + httpx.get(root + "/web/app.js").text
    for path in ("/v1/loramem/info", "/v1/loramem/memories", "/v1/loramem/memories/ada", "/v1/loramem/modes",
                 "/v1/loramem/studies", "/v1/loramem/datasheet", "/v1/loramem/jobs", "/web/../v1/models"):
        assert httpx.get(root + path).status_code == 401, path
        wrong = httpx.get(root + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.post(root + "/v1/loramem/ask", json={"question": QUESTION, "mode": "base"}).status_code == 401


def test_memories_with_sizes_settings_sources_and_supervision(served):
    root, mem = served
    rows = {r["name"]: r for r in get(root, "/v1/loramem/memories").json()["data"]}
    assert set(rows) == {"ada", "notes"}
    ada = rows["ada"]
    folder = mem.store.path / mem.store.get("ada").folder
    assert ada["size_bytes"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) > 1000
    assert ada["examples_by_kind"] == {"record": 1} and ada["recall"] == 1.0 and "document" not in ada
    page = get(root, "/v1/loramem/memories/ada").json()
    assert page["document"] == f"{QUESTION} 555-010-1234" and page["config"]["placement"]["target_modules"] == "all-linear"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {f["name"] for f in page["files"]}
    sample = get(root, "/v1/loramem/memories/ada/supervision").json()
    assert sample["complete"] and sample["data"] == [
        {"prompt": QUESTION, "target": "555-010-1234", "kind": "record", "chunk": "", "origin": "ada.jsonl"}]
    assert sample["version"] == 1
    # a document's examples, as its version's folder keeps them
    notes = get(root, "/v1/loramem/memories/notes/supervision?limit=2").json()
    assert notes["complete"] and notes["total"] == mem.store.get("notes").examples and len(notes["data"]) <= 2
    assert all(e["kind"] == "raw" and e["target"] for e in notes["data"])
    missing = get(root, "/v1/loramem/memories/nope")
    assert missing.status_code == 404 and "no memory named 'nope'" in missing.json()["error"]["message"]
    assert get(root, "/v1/loramem/memories/nope/supervision").status_code == 404


def test_modes_come_from_the_registry(served):
    root, _ = served
    body = get(root, "/v1/loramem/modes").json()
    assert [m["name"] for m in body["data"]] == MODES.names()
    kv = next(m for m in body["data"] if m["name"] == "kv")
    options = {o["name"]: o for o in kv["options"]}
    assert options["compression"]["type"] == "float" and 0 <= options["compression"]["default"] <= 1
    assert "decode" in options["adapter_phase"]["choices"] and "seed" not in options  # internal fields stay hidden
    assert next(m for m in body["data"] if m["name"] == "base")["needs_memory"] is False
    assert "auto" in body["routers"] and "ties" in body["merges"]


def test_ask_one_mode_reports_its_costs(served):
    root, _ = served
    ask = lambda body: httpx.post(root + "/v1/loramem/ask", json=body, headers=AUTH, timeout=120)  # noqa: E731
    a = ask({"question": QUESTION, "mode": "parametric", "memories": ["ada"], "max_tokens": 16}).json()
    assert a["answer"] == "555-010-1234" and a["prompt_tokens"] > 0 and a["seconds"] > 0 and a["kv"] is None
    kv = ask({"question": QUESTION, "mode": "kv", "memories": ["notes"], "max_tokens": 8,
              "options": {"compression": 0.5, "adapter_phase": "decode", "press": "knorm"}}).json()
    assert 0 < kv["kv"]["kept_tokens"] < kv["kv"]["document_tokens"] and kv["kv"]["cache_bytes"] > 0
    routed = ask({"question": QUESTION, "mode": "parametric", "route": "bm25", "top_k": 2, "max_tokens": 8}).json()
    assert {r["name"] for r in routed["routes"]} == {"ada", "notes"} and all("score" in r for r in routed["routes"])
    assert not routed["abstained"]
    unheld = {"question": "Which river flows through Vienna?", "mode": "parametric", "route": "bm25", "max_tokens": 8}
    assert ask(unheld).json()["abstained"] and not ask({**unheld, "abstain": "never"}).json()["abstained"]
    bad = ask({"question": QUESTION, "mode": "kv", "memories": ["ada"], "options": {"rho": 0.5}})
    assert bad.status_code == 400 and "takes no option rho" in bad.json()["error"]["message"]
    assert ask({"question": QUESTION, "mode": "parametrc", "memories": ["ada"]}).json()["error"]["message"] \
        .startswith("unknown answer mode 'parametrc'. Did you mean 'parametric'?")
    assert ask({"question": QUESTION, "mode": "parametric", "memories": ["ghost"]}).status_code == 404
    assert ask({"question": QUESTION, "mode": "base", "colour": "red"}).status_code == 400


def test_a_question_for_a_memory_being_written_is_refused_and_the_write_goes_on(served):
    root, mem = served
    rows = [{"question": f"What is the phone number of person {i}?", "answer": f"555-{i:03d}-{i:04d}"} for i in range(40)]
    accepted = httpx.post(root + "/v1/memories", json={"name": "big", "records": rows, "epochs": 30}, headers=AUTH)
    assert accepted.status_code == 202
    asked = httpx.post(root + "/v1/loramem/ask", headers=AUTH, timeout=60,
                       json={"question": QUESTION, "mode": "parametric", "memories": ["big"]})
    assert asked.status_code == 409 and asked.json()["error"]["code"] == "memory_being_written"
    # other memories answer meanwhile, and the job API lists the write
    other = httpx.post(root + "/v1/loramem/ask", headers=AUTH, timeout=60,
                       json={"question": QUESTION, "mode": "parametric", "memories": ["ada"], "max_tokens": 16})
    assert other.json()["answer"] == "555-010-1234"
    assert accepted.json()["id"] in [j["id"] for j in get(root, "/v1/loramem/jobs").json()["data"]]
    for _ in range(1200):
        state = get(root, f"/v1/memories/jobs/{accepted.json()['id']}").json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded" and mem.store.exists("big")
    mem.forget("big")


def test_studies_and_datasheet(served, monkeypatch, tmp_path):
    root, mem = served
    listed = get(root, "/v1/loramem/studies").json()
    paths = [s["path"] for s in listed["data"]]
    assert "kv-paperqa/kv-report.md" in paths and not any("/store/" in p or "/documents/" in p for p in paths)
    report = get(root, "/v1/loramem/studies/kv-paperqa/kv-report.md").json()
    assert "<table>" in report["html"] and 'src="rouge-vs-rho.png"' in report["html"]
    png = get(root, "/v1/loramem/studies/kv-paperqa/rouge-vs-rho.png")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    for bad in ("../pyproject.toml", "kv-paperqa/kv-results.jsonl", "nope.md"):
        assert get(root, f"/v1/loramem/studies/{bad}").status_code == 404, bad
    sheet = get(root, "/v1/loramem/datasheet").json()
    assert sheet["model"] == mem.base.name and sheet["defaults"]["8"] > 0
    quick = next(c for c in sheet["committed"] if c["path"] == "datasheet-quick")
    assert quick["plot"] == "datasheet-quick/capacity.png" and quick["sheet"]["ranks"][0]["rank"] == 1

    # a report's raw HTML is shown as text, never run
    (tmp_path / "evil.md").write_text("# Evil\n\n<script>alert(1)</script> [x](javascript:alert(1))\n")
    monkeypatch.setenv("LORAMEM_BENCHMARKS", str(tmp_path))
    html = get(root, "/v1/loramem/studies/evil.md").json()["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and 'href="javascript' not in html
    # an installed package has no benchmarks folder: said so, not an error page
    monkeypatch.setenv("LORAMEM_BENCHMARKS", str(tmp_path / "absent"))
    gone = get(root, "/v1/loramem/studies").json()
    assert gone["data"] == [] and "no benchmarks folder found" in gone["message"]
    assert get(root, "/v1/loramem/studies/kv-paperqa/README.md").status_code == 404
    assert get(root, "/v1/loramem/datasheet").json()["committed"] == []


def test_info_says_whether_decoding_runs_on_the_kernel(served):
    from loramem.kernels.few_rows import status

    root, mem = served
    info = get(root, "/v1/loramem/info").json()
    assert info["base_model"] == mem.base.name and info["decode_kernel"] == status()
    assert info["decode_kernel"] == "on" or info["decode_kernel"].startswith("off")
