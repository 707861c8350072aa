"""`loramem.kernels.openmp`: a thread gives back its OpenMP workers, and only its own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from loramem.kernels.openmp import release_pool

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or "OpenMP" not in torch.__config__.parallel_info()
    or torch.get_num_threads() < 2, reason="counts the OpenMP workers of a Linux process with torch on 2+ threads")


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def parallel_op() -> None:
    torch.ones(1 << 22).mul_(2.0)  # an elementwise op over 4M floats: an OpenMP team of get_num_threads()


def in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_release_pool_frees_the_calling_threads_workers():
    def work() -> tuple[int, int, bool, int]:
        before = os_threads()
        parallel_op()
        with_pool = os_threads()
        released = release_pool()
        after = os_threads()
        parallel_op()  # still works: a new team starts
        return before, with_pool, released, after

    before, with_pool, released, after = in_thread(work)
    assert with_pool == before + torch.get_num_threads() - 1  # the team's workers stay after the op
    assert released and after == before
    assert in_thread(release_pool)  # a thread that has no pool: nothing to free


def test_release_pool_leaves_other_threads_pools_alone():
    ready, done = threading.Event(), threading.Event()
    counts = {}

    def engine() -> None:  # keeps its pool while another thread releases its own
        parallel_op()
        ready.set()
        done.wait(30)
        counts["engine"] = os_threads()
        parallel_op()

    t = threading.Thread(target=engine)
    t.start()
    ready.wait(30)
    with_engine_pool = os_threads()
    assert in_thread(lambda: (parallel_op(), release_pool())[1])
    done.set()
    t.join()
    assert counts["engine"] == with_engine_pool


def test_the_serving_engine_frees_the_pool_of_the_thread_that_builds_it(tiny_base):
    """A server built where memories were just written: training's workers would throttle the engine's."""
    from loramem.serve.batching import BatchEngine

    def build() -> tuple[int, int]:
        parallel_op()  # as training leaves it
        with_pool = os_threads()
        BatchEngine(tiny_base.model, pad_id=0, thread=False).close()
        return with_pool, os_threads()

    with_pool, after = in_thread(build)
    assert after == with_pool - (torch.get_num_threads() - 1)
