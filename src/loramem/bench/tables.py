"""The tables the `bench` commands print: each benchmark's results dict as a rich Table."""

from __future__ import annotations

from rich.table import Table


def targets_table(title: str, results: dict, targets: dict[str, tuple[float, bool]]) -> Table:
    """metric | value | target, each target (value, higher is better) marked met or missed."""
    table = Table(title=title)
    for col in ("metric", "value", "target"):
        table.add_column(col)
    for key, value in results.items():
        target = targets.get(key)
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        mark = ""
        if target:
            ok = value >= target[0] if target[1] else value <= target[0]
            mark = ("[green]met " if ok else "[red]missed ") + ("≥ " if target[1] else "≤ ") + f"{target[0]:.4g}"
        table.add_row(key, shown, mark)
    return table


def routers_table(results: dict, ks: list[int]) -> Table:
    """One row per router: hit@k for each k, and the median routing latency."""
    table = Table(title=f"router accuracy: {results['partitions']} partitions, {results['questions']:,} questions")
    for col in ("router", *[f"hit@{k}" for k in ks], "p50 ms"):
        table.add_column(col)
    for name, r in results["routers"].items():
        table.add_row(name, *[f"{r[f'hit@{k}']:.1%}" for k in ks], f"{r['p50_ms']:.1f}")
    return table


def serve_table(results: dict, clients: tuple[int, ...] = (1, 8)) -> Table:
    """One row per client count: throughput, latency, and how many answers were right or crossed."""
    table = Table(title="loramem bench serve")
    for col in ("clients", "requests", "requests/s", "p50 ms", "correct", "cross-talk", "step ms", "prefill ms"):
        table.add_column(col)
    for c in clients:
        spent = [f"{results[k]:.0f}" if k in results else "-" for k in (f"step_ms_{c}", f"prefill_ms_{c}")]
        table.add_row(str(c), str(results[f"requests_{c}"]), f"{results[f'requests_per_s_{c}']:.2f}",
                      f"{results[f'p50_ms_{c}']:.0f}", f"{results[f'correct_{c}']:.0%}", f"{results[f'cross_talk_{c}']:.0%}",
                      *spent)
    if "speedup" in results:  # the ratios the batching targets (issue 25): ≥ 4x requests/s, ≤ 2x p50
        table.caption = (f"8 clients: {results['speedup']:.2f}x the requests/s of 1 (target ≥ 4), p50 "
                         f"{results['p50_ratio']:.2f}x (target ≤ 2), {results.get('rows_per_step_8', 0):.1f} "
                         "requests per decode step")
    return table


def faults_table(results: dict) -> Table:
    """One row per fault case: what was tried, what was lost, tracebacks, cross-site requests let through."""
    cases = results["cases"]
    table = Table(title="loramem bench faults")
    for col in ("case", "tried", "lost", "tracebacks", "cross-site accepted"):
        table.add_column(col)
    k, r, c, d, x = (cases[n] for n in ("kills", "race", "catalogue", "disk_full", "cross_site"))
    table.add_row("kills", f"{k['kills']} SIGKILLs during write and update", str(k["lost"]), str(k["tracebacks"]), "")
    table.add_row("race", f"{r['commits']} commits reusing folders against {r['gc_runs']} gc runs", str(r["lost"]),
                  str(r["tracebacks"]), "")
    table.add_row("catalogue", f"emptied and deleted: refused {c['refused']}/2, recovered "
                  f"{len(c['recovered'])} memories", str(c["lost"]), str(c["tracebacks"]), "")
    if "skipped" in d:
        table.add_row("disk full", f"skipped: {d['skipped']}", "-", "-", "")
    else:
        table.add_row("disk full", f"write, update, rollback: {d['one_line_errors']}/3 one-line errors",
                      str(d["lost"]), str(d["tracebacks"]), "")
    table.add_row("cross-site", f"{len(x['attacks'])} requests a foreign page could send", "", str(x["tracebacks"]),
                  str(x["accepted"]))
    table.caption = (f"kills {results['kills']}, lost {results['lost']}, tracebacks {results['tracebacks']}, "
                     f"cross-site accepted {results['cross_site_accepted']}")
    return table


def knowledge_base_table(results: dict) -> Table:
    """One row per first-stage router: hit@1 and hit@3 overall and per PaperQA level, and the p50 latency."""
    levels = sorted({lv for r in results["routers"].values() for lv in r["levels"]})
    table = Table(title=f"routing {results['questions']} questions among {results['papers']} papers "
                        f"+ {results['distractors']:,} distractors")
    for col in ("router", "hit@1", "hit@3", *[f"L{lv} hit@1" for lv in levels], "p50 ms"):
        table.add_column(col)
    for name, r in results["routers"].items():
        table.add_row(name, f"{r['hit_at_1']:.1%}", f"{r['hit_at_3']:.1%}",
                      *[f"{r['levels'][lv]['hit_at_1']:.1%}" if lv in r["levels"] else "-" for lv in levels],
                      f"{r['p50_ms']:.1f}")
    scale = results.get("scale") or {}
    table.caption = "; ".join(f"among {int(n):,} memories: " + ", ".join(
        f"{router} p50 {v['p50_ms']:.1f} ms (p90 {v['p90_ms']:.1f})" for router, v in s.items() if isinstance(v, dict))
        for n, s in scale.items()) or None
    return table
