"""`loramem.kernels.openmp`: a thread gives back its OpenMP workers, and only its own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from loramem.kernels.openmp import release_pool

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or "OpenMP" not in torch.__config__.parallel_info()
    or torch.get_num_threads() < 2, reason="counts the OpenMP workers of a Linux process with torch on 2+ threads")


def pool_threads(name: str) -> int:
    """Threads named `name`: a thread that named itself and the OpenMP workers it started (a new
    thread takes its creator's name), whatever other threads come and go meanwhile."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            count += (task / "comm").read_text().strip() == name
        except OSError:  # a thread that ended while we looked
            pass
    return count


def parallel_op() -> None:
    torch.ones(1 << 22).mul_(2.0)  # an elementwise op over 4M floats: an OpenMP team of get_num_threads()


def in_thread(fn, name: str):
    """`fn()` on a new thread named `name` (its OpenMP workers inherit the name)."""
    out = []

    def run() -> None:
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name)
        out.append(fn())

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def test_release_pool_frees_the_calling_threads_workers():
    def work() -> tuple[int, int, bool, int]:
        before = pool_threads("omp-work")
        parallel_op()
        with_pool = pool_threads("omp-work")
        released = release_pool()
        after = pool_threads("omp-work")
        parallel_op()  # still works: a new team starts
        return before, with_pool, released, after

    before, with_pool, released, after = in_thread(work, "omp-work")
    assert before == 1 and with_pool == torch.get_num_threads()  # the team's workers stay after the op
    assert released and after == 1
    assert in_thread(release_pool, "omp-idle")  # a thread that has no pool: nothing to free


def test_release_pool_leaves_other_threads_pools_alone():
    ready, done = threading.Event(), threading.Event()
    counts = {}

    def engine() -> None:  # keeps its pool while another thread releases its own
        parallel_op()
        counts["before"] = pool_threads("omp-engine")
        ready.set()
        done.wait(30)
        counts["after"] = pool_threads("omp-engine")
        parallel_op()

    t = threading.Thread(target=lambda: in_thread(engine, "omp-engine"))
    t.start()
    ready.wait(30)
    assert in_thread(lambda: (parallel_op(), release_pool())[1], "omp-other")
    done.set()
    t.join()
    assert counts["before"] == counts["after"] == torch.get_num_threads()


def test_the_serving_engine_frees_the_pool_of_the_thread_that_builds_it(tiny_base):
    """A server built where memories were just written: training's workers would throttle the engine's."""
    from loramem.serve.batching import BatchEngine

    def build() -> tuple[int, int]:
        parallel_op()  # as training leaves it
        with_pool = pool_threads("omp-build")
        BatchEngine(tiny_base.model, pad_id=0, thread=False).close()
        return with_pool, pool_threads("omp-build")

    with_pool, after = in_thread(build, "omp-build")
    assert with_pool == torch.get_num_threads() and after == 1
