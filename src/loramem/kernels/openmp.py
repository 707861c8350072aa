"""OpenMP worker pools: a thread done with heavy torch work gives its pool back, so the serving engine's stay fast.

torch's CPU ops run their parallel parts on OpenMP (libgomp on Linux). libgomp keeps a pool of
worker threads for every thread that ever ran a parallel region, for as long as that thread
lives. While the pools hold more threads than the machine has CPUs, libgomp throttles every
team: an idle worker spins ~100 times instead of ~300,000 before it sleeps on a futex, so each of
a decode step's ~2,000 small ops waits for its workers to be woken. One write on the main thread
(its training leaves a pool there) before the server's engine thread starts decoding was enough:
on the 2-core AMD EPYC, 1-client serving went from 1.46 requests/s and 44 ms a decode step to
1.09-1.16 and 57-60 ms, the engine's team making ~13,000 voluntary context switches a second
instead of ~70 in a whole 12 s round (`getrusage`). `release_pool()` in the thread that trained (the server's write
worker after each job, the thread that builds the serving engine) frees that pool
(`omp_pause_resource_all`, OpenMP 5.0) and the engine's team spins again: 1.39-1.46 requests/s.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

# the OpenMP runtimes torch builds link: GNU, LLVM and Intel's, on Linux and macOS
RUNTIMES = ("libgomp.so.1", "libomp.so", "libomp.so.5", "libiomp5.so", "libomp.dylib", "libiomp5.dylib")
OMP_PAUSE_SOFT = 1


@cache
def _pause():
    """`omp_pause_resource_all` of the OpenMP runtime already loaded in this process, or None.

    Only a runtime already loaded is looked up (RTLD_NOLOAD): loading a second one would be worse
    than the problem."""
    mode = getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL
    for name in RUNTIMES:
        try:
            library = ctypes.CDLL(name, mode=mode)
        except OSError:
            continue
        function = getattr(library, "omp_pause_resource_all", None)
        if function is not None:
            function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
            return function
    return None


def release_pool() -> bool:
    """Free the calling thread's OpenMP worker pool (its next parallel op starts a new one, ~0.1 ms).

    Other threads' pools are left alone. True when a runtime was found and freed it (or the
    thread had none); False when this process runs no OpenMP runtime that can."""
    if not getattr(os, "RTLD_NOLOAD", 0):
        return False  # Windows: no way to look a library up without loading it
    pause = _pause()
    return pause is not None and pause(OMP_PAUSE_SOFT) == 0
