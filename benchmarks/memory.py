"""Group-by, sort and join larger than memory: streamnet under ``memory_limit`` beside DuckDB
under its own ``memory_limit`` and Polars' streaming engine (which has no limit to set).

The data are Parquet files generated once and cached: a fact table of ``rows`` rows
(int64 key ``k`` over ``keys`` distinct values, float64 ``a``, int64 ``b``, an
8-character string ``s``) and a dimension table of ``keys`` rows (unique ``k``, float64
``w``). Each engine reads the files and writes its answer to Parquet (zstd, each
engine's own writer), so no result is held in memory:

- **group-by**: ``k`` -> sum of ``a``, max of ``b``, count;
- **sort**: the fact table by ``k`` then ``b``;
- **join**: the fact table with the dimension table on ``k`` (inner).

Each case runs every engine once, in a fresh process whose peak resident set the
operating system reports (``VmHWM``, the whole process: interpreter and libraries
included, and its growth over the resident set before the run); streamnet's own
accounting (the budget's peak) stands beside it. Answers
are checked equal across engines by a checksum of the written files (rows, sums,
and for the sort that the file is in order). A case is run at the budget given and
at a quarter of it (the data then four times the budget).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
import polars as pl

WORKLOADS = ("groupby", "sort", "join")
ENGINES = ("streamnet", "duckdb", "polars streaming")
ALLOCATOR = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:100,muzzy_decay_ms:0"}
"""The environment every engine's process starts with: Polars' allocator (jemalloc) gives
freed pages back after a tenth of a second, rather than half a second and then another
second marked free for the operating system to take when it likes, in the resident set
meanwhile (what README's "Memory" section advises under a budget)."""


def generate(rows: int, keys: int, data_dir: str | Path = ".cache/bench") -> tuple[Path, Path]:
    """The fact and dimension tables as Parquet (made once per size, then reused)."""
    folder = Path(data_dir) / f"memory-{rows}-{keys}"
    fact, dim = folder / "fact.parquet", folder / "dim.parquet"
    if fact.exists() and dim.exists():
        return fact, dim
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    step = 5_000_000
    tmp = folder / ".fact.parquet"
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, rows, step):
        n = min(step, rows - start)
        letters = rng.integers(97, 123, (n, 8), dtype=np.uint8).view("S8").ravel()
        part = pl.DataFrame(
            {
                "k": rng.integers(0, keys, n),
                "a": rng.random(n),
                "b": rng.integers(-(10**9), 10**9, n),
                "s": pl.Series(letters).cast(pl.String),
            }
        ).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(tmp, part.schema, compression="zstd")
        writer.write_table(part, row_group_size=1_000_000)
    assert writer is not None
    writer.close()
    tmp.rename(fact)
    pl.DataFrame({"k": rng.permutation(keys), "w": rng.random(keys)}).write_parquet(
        dim, row_group_size=1_000_000
    )
    return fact, dim


# ------------------------------------------------------------------ the engines
def _streamnet(workload: str, fact: Path, dim: Path, out: Path, budget: int) -> int:
    import actors
    from streamnet import ActorNode, Context, Network

    with Context(memory_limit=budget, spill_directory=out.parent) as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        nodes: list[ActorNode[Any]] = [actors.read_parquet(ctx, a, fact)]
        if workload == "groupby":
            aggs = [("a", "sum"), ("b", "max"), ("*", "len")]
            nodes.append(actors.groupby_agg(ctx, a, c, "k", aggs))
        elif workload == "sort":
            nodes.append(actors.sort(ctx, a, c, ["k", "b"]))
        else:
            nodes += [
                actors.read_parquet(ctx, b, dim),
                actors.join(ctx, a, b, c, on="k"),
            ]
        nodes.append(actors.write_parquet(ctx, c, out))
        Network(ctx, nodes).run(progress=False)
        return ctx.memory.statistics().peak


def _duckdb(workload: str, fact: Path, dim: Path, out: Path, budget: int) -> int:
    import duckdb

    spill = out.parent / "duckdb-spill"
    con = duckdb.connect(
        config={"memory_limit": f"{budget // 2**20}MiB", "threads": 2, "temp_directory": str(spill)}
    )
    query = {
        "groupby": f"SELECT k, sum(a) AS a_sum, max(b) AS b_max, count(*) AS len "
        f"FROM '{fact}' GROUP BY k",
        "sort": f"SELECT * FROM '{fact}' ORDER BY k, b",
        "join": f"SELECT f.*, d.w FROM '{fact}' f JOIN '{dim}' d USING (k)",
    }[workload]
    # zstd, as streamnet's and Polars' writers compress by default (DuckDB's is snappy)
    con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()
    return 0


def _polars(workload: str, fact: Path, dim: Path, out: Path, budget: int) -> int:
    scan = pl.scan_parquet(fact)
    if workload == "groupby":
        query = scan.group_by("k").agg(
            pl.col("a").sum().alias("a_sum"), pl.col("b").max().alias("b_max"), pl.len()
        )
    elif workload == "sort":
        query = scan.sort(["k", "b"])
    else:
        query = scan.join(pl.scan_parquet(dim), on="k")
    query.sink_parquet(out)
    return 0


_RUN = {"streamnet": _streamnet, "duckdb": _duckdb, "polars streaming": _polars}


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(engine: str, args: tuple[Any, ...], queue: Any) -> None:
    import duckdb  # noqa: F401

    import actors  # noqa: F401 - the engines load before the clock starts

    baseline = _status_kib("VmRSS")
    start, cpu = time.perf_counter(), _cpu_seconds()
    try:
        accounted = _RUN[engine](*args)
    except Exception as exc:  # an engine that runs out of memory is a result too
        queue.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:300])
        return
    seconds = time.perf_counter() - start
    queue.put((seconds, _cpu_seconds() - cpu, _status_kib("VmHWM"), baseline, accounted))


def _checksum(workload: str, out: Path) -> tuple[Any, ...]:
    """Rows and sums of the answer (and for the sort, whether it is in order), read lazily."""
    scan = pl.scan_parquet(out)
    if workload == "groupby":
        row = scan.select(
            pl.len().alias("rows"),
            pl.col("a_sum").sum(),
            pl.col("b_max").sum(),
            pl.col("len").sum().alias("counted"),
        )
    elif workload == "sort":
        order = (pl.col("k").diff() > 0) | ((pl.col("k").diff() == 0) & (pl.col("b").diff() >= 0))
        row = scan.select(
            pl.len(), pl.col("a").sum(), pl.col("b").sum(), order.fill_null(True).all()
        )
    else:
        row = scan.select(pl.len(), pl.col("a").sum(), pl.col("w").sum(), pl.col("b").sum())
    values = row.collect(engine="streaming").row(0)
    return tuple(round(v, 3) if isinstance(v, float) else v for v in values)


@dataclass
class Result:
    workload: str
    budget: int
    engine: str
    seconds: float | None  # None: failed or ran out of time
    cpu: float | None  # CPU seconds of the process (every thread), less sensitive to load
    peak_rss: int | None  # the process's VmHWM
    growth: int | None  # VmHWM less the resident set before the run (libraries loaded)
    accounted: int | None
    note: str = ""


def measure(
    engine: str,
    workload: str,
    fact: Path,
    dim: Path,
    budget: int,
    timeout: float,
    allocator: dict[str, str] | None = None,
) -> tuple[Result, tuple[Any, ...] | None]:
    """One engine on one workload in a fresh process, and the checksum of its answer.

    ``allocator``: environment variables the process starts with (`ALLOCATOR`)."""
    work = Path(tempfile.mkdtemp(prefix="streamnet-bench-memory-"))
    out = work / "out.parquet"
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    child = spawn.Process(target=_child, args=(engine, (workload, fact, dim, out, budget), queue))
    saved = {name: os.environ.get(name) for name in allocator or {}}
    os.environ.update(allocator or {})
    try:
        child.start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        answer: Any = None
        deadline = time.perf_counter() + timeout
        while answer is None:
            alive = child.is_alive()
            try:
                answer = queue.get(timeout=1.0)
            except Empty:
                if not alive:  # killed (by the operating system, for memory) or crashed
                    answer = f"died (exit code {child.exitcode})"
                elif time.perf_counter() > deadline:
                    answer = f"over {timeout:.0f} s"
        if isinstance(answer, str):
            return Result(workload, budget, engine, None, None, None, None, None, answer), None
        seconds, cpu, peak, baseline, accounted = answer
        child.join()
        summary = _checksum(workload, out)
        shown = accounted if engine == "streamnet" else None
        growth = None if peak is None or baseline is None else peak - baseline
        return Result(workload, budget, engine, seconds, cpu, peak, growth, shown), summary
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
        shutil.rmtree(work, ignore_errors=True)


def run(
    *,
    rows: int = 60_000_000,
    keys: int = 20_000_000,
    budget: int = 2 * 2**30,
    workloads: tuple[str, ...] = WORKLOADS,
    quarter: bool = True,
    timeout: float = 1200.0,
    data_dir: str = ".cache/bench",
    engines: tuple[str, ...] = ENGINES,
    allocator: dict[str, str] | None = ALLOCATOR,
) -> tuple[int, int, list[Result]]:
    """Every engine on every workload at ``budget`` and, with ``quarter``, at a quarter of it,
    each process started with the environment ``allocator`` (`ALLOCATOR`; None: as it is)."""
    fact, dim = generate(rows, keys, data_dir)
    results = []
    for limit in (budget, budget // 4) if quarter else (budget,):
        for workload in workloads:
            reference = None
            for engine in engines:
                result, summary = measure(
                    engine, workload, fact, dim, limit, timeout, allocator=allocator
                )
                if summary is not None:
                    if reference is not None and summary != reference:
                        raise AssertionError(
                            f"{workload}: {engine} answered {summary}, another engine {reference}"
                        )
                    reference = summary
                results.append(result)
    return rows, keys, results


def _mib(nbytes: int | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:,.0f}"


def report(rows: int, keys: int, results: list[Result]) -> str:
    lines = [
        f"{rows:,} rows over {keys:,} keys read from Parquet, answers written to Parquet; "
        "target: streamnet's peak RSS at most the budget + 20%, and within 1.5x of DuckDB's "
        "time at the same limit (Polars' streaming engine has no limit to set)",
        "",
        "| budget MiB | workload | engine | seconds | CPU s | peak RSS MiB (OS) | growth MiB | "
        "accounted MiB | RSS / budget | time / DuckDB | CPU / DuckDB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = []
    for r in results:
        if r.note:
            failures.append(f"- {r.engine}, {r.workload} at {_mib(r.budget)} MiB: {r.note}")
        duck = next(
            (d for d in results
             if d.engine == "duckdb" and d.workload == r.workload and d.budget == r.budget),
            None,
        )  # fmt: skip
        seconds = "failed" if r.seconds is None else f"{r.seconds:.1f}"
        cpu = "n/a" if r.cpu is None else f"{r.cpu:.1f}"
        ratio = (
            f"{r.seconds / duck.seconds:.2f}x"
            if r.seconds is not None and duck is not None and duck.seconds else "n/a"
        )  # fmt: skip
        cpu_ratio = (
            f"{r.cpu / duck.cpu:.2f}x" if r.cpu is not None and duck is not None and duck.cpu
            else "n/a"
        )  # fmt: skip
        rss = f"{r.peak_rss / r.budget:.2f}" if r.peak_rss is not None else "n/a"
        lines.append(
            f"| {_mib(r.budget)} | {r.workload} | {r.engine} | {seconds} | {cpu} | "
            f"{_mib(r.peak_rss)} | {_mib(r.growth)} | {_mib(r.accounted)} | {rss} | {ratio} | "
            f"{cpu_ratio} |"
        )
    if failures:
        lines += ["", "Failed runs:", *failures]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
