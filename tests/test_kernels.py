"""loramem.kernels: the compiled few-rows kernel computes x W^T, writes or adds into `out`, refuses what it
cannot take, and is never built behind a caller's back; the decode steps' linears (the kernel, or the
weight-major fallback) compute what `nn.Linear` computes and leave the model as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import replaced_forwards
from loramem.kernels import decode_linear, few_rows
from loramem.kernels.decode_linear import WEIGHT_MAJOR_MAX_ROWS, decode_linears
from loramem.kernels.few_rows import MAX_ROWS


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 9, 16, 17, 24])
@pytest.mark.parametrize("inner", [8, 13, 576])  # a multiple of the 8-float vector, a remainder, SmolLM2's width
def test_equals_matmul(few_rows_kernel, rows, inner):
    torch.manual_seed(rows)
    x, w = torch.randn(rows, inner), torch.randn(37, inner)
    torch.testing.assert_close(few_rows.few_rows(x, w), x @ w.t(), rtol=1e-5, atol=1e-4)


def test_out_and_accumulate(few_rows_kernel):
    torch.manual_seed(0)
    x, w, y = torch.randn(3, 20), torch.randn(11, 20), torch.randn(3, 11)
    expected = y + x @ w.t()
    assert few_rows.few_rows(x, w, out=y, accumulate=True) is y
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    few_rows.few_rows(x, w, out=y)
    torch.testing.assert_close(y, x @ w.t(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["float64", "transposed", "shapes"])
def test_refuses_what_it_cannot_take(few_rows_kernel, case):
    x, w = torch.randn(2, 8), torch.randn(4, 8)
    if case == "float64":
        x, w = x.double(), w.double()
    elif case == "transposed":
        w = torch.randn(8, 4).t()
    else:
        w = torch.randn(4, 9)
    with pytest.raises(RuntimeError, match="few_rows"):
        few_rows.few_rows(x, w)


def test_not_built_means_none_and_no_build(monkeypatch, tmp_path):
    monkeypatch.setattr(few_rows, "_loaded", {})
    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path))
    monkeypatch.delenv("LORAMEM_KERNELS", raising=False)
    assert few_rows.build_dir().is_relative_to(tmp_path)
    assert few_rows.kernel() is None and few_rows.status().startswith("off: not built")
    assert not any(tmp_path.iterdir())  # nothing compiled, nothing written
    monkeypatch.setattr(few_rows, "build_dir", lambda: pytest.fail("looked again"))
    assert few_rows.kernel() is None  # decode steps ask per layer: the answer is kept


def test_a_built_kernel_is_imported_not_rebuilt(monkeypatch, few_rows_kernel):
    """Once built (by any checkout of the same source), loading never runs the compiler."""
    monkeypatch.setattr(few_rows, "_loaded", {})
    monkeypatch.setattr(few_rows, "_build", lambda directory: pytest.fail("built again"))
    assert few_rows.kernel() is not None and few_rows.kernel(build=True) is not None


def test_disabled(monkeypatch, few_rows_kernel):
    monkeypatch.setenv("LORAMEM_KERNELS", "0")
    assert few_rows.kernel() is None and few_rows.kernel(build=True) is None
    assert few_rows.status() == "off (LORAMEM_KERNELS=0)"


@pytest.mark.parametrize("lead", [(1,), (2,), (3, 1), (1, 5), (2, 4), (8, 1), (3, 7)], ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_equals_linear(decode_product, lead, bias):
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias)
    x = torch.randn(*lead, 48)
    with torch.no_grad(), decode_linears(layer) as changed:
        got = layer(x)
    assert changed == 1 and replaced_forwards(layer) == 0
    assert got.shape == (*lead, 80) and got.is_contiguous()
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


def test_calls_it_leaves_to_linear(monkeypatch, few_rows_kernel):
    """More tokens than the kernel takes, autograd and input of another dtype run `nn.Linear` itself
    (which refuses the last as it always does); one token takes the kernel; a bf16 model is left alone."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 24)
    calls, real = [], decode_linear.few_rows
    monkeypatch.setattr(decode_linear, "few_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    with decode_linears(layer):
        with torch.no_grad():
            layer(torch.randn(MAX_ROWS + 1, 16))
            with pytest.raises(RuntimeError, match="dtype"):
                layer(torch.randn(2, 16, dtype=torch.float64))
        layer(torch.randn(4, 16)).sum().backward()
        assert not calls
        with torch.no_grad():
            layer(torch.randn(1, 16))
        assert calls
    with decode_linears(layer.to(torch.bfloat16)) as changed:
        assert changed == 0 and replaced_forwards(layer) == 0


def test_without_the_kernel_one_row_stays_linear(monkeypatch):
    monkeypatch.setenv("LORAMEM_KERNELS", "0")
    layer = torch.nn.Linear(16, 24)
    calls, real = [], torch.mm
    monkeypatch.setattr(torch, "mm", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad(), decode_linears(layer):
        layer(torch.randn(1, 16))
        layer(torch.randn(WEIGHT_MAJOR_MAX_ROWS + 1, 16))
        assert not calls
        layer(torch.randn(WEIGHT_MAJOR_MAX_ROWS, 16))
        assert calls  # the weight-major product


def test_decode_logits_of_a_model(decode_product, tiny_base):
    """A decode step of 5 rows through the whole model: the same logits, the model unchanged after."""
    from transformers import DynamicCache

    model = tiny_base.model
    ids = torch.randint(5, 100, (5, 7), generator=torch.Generator().manual_seed(1))
    logits = []
    for fast in (False, True):
        with torch.no_grad(), decode_linears(model) if fast else torch.no_grad() as changed:
            cache = DynamicCache(config=model.config)
            model(input_ids=ids[:, :-1], past_key_values=cache, use_cache=True)
            logits.append(model(input_ids=ids[:, -1:], past_key_values=cache, use_cache=True).logits)
        if fast:
            assert changed == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert replaced_forwards(model) == 0
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)


def test_answers_equal_the_plain_generate(few_rows_kernel, tiny_base, monkeypatch, tmp_path_factory):
    """`generate_answer` decodes through the kernel: the same greedy answers as plain `generate`, with and
    without a memory's adapter, and the model left as it was."""
    from contextlib import nullcontext

    from conftest import random_adapters
    from loramem import answering

    folder = random_adapters(tiny_base, tmp_path_factory, [dict(r=4, lora_alpha=8, target_modules="all-linear")], seed=7,
                             label="kernel-answer")[0]
    questions = ["What is the phone number of Ada Byron?", "hello there"]
    answers = {}
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(answering, "decode_linears", lambda model: nullcontext())
        answers[fast] = [answering.generate_answer(tiny_base, q, adapters=adapters, max_new_tokens=12)
                         for q in questions for adapters in ([], [("m", folder)])]
    assert answers[True] == answers[False]
    assert replaced_forwards(tiny_base.model) == 0
