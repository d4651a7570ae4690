"""The benchmark entry point runs (tiny sizes; no timing is asserted)."""

from __future__ import annotations

from benchmarks import hop


def test_hop_benchmark_runs_and_reports_every_cell() -> None:
    results = hop.run(messages=200, repeats=1)
    assert [(r.hops, r.capacity) for r in results] == [(h, c) for h in (1, 4, 8) for c in (1, 2, 8)]
    table = hop.report(results)
    assert table.count("\n") == len(results) + 1
