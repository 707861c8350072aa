"""The web page in a real browser: Debian's headless Chromium against the real server on the tiny model.

Skipped where /usr/bin/chromium is absent, except under CI=true, where that fails (.ci/run installs
it). Each step saves a screenshot into the test's temporary folder (`screens/`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.serve import ServerThread, create_app
from loramem.training import TrainConfig

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEY = "web-key"
LIMIT = 64 * 1024
ADA = "What is the phone number of Ada Byron?"
FACTS = [{"question": f"What is the phone number of person {i}?", "answer": f"555-{i:03d}-{1000 + i}"} for i in range(32)]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs it (apt-get install chromium)")
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("web")
    mem = Memory(store=folder / "store", model=str(tiny_model_dir), progress=False)
    facts = folder / "ada.jsonl"
    facts.write_text(json.dumps({"question": ADA, "answer": "555-010-1234"}) + "\n")
    mem.write([facts], name="ada", config=TrainConfig(**FAST_TRAIN))
    with ServerThread(create_app(mem, api_key=KEY, max_upload_bytes=LIMIT)) as url:
        yield url.removesuffix("/v1"), mem


@pytest.fixture
def page(browser, served, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.shots = tmp_path / "screens"
    tab.shots.mkdir()
    yield tab
    context.close()
    assert not errors, f"the page raised: {errors}"


def shot(tab, name: str) -> None:
    tab.screenshot(path=str(tab.shots / f"{name}.png"), full_page=True)


def unlock(tab, root: str) -> None:
    tab.goto(root + "/")
    tab.fill("#key-input", KEY)
    tab.click("#key-submit")
    tab.wait_for_selector("#memories")


def ask(tab) -> dict[str, str]:
    """Click Ask and wait for that run's answers; returns each mode's card state."""
    run = int(tab.get_attribute("#answers", "data-run") or 0) + 1
    tab.click("#ask-button")
    tab.wait_for_selector(f'#answers[data-run="{run}"][data-state="done"]', timeout=300_000)
    return {c.get_attribute("data-mode"): c.get_attribute("data-state") for c in tab.query_selector_all(".answer")}


def fact(tab, mode: str, key: str) -> str:
    return tab.inner_text(f'.answer[data-mode="{mode}"] dd[data-key="{key}"]')


def test_key_unknown_memory_and_refused_uploads(page, served):
    root, mem = served
    page.goto(root + "/")
    page.wait_for_selector("#key-dialog[open]")
    assert "ada" not in page.content()  # nothing of the store before the key
    shot(page, "01-key-asked")
    page.fill("#key-input", "wrong")
    page.click("#key-submit")
    page.wait_for_selector("#key-error:not([hidden])")
    assert "refused" in page.inner_text("#key-error") and "HTTP 401" in page.inner_text("#key-error")
    assert "ada" not in page.content()
    shot(page, "02-wrong-key")
    page.fill("#key-input", KEY)
    page.click("#key-submit")
    page.wait_for_selector('#memories tr[data-name="ada"]')

    page.goto(root + "/#/memory/nope")
    page.wait_for_selector(".error")
    assert "no memory named 'nope'" in page.inner_text(".error") and "HTTP 404" in page.inner_text(".error")
    shot(page, "03-unknown-memory")

    page.goto(root + "/#/write")
    page.set_input_files("#files", files=[{"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"}])
    page.click("#write-button")
    page.wait_for_selector("#write-message .error")
    assert "unsupported file type" in page.inner_text("#write-message") and "HTTP 400" in page.inner_text("#write-message")
    page.set_input_files("#files", files=[{"name": "huge.txt", "mimeType": "text/plain", "buffer": b"word " * LIMIT}])
    page.click("#write-button")
    page.wait_for_function("() => document.querySelector('#write-message').innerText.includes('413')")
    assert "exceeds the limit" in page.inner_text("#write-message")
    shot(page, "04-upload-over-the-limit")
    assert [r.name for r in mem.list()] == ["ada"]  # nothing written, nothing lost
    assert not list((mem.store.path / "cache" / "uploads").glob("*"))


def test_upload_progress_ask_side_by_side_and_delete(page, served):
    root, mem = served
    unlock(page, root)
    page.goto(root + "/#/write")
    table = "".join(json.dumps(r) + "\n" for r in FACTS).encode()
    page.set_input_files("#files", files=[{"name": "facts.jsonl", "mimeType": "application/json", "buffer": table}])
    page.fill("#name", "facts")
    page.fill("#rank", "4")
    page.fill("#epochs", "60")
    page.click("#write-button")
    page.wait_for_selector('.job-card[data-status="running"]')
    page.wait_for_function("() => parseFloat(document.querySelector('.bar-fill').style.width) > 0")
    assert "epoch" in page.inner_text(".job-status")
    shot(page, "05-write-progress")

    # a question while the write runs: answered from the memories already written, the write goes on
    page.goto(root + "/#/ask")
    page.wait_for_selector("#jobs-banner:not([hidden])")
    assert "Writing facts" in page.inner_text("#jobs-banner")
    page.fill("#question", ADA)
    states = ask(page)
    assert "A write is running (facts)" in page.inner_text("#ask-message")
    assert states["base"] == "done" and states["parametric"] == "done"
    assert page.inner_text('.answer[data-mode="parametric"] pre') == "555-010-1234"
    shot(page, "06-ask-during-the-write")
    page.goto(root + "/#/write")
    page.wait_for_selector("#write-result", timeout=600_000)
    recall = mem.store.get("facts").recall
    assert page.inner_text("#write-result .recall") == (f"{100 * recall:.0f}%" if recall in (0, 1) else f"{100 * recall:.1f}%")
    assert "32 examples, rank 4" in page.inner_text("#write-result")
    shot(page, "07-written-with-recall")

    page.goto(root + "/#/memories")
    page.wait_for_selector('#memories tr[data-name="facts"]')
    assert [r.get_attribute("data-name") for r in page.query_selector_all("#memories tbody tr")] == ["ada", "facts"]
    page.click('#memories th[data-key="name"]')  # name, descending
    assert [r.get_attribute("data-name") for r in page.query_selector_all("#memories tbody tr")] == ["facts", "ada"]
    assert page.inner_text('tr[data-name="facts"] td[data-key="examples"]') == "32 (record 32)"
    page.fill("#filter", "fact")
    assert [r.get_attribute("data-name") for r in page.query_selector_all("#memories tbody tr")] == ["facts"]
    assert page.inner_text("#memory-count") == "1 of 2 memories"
    shot(page, "08-memories-sorted-filtered")

    page.click('a[href="#/memory/facts"]')
    page.wait_for_selector("#supervision table")
    assert page.inner_text('#placement dd[data-key="target modules"]') == "all-linear"
    assert page.inner_text('#placement dd[data-key="rank"]') == "4"
    assert f"{FACTS[0]['question']} {FACTS[0]['answer']}" in page.inner_text("#sources pre")
    rows = page.query_selector_all("#supervision tbody tr")
    assert len(rows) == 20 and [c.inner_text() for c in rows[0].query_selector_all("td")] == \
        ["record", FACTS[0]["question"], FACTS[0]["answer"], "facts.jsonl"]
    shot(page, "09-memory-page")

    page.click("text=Ask it")
    page.wait_for_selector('input[name="memory"][value="facts"]:checked')
    page.fill("#question", FACTS[0]["question"])
    page.eval_on_selector("#opt-compression", "e => { e.value = '0.75'; e.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#opt-compression-value") == "0.75"
    page.select_option("#opt-adapter_phase", "decode")
    states = ask(page)
    modes = [m["name"] for m in page.evaluate("fetch('/v1/loramem/modes', {headers: {Authorization: 'Bearer "
                                             + KEY + "'}}).then(r => r.json()).then(b => b.data)")]
    assert set(states) == set(modes) and set(states.values()) == {"done"}, states
    tokens = {m: int(fact(page, m, "prompt tokens").replace(",", "")) for m in modes}
    assert tokens["icl"] > tokens["base"] > 0 and all(fact(page, m, "latency").endswith(" s") for m in modes)
    kept, _, total = fact(page, "kv", "document tokens kept").replace(",", "").split()[:3]
    assert 0 < int(kept) < int(total) and int(kept) <= 0.3 * int(total) + 2  # 75% of the document evicted
    assert fact(page, "kv", "cache").endswith("KB") or fact(page, "kv", "cache").endswith(" B")
    shot(page, "10-ask-side-by-side")

    page.select_option("#route", "auto")
    page.fill("#top-k", "2")
    ask(page)
    picked = {li.get_attribute("data-name") for li in page.query_selector_all("#routing li")}
    assert picked == {"ada", "facts"} and "score" in page.inner_text("#routing")
    shot(page, "11-routing-scores")
    page.fill("#question", "What is the capital of France?")  # routed, held by neither memory: abstains
    ask(page)
    assert "answered by the base model" in fact(page, "parametric", "abstained")
    page.select_option("#route", "")  # the fact table named: its scope holds its adapter back
    page.wait_for_selector('input[name="memory"][value="facts"]:checked')
    ask(page)
    assert "the base model answered" in fact(page, "parametric", "out of scope")


    page.goto(root + "/#/memory/facts")
    page.click("#delete")
    page.wait_for_selector("#confirm-dialog[open]")
    assert "cannot be undone" in page.inner_text("#confirm-text")
    shot(page, "12-delete-confirmation")
    page.click("#confirm-cancel")
    assert mem.store.exists("facts")  # cancelled: nothing lost
    page.click("#delete")
    page.click("#confirm-ok")
    page.wait_for_selector(".notice >> text=Deleted memory facts.")
    assert [r.get_attribute("data-name") for r in page.query_selector_all("#memories tbody tr")] == ["ada"]
    assert not mem.store.exists("facts")
    shot(page, "13-deleted")


def test_datasheet_and_studies(page, served):
    root, mem = served
    unlock(page, root)
    page.goto(root + "/#/datasheet")
    page.wait_for_selector("#own-datasheet")
    assert mem.base.name in page.inner_text("#own-datasheet h2")
    quick = '.committed[data-path="datasheet-quick"]'
    page.wait_for_selector(quick)
    sheet = json.loads((Path(__file__).parents[2] / "benchmarks" / "datasheet-quick" / "datasheet.json").read_text())
    assert len(page.query_selector_all(f"{quick} tbody tr")) == len(sheet["ranks"])
    assert len(page.query_selector_all(f"{quick} svg polyline")) == len({p["rank"] for p in sheet["probes"]})
    page.wait_for_function(f"() => document.querySelector('{quick} img.report-plot')?.naturalWidth > 0")
    shot(page, "14-datasheet")

    page.goto(root + "/#/studies")
    page.click("text=Adapters and compressed KV caches on PaperQA")
    page.wait_for_selector("#report table")
    page.wait_for_function("() => document.querySelector('#report img.report-plot')?.naturalWidth > 0")
    assert "kv-paperqa/kv-report.md" in page.inner_text("#study-page")
    shot(page, "15-study-report")


def test_versions_listed_and_rolled_back(page, served):
    root, mem = served
    mem.update("ada", records=[{"question": "What is the phone number of Alan Turing?", "answer": "555-867-5309"}])
    unlock(page, root)
    page.goto(root + "/#/memory/ada")
    page.wait_for_selector("#versions table")
    assert "version 2" in page.inner_text("#memory-page h1")
    rows = page.query_selector_all("#versions tbody tr")
    assert [r.get_attribute("data-version") for r in rows] == ["2", "1"]  # newest first
    assert "update (replay): added 1" in rows[0].inner_text() and "current" in rows[0].inner_text()
    assert rows[1].inner_text().startswith("1") and "write" in rows[1].inner_text()
    assert {c.inner_text() for c in page.query_selector_all("#supervision tbody td:last-child")} == \
        {"ada.jsonl", "records"}  # each example with the input it came from
    shot(page, "16-versions")
    page.click('#versions button[data-version="1"]')
    page.wait_for_selector("#confirm-dialog[open]")
    page.click("#confirm-ok")
    page.wait_for_selector(".notice >> text=Rolled ada back to version 1.")
    page.wait_for_selector('#versions tr[data-version="1"] .badge')
    assert mem.store.get("ada").version == 1 and [v.version for v in mem.log("ada")] == [1, 2]
    shot(page, "17-rolled-back")
