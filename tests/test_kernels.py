"""The compiled few-rows kernel computes x W^T, writes or adds into `out`, refuses what it cannot take,
and is never built behind a caller's back."""

from __future__ import annotations

import pytest
import torch

from loramem.kernels import few_rows


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
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("LORAMEM_KERNELS", raising=False)
    assert few_rows.build_dir().is_relative_to(tmp_path)
    assert few_rows.kernel() is None
    assert not any(tmp_path.iterdir())  # nothing compiled, nothing written


def test_disabled(monkeypatch, few_rows_kernel):
    monkeypatch.setenv("LORAMEM_KERNELS", "0")
    assert few_rows.kernel() is None and few_rows.kernel(build=True) is None
