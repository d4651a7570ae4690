"""W2: hash shuffle across 2 ranks over MPI, beside Dask's P2P shuffle.

The data is generated on the fly by both engines with the same function
(:func:`benchmarks.shuffle_rank.chunk_columns`: numpy arithmetic on the row
number, 64 bytes a row, chunks of 1M rows) and shuffled on its ``key`` column;
afterwards each receiving side counts its rows and sums ``key``, ``a`` and
``x``, holding nothing.

- streamnet: ``streamnet run -n 2 benchmarks/shuffle_rank.py`` (two MPI
  processes); each rank generates every other chunk, streams it through
  ``actors.shuffle`` and a counting sink. Time is the slowest rank's network
  run, from a barrier both pass first. Before the timed runs, one check run
  verifies that every row reached the rank owning its key's partition and that
  no key reached both ranks.
- Dask: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``,
  one partition per generated chunk (``dd.from_map``), ``shuffle("key",
  shuffle_method="p2p")``, then per-partition count and sums. Time is the
  ``compute()`` call on a cluster already started (a fresh one per run, so that
  each worker's peak resident set belongs to that run).

Rows, the sum of keys and the sums of ``a`` and ``x`` must equal the generated
totals in both engines before a timing counts. Throughput is the data's size
over the time (GB/s, 10**9 bytes), per rank half of it.

Memory: streamnet's shuffle holds a rank's owned partitions until every rank's
input ended, spilling beyond ``max_buffered_bytes`` (2 GiB a rank here). Below
that bound each rank owns one partition (``num_partitions`` = ranks) and emits
what it holds without a copy; above it the data is cut into partitions of at
most a quarter of the bound, so that loading a spilled partition back for the
sink stays within it. A rank's *working set* is the bytes of owned pieces it
held in memory at peak (the shuffle report's ``peak_buffered_bytes``) plus one
generated chunk in flight, plus, when it spilled, the largest partition loaded
back for the sink (see :func:`working_set`); its peak is ``VmHWM``, the
whole process's resident high-water mark, imports (about 200 MiB) included. A Dask worker's
peak is its ``VmHWM`` too, after one run on a fresh cluster.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.shuffle_rank import (
    CHUNK_ROWS,
    PREFIX,
    ROW_BYTES,
    Totals,
    chunk_columns,
    chunk_count,
    expected_totals,
)

GiB = 2**30
NRANKS = 2
MAX_BUFFERED = 2 * GiB
"""Bytes of owned pieces a streamnet rank keeps in memory before it spills."""
JOB = Path(__file__).with_name("shuffle_rank.py")
STREAMNET = "streamnet (MPI, 2 ranks)"
DASK = "dask p2p (2 workers)"


@dataclass
class Result:
    """One engine's best run at one size; lists are per rank (streamnet) or per worker (Dask)."""

    engine: str
    nbytes: int
    seconds: float
    peak_rss: list[int]
    rss_before: list[int]
    working_set: list[int] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    spilled: list[int] = field(default_factory=list)
    partitions: int = 0
    phases: list[dict[str, Any]] = field(default_factory=list)
    """Per rank, from an extra ``--phases`` run: seconds per step, the shuffle actor's busy
    time, and memory readings (see ``shuffle_rank.Phases``)."""

    @property
    def gb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e9


def partitions_for(nbytes: int, max_buffered: int, nranks: int = NRANKS) -> int:
    """One partition per rank when a rank's share fits the bound, else a quarter of it each."""
    per_rank = nbytes / nranks
    if per_rank <= max_buffered:
        return nranks
    return nranks * math.ceil(4 * per_rank / max_buffered)


def _check(totals: Totals, expected: Totals, engine: str) -> None:
    got = (totals.rows, totals.sum_key, totals.sum_a)
    want = (expected.rows, expected.sum_key, expected.sum_a)
    if got != want or abs(totals.sum_x - expected.sum_x) > 1e-9 * abs(expected.sum_x):
        raise AssertionError(
            f"{engine}: rows and sums {(*got, totals.sum_x)} differ from the generated "
            f"{(*want, expected.sum_x)}"
        )


def _result_lines(stdout: str) -> list[dict[str, Any]]:
    """The ranks' JSON results in ``stdout``. mpiexec may put two ranks' lines on one line
    when they print at once (one's newline after the other's text), so each result is
    read from its prefix on, whatever follows it."""
    decoder = json.JSONDecoder()
    results = []
    start = stdout.find(PREFIX)
    while start != -1:
        result, end = decoder.raw_decode(stdout, start + len(PREFIX))
        results.append(result)
        start = stdout.find(PREFIX, end)
    return results


def run_streamnet_job(
    nbytes: int,
    *,
    chunk_rows: int = CHUNK_ROWS,
    partitions: int | None = None,
    max_buffered: int | None = MAX_BUFFERED,
    check: bool = False,
    phases: bool = False,
    timeout: float = 1800,
) -> list[dict[str, Any]]:
    """Run the job on ``NRANKS`` ranks; each rank's JSON line, in rank order."""
    command = [sys.executable, "-m", "streamnet", "run", "-n", str(NRANKS), str(JOB)]
    command += ["--bytes", str(nbytes), "--chunk-rows", str(chunk_rows)]
    if partitions is not None:
        command += ["--partitions", str(partitions)]
    if max_buffered is not None:
        command += ["--max-buffered", str(max_buffered)]
    if check:
        command.append("--check")
    if phases:
        command.append("--phases")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    lines = _result_lines(done.stdout)
    if done.returncode != 0 or len(lines) != NRANKS:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {done.returncode}, {len(lines)} result lines):\n"
            + done.stderr[-3000:]
        )
    return sorted(lines, key=lambda line: line["rank"])


def working_set(line: dict[str, Any], chunk_bytes: int) -> int:
    """A rank's working set: owned pieces held in memory at peak, one generated chunk, and,
    when pieces were spilled, the largest partition loaded back from disk for the sink."""
    loaded = line["totals"]["largest_partition_bytes"] if line["spilled_bytes"] else 0
    return int(line["peak_buffered_bytes"]) + chunk_bytes + int(loaded)


def _rank_totals(lines: list[dict[str, Any]]) -> Totals:
    total = Totals()
    owners: dict[int, int] = {}
    for line in lines:
        got = line["totals"]
        total.rows += got["rows"]
        total.sum_key += got["sum_key"]
        total.sum_a += got["sum_a"]
        total.sum_x += got["sum_x"]
        for partition in got["partitions"]:
            if partition in owners:
                raise AssertionError(
                    f"streamnet: partition {partition} reached ranks {owners[partition]} "
                    f"and {line['rank']}"
                )
            owners[partition] = line["rank"]
    return total


def run_streamnet(
    nbytes: int,
    expected: Totals,
    *,
    chunk_rows: int = CHUNK_ROWS,
    max_buffered: int = MAX_BUFFERED,
    repeats: int = 1,
    phases: bool = True,
) -> Result:
    """A check run, the fastest of ``repeats`` timed runs (each one's totals checked), and with
    ``phases`` one more run that times the shuffle's steps (not counted in the timing)."""
    partitions = partitions_for(nbytes, max_buffered)

    def job(**flags: bool) -> list[dict[str, Any]]:
        return run_streamnet_job(
            nbytes,
            chunk_rows=chunk_rows,
            partitions=partitions,
            max_buffered=max_buffered,
            **flags,
        )

    checked = job(check=True)
    _check(_rank_totals(checked), expected, STREAMNET)
    overlap = checked[0]["keys_on_two_ranks"]
    if overlap != 0:
        raise AssertionError(f"streamnet: {overlap} keys reached both ranks")
    best: list[dict[str, Any]] | None = None
    for _ in range(max(1, repeats)):
        lines = job()
        _check(_rank_totals(lines), expected, STREAMNET)
        if best is None or max(r["seconds"] for r in lines) < max(r["seconds"] for r in best):
            best = lines
    assert best is not None
    steps = []
    if phases:
        for line in job(phases=True):
            steps.append(
                {
                    "wall": line["seconds"],
                    **line["phases"],
                    "shuffle_busy": line["actors"]["shuffle"]["busy"],
                    "source_blocked_out": line["actors"]["source"]["blocked_out"],
                    **line["memory"],
                    "held": line["peak_buffered_bytes"],
                }
            )
    chunk_bytes = min(chunk_rows, expected.rows) * ROW_BYTES
    return Result(
        STREAMNET,
        nbytes,
        max(r["seconds"] for r in best),
        [r["peak_rss"] for r in best],
        [r["rss_before"] for r in best],
        [working_set(r, chunk_bytes) for r in best],
        [r["bytes_sent"] for r in best],
        [r["spilled_bytes"] for r in best],
        partitions,
        steps,
    )


class _Chunks:
    """Dask's partitions: generated chunk ``index`` as pandas, in the worker.

    Its Dask token is its parameters, so building the graph hashes no data.
    """

    def __init__(self, total_rows: int, chunk_rows: int) -> None:
        self.total_rows = total_rows
        self.chunk_rows = chunk_rows

    def __call__(self, index: int) -> pd.DataFrame:
        return pd.DataFrame(chunk_columns(index, self.total_rows, self.chunk_rows))

    def __dask_tokenize__(self) -> tuple[str, int, int]:
        return ("w2-chunks", self.total_rows, self.chunk_rows)


def _partition_sums(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rows": [len(frame)],
            "sum_key": [int(frame["key"].sum())],
            "sum_a": [int(frame["a"].sum())],
            "sum_x": [float(frame["x"].sum())],
        }
    )


def _peak_rss() -> int:
    """The process's resident high-water mark (``VmHWM``).

    Not ``ru_maxrss``: Linux carries that across fork and exec, so a worker
    started by a large parent would report the parent's peak.
    """
    return _status_bytes("VmHWM")


def _rss() -> int:
    return _status_bytes("VmRSS")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_dask_once(total_rows: int, chunk_rows: int) -> tuple[float, Totals, list[int], list[int]]:
    """One P2P shuffle on a fresh 2-worker cluster: seconds, totals, worker peaks and baselines."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    meta = pd.DataFrame({k: pd.Series(dtype=v.dtype) for k, v in chunk_columns(0, 1, 1).items()})
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=NRANKS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        client.wait_for_workers(NRANKS)
        frame = dd.from_map(  # type: ignore[no-untyped-call]
            _Chunks(total_rows, chunk_rows),
            range(chunk_count(total_rows, chunk_rows)),
            meta=meta,
            enforce_metadata=False,
        )
        sums = frame.shuffle("key", shuffle_method="p2p").map_partitions(
            _partition_sums, meta=_partition_sums(meta)
        )
        client.run(chunk_columns, 0, 1, chunk_rows)  # each worker's template, as a rank's
        before = list(client.run(_rss).values())
        start = time.perf_counter()
        parts = sums.compute()
        seconds = time.perf_counter() - start
        peaks = list(client.run(_peak_rss).values())
    totals = Totals(
        int(parts["rows"].sum()),
        int(parts["sum_key"].sum()),
        int(parts["sum_a"].sum()),
        float(parts["sum_x"].sum()),
    )
    return seconds, totals, peaks, before


def run_dask(
    nbytes: int, expected: Totals, *, chunk_rows: int = CHUNK_ROWS, repeats: int = 1
) -> Result:
    """The fastest of ``repeats`` runs, each on a fresh cluster and each one's totals checked."""
    best: Result | None = None
    for _ in range(max(1, repeats)):
        seconds, totals, peaks, before = run_dask_once(expected.rows, chunk_rows)
        _check(totals, expected, DASK)
        if best is None or seconds < best.seconds:
            best = Result(DASK, nbytes, seconds, peaks, before)
    assert best is not None
    return best


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run(
    *,
    sizes: tuple[int, ...] = (2 * GiB, 8 * GiB),
    repeats: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    max_buffered: int = MAX_BUFFERED,
) -> tuple[list[Result], list[str]]:
    """Each size through both engines; sizes whose streamnet ranks may not fit in memory are skipped.

    A rank needs about its resident bound (its share, at most ``max_buffered``)
    plus a few partitions and chunks in flight; a size is skipped, with a note,
    when twice that for both ranks exceeds the memory available.
    """
    results: list[Result] = []
    notes: list[str] = []
    for nbytes in sizes:
        rows = nbytes // ROW_BYTES
        share = min(nbytes / NRANKS, max_buffered)
        needed = NRANKS * 2 * (share + 4 * chunk_rows * ROW_BYTES)
        available = _available_bytes()
        if available is not None and needed > available:
            notes.append(
                f"{size(nbytes)} skipped: about {needed / GiB:.1f} GiB needed, "
                f"{available / GiB:.1f} GiB available"
            )
            continue
        expected = expected_totals(rows, chunk_rows)
        results.append(
            run_streamnet(
                nbytes, expected, chunk_rows=chunk_rows, max_buffered=max_buffered, repeats=repeats
            )
        )
        results.append(run_dask(nbytes, expected, chunk_rows=chunk_rows, repeats=repeats))
    return results, notes


def size(nbytes: int) -> str:
    """A data size as a table cell: GiB from 1 GiB up, else MiB."""
    return f"{nbytes / GiB:g} GiB" if nbytes >= GiB else f"{nbytes / 2**20:g} MiB"


def _gib(values: list[int]) -> str:
    return " / ".join(f"{v / GiB:.2f}" for v in values) if values else "n/a"


def _breakdown(r: Result) -> str:
    """Where one streamnet run's time and memory went, per rank (from its ``--phases`` run)."""

    def each(key: str, scale: float = 1.0, form: str = "{:.2f}") -> str:
        return " / ".join(form.format(p[key] / scale) for p in r.phases)

    return (
        f"streamnet at {size(r.nbytes)}, per rank (a run with the steps timed, "
        f"{each('wall')} s): shuffle actor busy {each('shuffle_busy')} s, of which "
        f"hash partitioning {each('partition')} s and awaited sends {each('send')} s "
        f"(packing pieces for the wire, in a thread, {each('serialize')} s); "
        f"spilling {each('spill')} s; generation (thread pool) {each('generate')} s, "
        f"the source then waiting on the full channel {each('source_blocked_out')} s; "
        f"sink {each('sink')} s. Memory when all input had ended: resident "
        f"{each('rss_at_output', GiB)} GiB, of which held pieces {each('held', GiB)} GiB "
        f"(Arrow's allocator {each('arrow_bytes_at_output', GiB)} GiB live); "
        f"resident after the run {each('rss_after', GiB)} GiB."
    )


def report(results: list[Result], notes: list[str] | None = None) -> str:
    lines = [
        f"hash shuffle on an int64 key, {NRANKS} ranks (streamnet over MPI) or {NRANKS} "
        "worker processes (Dask); 64-byte rows generated on the fly; targets: streamnet "
        ">= 2x Dask's throughput, >= 1 GB/s per rank, peak memory per rank < 2x its "
        "working set",
        "",
        "| data | engine | seconds | GB/s | GB/s per rank | peak RSS GiB per rank "
        "| working set GiB per rank | spilled GiB | ratio to dask |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for nbytes in dict.fromkeys(r.nbytes for r in results):
        group = {r.engine: r for r in results if r.nbytes == nbytes}
        dask = group.get(DASK)
        for r in group.values():
            ratio = f"{r.gb_per_s / dask.gb_per_s:.2f}x" if dask is not None else "n/a"
            spilled = f"{sum(r.spilled) / GiB:.2f}" if r.spilled else "n/a"
            lines.append(
                f"| {size(nbytes)} | {r.engine} | {r.seconds:.2f} | {r.gb_per_s:.2f} | "
                f"{r.gb_per_s / NRANKS:.2f} | {_gib(r.peak_rss)} | {_gib(r.working_set)} | "
                f"{spilled} | {ratio} |"
            )
        ours = group.get(STREAMNET)
        if ours is None:
            continue
        speedup = ours.gb_per_s / dask.gb_per_s if dask is not None else math.nan
        memory = max(p / w for p, w in zip(ours.peak_rss, ours.working_set, strict=True))
        met = {True: "met", False: "missed"}
        verdicts.append(
            f"{size(nbytes)} ({ours.partitions} partitions): "
            f"2x Dask {met[speedup >= 2]} ({speedup:.1f}x); "
            f"1 GB/s per rank {met[ours.gb_per_s / NRANKS >= 1]} "
            f"({ours.gb_per_s / NRANKS:.2f}); "
            f"peak < 2x working set {met[memory < 2]} ({memory:.2f}x)"
        )
    lines += ["", *("targets, " + v for v in verdicts)]
    lines += [_breakdown(r) for r in results if r.phases]
    lines += [f"note: {n}" for n in notes or []]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
