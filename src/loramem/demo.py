"""The demo: write a small table of invented facts into memory and ask it back, with and without."""

from __future__ import annotations

import tempfile
from importlib.resources import files
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loramem.api import Memory
from loramem.supervision import read_sources

DEMO_FACTS = files("loramem") / "data" / "demo_facts.jsonl"


def run_demo(store: Path | None = None, model: str | None = None, console: Console | None = None) -> float:
    """Run the demo and return the share of questions the memory answered correctly."""
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="loramem-demo-") as tmp:
        mem = Memory(store=store or Path(tmp) / "store", model=model)
        facts = read_sources([Path(str(DEMO_FACTS))])[0].records
        console.print(f"[bold]loramem demo[/]: writing {len(facts)} invented facts into a LoRA memory "
                      f"on {mem.model_spec or 'the default model (SmolLM2-135M-Instruct)'}")
        result = mem.write([Path(str(DEMO_FACTS))], name="demo-facts", replace=True)
        r = result.record
        console.print(f"wrote [bold]{r.name}[/]: rank {r.rank}, {r.parameters:,} parameters, "
                      f"{result.epochs} epochs, read-back recall {r.recall:.0%}, {result.seconds:.0f} s")
        table = Table(title="answers without and with the memory")
        for col in ("question", "expected", "base model", "with memory"):
            table.add_column(col, overflow="fold")
        hits = 0
        for fact in facts:
            base = mem.ask(fact.prompt).answer
            with_memory = mem.ask(fact.prompt, memories=[r.name]).answer
            ok = fact.target.lower() in with_memory.lower()
            hits += ok
            base = base if len(base) <= 80 else base[:79] + "…"
            table.add_row(fact.prompt, fact.target, base, ("[green]" if ok else "[red]") + with_memory)
        console.print(table)
        console.print(f"memory answered {hits}/{len(facts)} correctly")
        return hits / len(facts)
