"""Writing many documents at once as Ray tasks: one memory per document, in parallel across a cluster.

Each task gets the document's bytes (workers need not see the caller's files), writes it into
the store with a `Memory` of its own, and returns the catalogue entry. The store folder must be
reachable by every worker under the same path (local disk on one machine, a shared file system
on a cluster): the SQLite catalogue and atomic commits keep concurrent writers apart. A failed
document is reported by name and leaves nothing in the store; the others go on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loramem.errors import LoramemError


@dataclass
class RayWrite:
    written: list[dict]  # catalogue entries of the memories written
    failed: dict[str, str]  # memory name → error


def _write_one(store: str, model: str | None, device: str | None, filename: str, data: bytes, name: str,
               threads: int, write_args: dict) -> dict:
    import torch

    from loramem.api import Memory

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="loramem-ray-") as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        mem = Memory(store=store, model=model, device=device, progress=False)
        return mem.write([path], name=name, **write_args).record.summary()


def memory_names(paths: Sequence[Path], collection: str | None) -> list[str]:
    from loramem.writing import default_name

    names = [f"{collection}-{default_name([p])}"[:128] if collection else default_name([p]) for p in paths]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LoramemError(f"several documents would become the same memory: {', '.join(dupes)}; rename the files")
    return names


def write_with_ray(
    store: Path, paths: Sequence[Path], model: str | None = None, device: str | None = None,
    address: str | None = None, collection: str | None = None, cpus_per_task: int = 1,
    progress: Callable[[int, int, str], None] | None = None, **write_args,
) -> RayWrite:
    """Write each of `paths` into its own memory, as Ray tasks on the cluster at `address`.

    No `address` starts (or joins) a local Ray instance. `write_args` are those of `Memory.write`.
    """
    try:
        import ray
    except ImportError:
        raise LoramemError("--ray needs Ray: pip install 'ray>=2.30'") from None
    from loramem.store import validate_name

    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise LoramemError(f"no such file: {', '.join(missing)}")
    names = [validate_name(n) for n in memory_names(paths, collection)]
    if collection:
        write_args = {**write_args, "collection": collection}
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise LoramemError(f"cannot reach a Ray cluster at {address or 'local'}: {e}") from None
    task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_write_one)
    store = str(Path(store).resolve())
    pending = {task.remote(store, model, device, p.name, p.read_bytes(), n, cpus_per_task, write_args): n
               for p, n in zip(paths, names)}
    written, failed = [], {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        name = pending.pop(done[0])
        try:
            written.append(ray.get(done[0]))
        except Exception as e:  # a RayTaskError wraps the worker's exception
            cause = getattr(e, "cause", None) or e
            failed[name] = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        if progress is not None:
            progress(len(written) + len(failed), len(paths), name)
    return RayWrite(written=written, failed=failed)
