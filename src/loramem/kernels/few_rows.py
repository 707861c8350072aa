"""A few rows times a weight matrix on a CPU, by a small compiled kernel (`few_rows.cpp`).

A decode step multiplies every weight matrix by one token per batch row. With 1 to ~24 rows,
torch's fp32 GEMM (MKL) runs far below the speed of reading the weights once: the linear layers of
a SmolLM2-135M decode step (30 layers' weights, distinct so none stays in cache, plus the output
head), fp32, 2 threads of a 2-core AMD EPYC, ms (`x W^T` is what `nn.Linear` runs; `W x^T` the
weight-major order `loramem.kernels.decode_linear` used before this kernel):

    rows      1     2     4     8    16
    x W^T    41    77    80    69    99
    W x^T    42    30    31    53    77
    kernel   22    23    24    33    69

The kernel reads each weight row once and multiplies it into one accumulator per row of x: the
step's weights stream at ~26 GB/s. Tried and dropped (same machine, the step's linears, ms):
blocking 2 or 3 weight rows against 4 rows of x, 46-55 for 8 rows against 31-38; one call per
layer for the base and LoRA products, 25-26 against 26-27 for 1 row and 38-40 against 35-37 for 8.

It is built once per machine with torch's C++ extension builder (`python -m loramem.kernels`,
which `make setup` runs; ~40 s) into loramem's cache, and loaded only once built: callers fall
back to torch ops when it is not (no compiler, another OS, `LORAMEM_KERNELS=0`), so nothing
depends on it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import threading
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("few_rows.cpp")
NAME = "loramem_few_rows"
CFLAGS = ("-O3", "-march=native", "-fopenmp")  # the pragmas of torch's parallel_for need OpenMP (torch's own libgomp)
MAX_ROWS = 24  # rows up to which the kernel beats torch's GEMM: at every count to 26, not at 32 (loramem.kernels.decode_linear)

_lock = threading.Lock()
_loaded: dict[str, object] = {}  # "module" once loaded, "error" once a build failed


def build_dir() -> Path:
    """Where this source is built for this torch, Python and CPU (`-march=native`: a cache shared with
    another CPU must not hand it instructions it lacks), under loramem's cache folder."""
    from loramem.models.default import cache_root

    key = "|".join([SOURCE.read_text(), *CFLAGS, torch.__version__, sys.version, platform.machine(), _cpu_flags()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / "kernels" / f"few_rows-{digest}"


def _cpu_flags() -> str:
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:  # not Linux
        return platform.processor()


def enabled() -> bool:
    return os.environ.get("LORAMEM_KERNELS", "1") != "0"


def kernel(build: bool = False):
    """The compiled module (`few_rows(x, w, y, accumulate)`), or None: disabled, not built (and `build`
    False), or its build failed (`build_error()` says why)."""
    if not enabled():
        return None
    if _settled(build):  # every decode step asks, for each layer: answered without the lock or a file
        return _loaded.get("module")
    with _lock:
        if _settled(build):
            return _loaded.get("module")
        directory = build_dir()
        built = directory / f"{NAME}.so"
        if not build and not built.exists():
            _loaded["absent"] = True  # looked once: a kernel built later is for the next process
            return None
        _loaded.pop("absent", None)
        try:  # a built one is imported as it is: torch's loader would rebuild it for another checkout's path
            _loaded["module"] = _import(built) if built.exists() else _build(directory)
        except Exception as e:  # no compiler, no ninja, another platform: the callers' torch ops serve
            errors = [line.strip() for line in str(e).splitlines() if "error" in line.lower()]
            _loaded["error"] = (errors or [f"{type(e).__name__}: {e}"])[-1]
        return _loaded.get("module")


def _settled(build: bool) -> bool:
    return "module" in _loaded or "error" in _loaded or ("absent" in _loaded and not build)


def status() -> str:
    """In a few words, for people: whether decoding runs on the kernel here, and if not why."""
    if kernel() is not None:
        return "on"
    if not enabled():
        return "off (LORAMEM_KERNELS=0)"
    error = build_error()
    return f"off: its build failed ({error})" if error else "off: not built (python -m loramem.kernels builds it)"


def build_error() -> str | None:
    """Why the last build failed, if it did."""
    return _loaded.get("error")


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(NAME, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(directory: Path):
    from torch.utils.cpp_extension import load

    if shutil.which("ninja") is None:  # the pip package's ninja sits beside this Python, maybe off PATH
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    directory.mkdir(parents=True, exist_ok=True)
    return load(name=NAME, sources=[str(SOURCE)], build_directory=str(directory), extra_cflags=list(CFLAGS),
                extra_ldflags=["-fopenmp"], verbose=False)


def few_rows(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor | None = None,
             accumulate: bool = False) -> torch.Tensor:
    """x (N, K) times w (O, K)^T: (N, O), into `out` if given (added to it with `accumulate`).

    Contiguous fp32 CPU tensors; the kernel must be loaded (`kernel()` is not None).
    """
    y = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype) if out is None else out
    _loaded["module"].few_rows(x, w, y, accumulate)
    return y
