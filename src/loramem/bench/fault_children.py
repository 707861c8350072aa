"""The processes `bench faults` kills or races: they fork from a server process that imported
loramem but ran no torch op, so each starts in milliseconds instead of re-importing torch.

Each reports over a pipe what it started and finished; a failure it did not expect is sent as
its traceback, which the benchmark counts.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

QUESTION = "What is the phone number of {}?"
PEOPLE = ["Ada Byron", "Alan Turing", "Grace Hopper"]
FACTS = [{"question": QUESTION.format(p), "answer": f"555-010-{1000 + i}"} for i, p in enumerate(PEOPLE)]
MEMORY = "facts"


def build_model(folder: Path, conn) -> None:
    from loramem.models.tiny import build_tiny_model

    build_tiny_model(folder)
    conn.send("built")


def _guarded(conn, body) -> None:
    try:
        body()
    except Exception:  # an unexpected failure: the benchmark counts its traceback
        conn.send(("traceback", traceback.format_exc()))


def churn(store: Path, model: str, start: int, conn) -> None:
    """Write and update the fact table over and over until killed: op k is a `write --replace` of
    the first input when k % 3 == 0 (its folder already exists: reused), else an update that
    changes one number."""

    def body() -> None:
        from loramem import Memory
        from loramem.errors import LoramemError
        from loramem.models.tiny import FAST_TRAIN
        from loramem.training import TrainConfig

        mem = Memory(store=store, model=model, progress=False)
        _ = mem.base  # loaded before "ready": kills land in writes, not in loading
        config = TrainConfig(**FAST_TRAIN)
        conn.send("ready")
        k = start
        while True:
            t = time.perf_counter()
            op = "write" if k % 3 == 0 or not mem.store.exists(MEMORY) else "update"
            conn.send(("start", op))
            try:
                if op == "write":
                    mem.write(records=FACTS, name=MEMORY, replace=True, config=config)
                else:
                    changed = {**FACTS[k % len(FACTS)], "answer": f"555-020-{k % 10_000:04d}"}
                    mem.update(MEMORY, records=[changed])
                conn.send(("done", op, time.perf_counter() - t))
            except LoramemError as e:  # a refused update (below target) or a name race: said, not lost
                conn.send(("refused", op, time.perf_counter() - t, str(e)))
            k += 1

    _guarded(conn, body)


def _adapter(folder: Path, value: float) -> None:
    """A real (one-tensor) adapter folder: its content, so its hash, depends on `value` alone."""
    import numpy as np
    from safetensors.numpy import save_file

    (folder / "adapter_config.json").write_text('{"r": 1, "lora_alpha": 1, "peft_type": "LORA"}')
    save_file({"base_model.model.x.lora_A.weight": np.full((1, 4), value, dtype=np.float32)},
              str(folder / "adapter_model.safetensors"))


def race(store: Path, role: str, seconds: float, conn) -> None:
    """Commit content identical to an older version's folder with replace (`commit`), or gc the
    memory (`gc`), in a loop; the committer counts versions it finds listed without their folder."""

    def body() -> None:
        from loramem.store import MemoryRecord, MemoryStore

        s = MemoryStore(store)
        until, n, missing = time.monotonic() + seconds, 0, 0
        while time.monotonic() < until:
            if role == "gc":
                if s.exists("race"):  # the committer's first commit may not be in yet
                    s.gc("race")
                    n += 1
                continue
            with s.staging() as staged:
                _adapter(staged, float(n % 2))
                record = MemoryRecord(name="race", folder="", source_hash="", sources=[], base_model="race",
                                      base_fingerprint="race", rank=1, formats=["record"], examples=1, tokens=1,
                                      parameters=4, recall=1.0, created="now")
                current = s.commit(staged, record, replace=True)
            n += 1
            missing += not (s.path / current.folder / "adapter_model.safetensors").is_file()
            for v in s.versions("race"):  # a version gc drops after this read may go: only a still-listed one counts
                missing += not (s.path / v.record.folder).is_dir() and s.exists(f"race@{v.version}")
        conn.send(("done", n, missing))

    _guarded(conn, body)


def ask(store: Path, model: str, conn) -> None:
    """Ask every fact of the current version, to show the store still answers after the kills."""

    def body() -> None:
        from loramem import Memory

        mem = Memory(store=store, model=model, progress=False)
        answers = [mem.ask(f["question"], memories=[MEMORY]).answer for f in FACTS]
        conn.send(("done", answers))

    _guarded(conn, body)
