"""Write jobs for the server: uploads become memories (or update them) in the background, one at a
time, with progress.

Writes train on their own copy of the base model (a second `Memory` on the same store), so the
model answering requests is never touched by training and asks go on while a write runs. The
uploaded files live in the store's cache until the job ends, and are removed whatever happens;
a failed write leaves nothing in the catalogue (the store commits a memory atomically).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loramem.kernels.openmp import release_pool


@dataclass
class Job:
    id: str
    name: str
    status: str = "queued"  # queued | running | succeeded | failed
    kind: str = "write"  # write | update
    epoch: int = 0
    epochs: int = 0
    error: str | None = None
    memory: dict | None = None  # the written memory's catalogue entry, once it succeeded
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["object"] = f"memory.{self.kind}"
        d["progress"] = 1.0 if self.status == "succeeded" else (self.epoch / self.epochs if self.epochs else 0.0)
        return d


class WriteJobs:
    """A queue of writes into `store` on base `model`, run by one background thread."""

    def __init__(self, store: Path, model: str | None, device: str | None) -> None:
        self.store, self.model, self.device = store, model, device
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loramem-write")
        self._writer = None  # a Memory of its own, made in the worker thread on first use
        self.uploads = store / "cache" / "uploads"

    def folder(self, job_id: str) -> Path:
        return self.uploads / job_id

    def new_id(self) -> str:
        return f"write-{uuid.uuid4().hex[:16]}"

    def submit(self, job_id: str, name: str, files: list[Path], write_args: dict, update: bool = False) -> Job:
        """Queue a write of `files` into memory `name` (`write_args` for `Memory.write`), or with
        `update`, an update of it (`write_args` for `Memory.update`)."""
        epochs = write_args.get("config").epochs if write_args.get("config") is not None else 0
        job = Job(id=job_id, name=name, epochs=epochs, kind="update" if update else "write")
        with self._lock:
            self.jobs[job_id] = job
        self._pool.submit(self._run, job, files, write_args)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def _run(self, job: Job, files: list[Path], write_args: dict) -> None:
        from loramem.api import Memory

        job.status = "running"
        try:
            if self._writer is None:
                self._writer = Memory(store=self.store, model=self.model, device=self.device, progress=False)

            def on_epoch(epoch: int, _seconds: float) -> None:
                job.epoch = epoch

            if job.kind == "update":
                result = self._writer.update(job.name, files, **write_args)
            else:
                result = self._writer.write(files, name=job.name, on_epoch=on_epoch, **write_args)
            job.memory = result.record.summary()
            job.epoch = job.epochs = result.epochs
            job.status = "succeeded"
        except Exception as e:  # the job reports it; the server goes on
            job.error = f"{type(e).__name__}: {e}" if not str(e) else str(e)
            job.status = "failed"
        finally:
            release_pool()  # training's OpenMP workers, kept by this thread, would slow the serving engine
            job.finished = time.time()
            shutil.rmtree(self.folder(job.id), ignore_errors=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
