"""`loramem bench faults`: try to make the store lose data, the server take a cross-site write and
the command line print a traceback, and count what got through.

It runs on the tiny random Llama (`loramem.models.tiny`) in a temporary folder, in a few minutes
on any CPU:

* kills: a child process writes and updates a fact-table memory over and over (an update changes
  one number; every third op is a `write --replace` of the first input, which reuses its folder)
  and is SIGKILLed at a random moment of that work, `kills` times; the store is audited after each;
* race: one process commits content identical to an older version's folder, with replace, in a
  loop, while another runs `gc` on that memory;
* catalogue: a copy of the store, its adapter folders two hours old, loses its catalogue (emptied,
  then deleted); `loramem ls` must refuse it, nothing may be deleted, `loramem recover` must list
  every memory again;
* disk full: a small tmpfs is mounted (root and a kernel that allows it; else skipped, with the
  reason), the store copied onto it and the disk filled; `write`, `update` and `rollback` run;
* cross-site: a real `loramem serve` with no key gets what a web page could send it.

`lost`: versions the catalogue lists whose adapter files are missing or unreadable, or memories a
case expected and did not find. `tracebacks`: commands whose stderr holds a traceback, children
that died of an unexpected exception, server answers of 500. `cross_site_accepted`: cross-site
requests answered 2xx, or that changed the store.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loramem.bench import fault_children as children
from loramem.bench.fault_server import cross_site_case
from loramem.errors import AdapterFileError, LoramemError

# Children fork from a server process that imported loramem and torch but ran no torch op: they
# start in milliseconds, and safely even when this process has run torch (a plain fork of a
# process whose OpenMP threads are up can hang the child; in the test suite, one did).
_FORK = multiprocessing.get_context("forkserver")
_FORK.set_forkserver_preload(["loramem.bench.fault_children", "loramem.api", "loramem.updates.apply"])


def _child(target, *args):
    parent, conn = _FORK.Pipe(duplex=False)
    proc = _FORK.Process(target=target, args=(*args, conn), daemon=True)
    proc.start()
    conn.close()
    return proc, parent


def _receive(pipe, timeout: float):
    if not pipe.poll(timeout):
        raise LoramemError(f"a fault child sent nothing for {timeout:.0f} s")
    return pipe.recv()


def _drain(pipe) -> list:
    """What a killed child sent before it died (the pipe then reads as closed)."""
    messages = []
    try:
        while pipe.poll():
            messages.append(pipe.recv())
    except EOFError:
        pass
    return messages


def audit(path: Path) -> dict:
    """Open the store as a user would and check every version it lists has readable adapter files."""
    from loramem.adapters.files import check_adapter_files
    from loramem.store import MemoryStore

    store = MemoryStore(path)
    listed = lost = 0
    for record in store.list():
        for version in store.versions(record.name):
            listed += 1
            try:
                check_adapter_files(store.adapter_path(version.record), record.name)
            except AdapterFileError:
                lost += 1
    return {"versions": listed, "lost": lost, "memories": store.names()}


def cli(*args: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Run `loramem ARGS` as a user would; what it printed, and whether that held a traceback."""
    proc = subprocess.run([sys.executable, "-m", "loramem.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return {"args": list(args[:2]), "rc": proc.returncode, "error": errors[-1] if errors else None,
            "traceback": "Traceback (most recent call last)" in proc.stderr + proc.stdout}


def kill_case(store: Path, model: str, kills: int, rng: random.Random, log: Callable[[str], None]) -> dict:
    """SIGKILL a churning writer `kills` times at random moments of its work; audit after each."""
    ops, seconds, tracebacks, refused, lost = [], [], 0, 0, 0
    for i in range(kills + 1):  # round 0 only measures how long an op takes
        proc, pipe = _child(children.churn, store, model, i)
        message = _receive(pipe, 300)
        if message != "ready":
            tracebacks += 1
            log(f"  churn child failed before its work:\n{message[1] if isinstance(message, tuple) else message}")
            proc.join()
            continue
        if i == 0:
            while len(seconds) < 2:
                message = _receive(pipe, 600)
                if message[0] in ("done", "refused"):
                    seconds.append(message[2])
                elif message[0] == "traceback":
                    raise LoramemError(f"the writer failed before any kill:\n{message[1]}")
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            log(f"  one write or update takes ~{sum(seconds) / len(seconds):.1f} s; killing at random moments of it")
            continue
        delay = rng.uniform(0, 1.5 * sum(seconds) / len(seconds))
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        started = done = None
        for message in _drain(pipe):
            if message[0] == "start":
                started = message[1]
            elif message[0] == "done":
                done = message[1]
            elif message[0] == "refused":
                refused += 1
            elif message[0] == "traceback":
                tracebacks += 1
                log(message[1])
        result = audit(store)
        lost += result["lost"]
        ops.append({"delay_s": round(delay, 2), "killed_during": started, "finished_before": done,
                    "versions": result["versions"], "lost": result["lost"]})
        log(f"  kill {i}/{kills} after {delay:.1f} s, during a {started or 'start-up'}: "
            f"{result['versions']} versions listed, {result['lost']} lost")
    proc, pipe = _child(children.ask, store, model)
    answered = _receive(pipe, 300)
    proc.join()
    if answered[0] == "traceback":
        tracebacks += 1
    return {"kills": len(ops), "lost": lost, "tracebacks": tracebacks, "refused_updates": refused,
            "op_seconds": [round(s, 2) for s in seconds], "answers_after": answered[1] if answered[0] == "done" else None,
            "rounds": ops}


def race_case(store: Path, seconds: float, log: Callable[[str], None]) -> dict:
    """A committer reusing folders and a collector, side by side for `seconds`."""
    procs = [_child(children.race, store, role, seconds) for role in ("commit", "gc")]
    results = [_receive(pipe, seconds + 120) for _, pipe in procs]
    for proc, _ in procs:
        proc.join()
    tracebacks = sum(r[0] == "traceback" for r in results)
    for r in results:
        if r[0] == "traceback":
            log(r[1])
    commit = results[0] if results[0][0] == "done" else ("done", 0, 0)
    after = audit(store)
    return {"commits": commit[1], "gc_runs": results[1][1] if results[1][0] == "done" else 0,
            "missing_seen": commit[2], "lost": commit[2] + after["lost"], "tracebacks": tracebacks}


def _age(path: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    for folder in (path / "adapters").iterdir():
        os.utime(folder, (then, then))


def catalogue_case(store: Path, work: Path) -> dict:
    """Empty, then delete, the catalogue of an aged copy of the store; ls refuses, recover restores."""
    before = audit(store)
    copy = work / "catalogue-lost"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("checkpoints", "cache"))
    _age(copy)
    folders = sorted(p.name for p in (copy / "adapters").iterdir())
    runs, refused = [], 0
    for lose in ("empty", "missing"):
        catalogue = copy / "catalogue.sqlite"
        catalogue.write_bytes(b"") if lose == "empty" else catalogue.unlink(missing_ok=True)
        run = cli("ls", "--store", str(copy))
        refused += run["rc"] != 0 and "loramem recover" in (run["error"] or "")
        runs.append(run)
    kept = sorted(p.name for p in (copy / "adapters").iterdir()) == folders
    runs.append(cli("recover", "--store", str(copy)))
    after = audit(copy)
    missing = set(before["memories"]) - set(after["memories"])
    return {"refused": refused, "folders_kept": kept, "recovered": after["memories"],
            "lost": after["lost"] + len(missing) + (0 if kept else len(folders)),
            "tracebacks": sum(r["traceback"] for r in runs), "runs": runs}


def disk_full_case(store: Path, model: str, work: Path) -> dict:
    """write, update and rollback on a full tmpfs: one-line errors, and the store as it was."""
    disk = work / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        reason = (mounted.stderr.strip().splitlines() or ["mount failed"])[-1]
        return {"skipped": f"cannot mount a small tmpfs here ({reason}); run as root to include this case"}
    try:
        copy = disk / "store"
        shutil.copytree(store, copy, ignore=shutil.ignore_patterns("checkpoints", "cache"))
        before = audit(copy)
        current = _current_version(copy)
        facts = work / "more.jsonl"
        facts.write_text('{"question": "What is the phone number of Edsger Dijkstra?", "answer": "555-030-1111"}\n')
        _fill(disk / "filler")
        runs = [cli("write", str(facts), "--name", "more", "--store", str(copy), "--model", model, "--epochs", "2"),
                cli("update", children.MEMORY, str(facts), "--store", str(copy), "--model", model, "--epochs", "2"),
                cli("rollback", children.MEMORY, "1", "--store", str(copy))]
        (disk / "filler").unlink()
        after = audit(copy)
        return {"runs": runs, "one_line_errors": sum(r["rc"] != 0 and r["error"] is not None for r in runs),
                "current_unchanged": _current_version(copy) == current,
                "lost": after["lost"] + len(set(before["memories"]) - set(after["memories"])),
                "tracebacks": sum(r["traceback"] for r in runs)}
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _current_version(path: Path) -> int:
    from loramem.store import MemoryStore

    return MemoryStore(path).get(children.MEMORY).version


def _fill(path: Path) -> None:
    """Write zeros to `path` until the disk holds not one more byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)


def run_faults(kills: int = 20, race_seconds: float = 10, seed: int = 0,
               log: Callable[[str], None] = print) -> dict:
    """Every case above, in one temporary folder; the totals and each case's details."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="loramem-faults-") as tmp:
        work = Path(tmp)
        model = work / "tiny-llama"
        proc, pipe = _child(children.build_model, model)
        _receive(pipe, 300)
        proc.join()
        store = work / "store"
        os.environ.setdefault("LORAMEM_CACHE", str(work / "cache"))
        log(f"kills: a writer SIGKILLed {kills} times at random moments of write and update")
        cases = {"kills": kill_case(store, str(model), kills, rng, log)}
        log(f"race: commits reusing folders against gc, {race_seconds:.0f} s")
        cases["race"] = race_case(work / "race-store", race_seconds, log)
        log("catalogue: emptied, then deleted, on an aged copy of the store")
        cases["catalogue"] = catalogue_case(store, work)
        log("disk full: write, update and rollback on a full tmpfs")
        cases["disk_full"] = disk_full_case(store, str(model), work)
        log("cross-site: a page's requests to a keyless server")
        cases["cross_site"] = cross_site_case(store, str(model), log)
    return {
        "kills": cases["kills"]["kills"],
        "lost": sum(c.get("lost", 0) for c in cases.values()),
        "tracebacks": sum(c.get("tracebacks", 0) for c in cases.values()),
        "cross_site_accepted": cases["cross_site"]["accepted"],
        "cases": cases,
    }
