"""Every benchmark runs at a tiny size and its engines agree (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import actors_latency, groupby, hop, join, scan, tpch_q1


def test_hop_benchmark_runs_and_reports_every_cell() -> None:
    results = hop.run(messages=200, repeats=1)
    assert [(r.hops, r.capacity) for r in results] == [(h, c) for h in (1, 4, 8) for c in (1, 2, 8)]
    table = hop.report(results)
    assert table.count("\n") == len(results) + 1


def test_scan_benchmark_engines_agree(tmp_path: Path) -> None:
    rows, results = scan.run(rows=60_000, repeats=1, data_dir=str(tmp_path))
    assert {r.engine for r in results} == set(scan.ENGINES)
    assert "ratio to best peer" in scan.report(rows, results)


def test_groupby_benchmark_engines_agree() -> None:
    rows, results = groupby.run(rows=50_000, key_counts=(10, 5_000), repeats=1)
    assert len(results) == 2 * len(groupby.ENGINES)
    assert "ratio to fastest" in groupby.report(rows, results)


def test_join_benchmark_engines_agree() -> None:
    *sizes, results = join.run(table_rows=5_000, stream_rows=50_000, repeats=1)
    assert {r.engine for r in results} == set(join.ENGINES)
    assert "rows out" in join.report(*sizes, results)


def test_actor_latency_benchmark_runs() -> None:
    results = actors_latency.run(round_trips=200, messages=2_000)
    assert [r.engine for r in results] == ["streamnet ActorRuntime", "asyncio.Queue"]
    assert all(r.per_second > 0 and r.p50_us > 0 for r in results)


def test_tpch_q1_benchmark_engines_agree(tmp_path: Path) -> None:
    rows, results = tpch_q1.run(scale_factor=0.01, repeats=1, data_dir=str(tmp_path))
    assert rows == 60_000
    assert [r.engine for r in results] == list(tpch_q1.ENGINES)
