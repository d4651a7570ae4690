"""W2's streamnet job: one rank of a hash shuffle; run it as ``streamnet run -n 2 shuffle_rank.py``.

Each rank generates its share of the data (chunk ``c`` goes to rank
``c % nranks``), streams it through ``actors.shuffle`` on the ``key`` column,
and a sink counts the rows and sums ``key``, ``a`` and ``x`` of what it
receives, holding nothing. Every rank prints one JSON line (prefixed with
``W2 ``) with what it measured:

- ``seconds``: wall time of the network run on this rank, from a barrier that
  every rank passes before it starts; the shuffle's time is the slowest rank's.
- ``peak_rss``: the process's resident high-water mark (``VmHWM``) over its
  whole life, imports included; ``rss_before`` is the resident set just before
  the network ran, so ``peak_rss - rss_before`` is what the run itself added.
- ``bytes_sent`` / ``bytes_received`` / ``peak_buffered_bytes`` /
  ``spilled_bytes``: the shuffle's own report (Arrow bytes of the pieces sent to
  and received from the peer; the bytes of owned pieces held in memory at peak;
  bytes spilled to disk beyond ``--max-buffered``).

With ``--check`` the sink also verifies that each partition it gets is one this
rank owns and that every row's key hashes to that partition, and the ranks
exchange their sets of distinct keys so that rank 0 can check that no key
reached two ranks; a check run is not meant to be timed.

The generator is plain numpy arithmetic on the global row number (no random
number generator), so it is cheap, deterministic per chunk, and the same for
every engine: ``benchmarks.shuffle`` builds Dask's partitions with it too.
Only numpy, pyarrow, polars and streamnet are imported, so the script runs
from any working directory.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

ROW_BYTES = 64
"""One int64 key and seven int64/float64 value columns."""
CHUNK_ROWS = 1 << 20
"""Rows per generated chunk (64 MiB)."""
KEY_BITS = 24
"""Keys lie in ``[0, 2**KEY_BITS)``: each key repeats a few times in a 2 GiB run."""
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
PREFIX = "W2 "
"""Marks the job's result lines in its output."""


def chunk_count(total_rows: int, chunk_rows: int = CHUNK_ROWS) -> int:
    """Number of chunks the data is generated in."""
    return -(-total_rows // chunk_rows)


def _keys(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers ``start..stop`` (int64) and their keys: a multiplicative hash cut to KEY_BITS."""
    row = np.arange(start, stop, dtype=np.int64)
    key = row.view(np.uint64) * _GOLDEN
    key >>= np.uint64(64 - KEY_BITS)
    return row, key.view(np.int64)


@functools.cache
def _template(chunk_rows: int) -> dict[str, np.ndarray]:
    """Five value columns made once per process and shared, read-only, by every chunk."""
    row, key = _keys(0, chunk_rows)
    columns = {
        "b": row ^ key,
        "c": row * 7 + key,
        "y": key * 0.25,
        "z": (row & 1023) * 1.5,
        "w": key + 0.125,
    }
    for column in columns.values():
        column.flags.writeable = False
    return columns


def chunk_columns(
    index: int, total_rows: int, chunk_rows: int = CHUNK_ROWS
) -> dict[str, np.ndarray]:
    """The columns of chunk ``index`` (rows ``index * chunk_rows`` onward) as numpy arrays.

    Three columns are computed per chunk: ``key``, a multiplicative hash of the
    row number cut to ``KEY_BITS`` bits; ``a``, the row number; ``x = a / 2``;
    so the sums of ``a`` and ``x`` have closed forms. The other five
    (``b, c, y, z, w``) are slices of a template made once per process: the
    shuffle moves them like any column, and making them costs nothing per chunk.
    That keeps generation at a few milliseconds a chunk, a small part of the time.
    """
    start = index * chunk_rows
    stop = min(start + chunk_rows, total_rows)
    a, key = _keys(start, stop)
    template = {name: column[: stop - start] for name, column in _template(chunk_rows).items()}
    return {"key": key, "a": a, **template, "x": a * 0.5}


def generate_chunk(index: int, total_rows: int, chunk_rows: int = CHUNK_ROWS) -> pa.Table:
    """Chunk ``index`` as an Arrow table (wraps the numpy arrays, no copy)."""
    return pa.table(chunk_columns(index, total_rows, chunk_rows))


@dataclass
class Totals:
    """Rows and sums of what one rank received (or of the whole generated data)."""

    rows: int = 0
    sum_key: int = 0
    sum_a: int = 0
    sum_x: float = 0.0
    partitions: list[int] = field(default_factory=list)
    largest_partition_bytes: int = 0

    def add(self, frame: pl.DataFrame) -> None:
        sums = frame.select(pl.col("key").sum(), pl.col("a").sum(), pl.col("x").sum()).row(0)
        self.rows += frame.height
        self.sum_key += int(sums[0])
        self.sum_a += int(sums[1])
        self.sum_x += float(sums[2])


def expected_totals(total_rows: int, chunk_rows: int = CHUNK_ROWS) -> Totals:
    """The totals of the generated data: keys summed chunk by chunk, ``a`` and ``x`` in closed form."""
    sum_key = 0
    for start in range(0, total_rows, chunk_rows):
        sum_key += int(_keys(start, min(start + chunk_rows, total_rows))[1].sum())
    sum_a = total_rows * (total_rows - 1) // 2
    return Totals(total_rows, sum_key, sum_a, sum_a * 0.5)


def _rss_bytes(field: str = "VmRSS") -> int:
    """The process's resident set (or another ``/proc/self/status`` size field), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class Phases:
    """Timers around the shuffle's steps, and memory readings, for ``--phases`` runs.

    Seconds per step, summed over the run on one rank (steps in the thread pool
    overlap others): ``generate``, making chunks; ``partition``, the shuffle's
    hash partitioning of each chunk (thread pool); ``serialize``, packing each
    piece bound for the peer for the wire (`Backend.pack`: its Arrow buffers, in a
    thread, inside ``send``); ``send``, each awaited send until MPI completed it, serialization
    included; ``spill``, writing held pieces to disk (thread pool); ``sink``,
    counting and summing received partitions. Memory, in bytes: the resident
    high-water mark and resident set when the first partition reaches the sink
    (all input ended, everything owned is held), the bytes Arrow's allocator
    had live then, and the resident set after the run. The steps are wrapped by
    replacing module attributes of streamnet and actors in this process only.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(
            ("generate", "partition", "serialize", "send", "spill", "sink"), 0.0
        )
        self.memory: dict[str, int] = {}

    def _timed(self, name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return call

    def _timed_async(self, name: str, fn: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return call

    def install(self) -> None:
        from streamnet.backends.cpu._backend import CpuBackend
        from streamnet.comm import _mpi_endpoint
        from streamnet.memory import _budget

        global generate_chunk
        generate_chunk = self._timed("generate", generate_chunk)
        for module, name, step in (
            (CpuBackend, "hash_partition", "partition"),
            (CpuBackend, "pack", "serialize"),
            (_budget, "_spill_all", "spill"),
        ):
            setattr(module, name, self._timed(step, getattr(module, name)))
        endpoint = _mpi_endpoint.Endpoint
        endpoint.send = self._timed_async("send", endpoint.send)  # type: ignore[method-assign]
        Totals.add = self._timed("sink", Totals.add)  # type: ignore[method-assign]

    def first_output(self) -> None:
        if not self.memory:
            self.memory["peak_rss_at_output"] = _rss_bytes("VmHWM")
            self.memory["rss_at_output"] = _rss_bytes()
            self.memory["arrow_bytes_at_output"] = pa.total_allocated_bytes()


def main(argv: list[str] | None = None) -> None:
    import actors
    from streamnet import Channel, Context, Message, Network, TableChunk, define_actor
    from streamnet import round_robin as owner

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, required=True, help="total bytes over all ranks")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    parser.add_argument("--partitions", type=int, default=None, help="default: one per rank")
    parser.add_argument("--max-buffered", type=int, default=None, help="spill beyond (bytes)")
    parser.add_argument("--check", action="store_true", help="verify key ownership (untimed)")
    parser.add_argument(
        "--phases", action="store_true", help="time the shuffle's steps (see Phases)"
    )
    args = parser.parse_args(argv)
    phases = Phases() if args.phases else None
    if phases is not None:
        phases.install()
    total_rows = args.bytes // ROW_BYTES

    @define_actor()
    async def source(ctx: Context, ch_out: Channel[TableChunk]) -> int:
        """This rank's chunks (``c % nranks == rank``), each generated in the thread pool."""
        indices = range(ctx.rank, chunk_count(total_rows, args.chunk_rows), ctx.nranks)
        for seq, index in enumerate(indices):
            table = await ctx.to_thread(generate_chunk, index, total_rows, args.chunk_rows)
            await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(table)))
        await ch_out.drain(ctx)
        return len(indices)

    @define_actor()
    async def sink(ctx: Context, ch_in: Channel[TableChunk], partitions: int) -> tuple[Totals, Any]:
        """Counts and sums each partition as it arrives and drops it."""
        totals = Totals()
        keys: list[pl.Series] = []
        while (msg := await ch_in.recv(ctx)) is not None:
            frame = TableChunk.from_message(msg).to_polars()
            if frame.height == 0:
                continue
            if phases is not None:
                phases.first_output()
            partition = msg.sequence_number
            totals.partitions.append(partition)
            totals.largest_partition_bytes = max(
                totals.largest_partition_bytes, int(frame.estimated_size())
            )
            await ctx.to_thread(totals.add, frame)
            if args.check:
                assert owner(partition, ctx.nranks) == ctx.rank, (partition, ctx.rank)
                cut = await ctx.to_thread(
                    ctx.backend.hash_partition,
                    TableChunk.from_polars(frame.select("key")),
                    ["key"],
                    partitions,
                )
                assert list(cut) == [partition], (partition, sorted(cut))
                keys.append(frame["key"].unique())
        distinct = pl.concat(keys).unique() if keys else pl.Series("key", [], pl.Int64)
        return totals, distinct

    with Context() as ctx:
        partitions = args.partitions or ctx.nranks
        raw = ctx.create_channel(TableChunk)
        shuffled = ctx.create_channel(TableChunk, capacity=1)
        gen = source(ctx, raw)
        exchange = actors.shuffle(
            ctx,
            raw,
            shuffled,
            "key",
            num_partitions=partitions,
            max_buffered_bytes=args.max_buffered,
        )
        counter = sink(ctx, shuffled, partitions)
        network = Network(ctx, [gen, exchange, counter])

        async def timed() -> float:
            await ctx.communicator.barrier(("w2", "start"))
            start = time.perf_counter()
            await network.run_async(progress=False)
            return time.perf_counter() - start

        generate_chunk(0, 1, args.chunk_rows)  # the template, and pyarrow's first-call imports
        rss_before = _rss_bytes()
        seconds = asyncio.run(timed())
        totals, distinct = counter.result()
        report = exchange.result()
        overlap = None
        if args.check:

            async def gather() -> list[Any]:
                table = pa.table({"key": distinct.to_arrow()})
                return await ctx.communicator.allgather(("w2", "keys"), table)

            key_sets = asyncio.run(gather())
            if ctx.rank == 0:
                overlap = 0
                for i, mine in enumerate(key_sets):
                    for theirs in key_sets[i + 1 :]:
                        both = pl.DataFrame(mine).join(pl.DataFrame(theirs), on="key")
                        overlap += both.height
        line = {
            "rank": ctx.rank,
            "nranks": ctx.nranks,
            "partitions": partitions,
            "chunks": gen.result(),
            "seconds": seconds,
            "rss_before": rss_before,
            "peak_rss": _rss_bytes("VmHWM"),  # not ru_maxrss, which Linux keeps across exec
            "bytes_sent": sum(report.bytes_sent.values()),
            "bytes_received": sum(report.bytes_received.values()),
            "peak_buffered_bytes": report.peak_buffered_bytes,
            "spilled_bytes": report.spilled_bytes,
            "totals": asdict(totals),
            "checked": args.check,
            "keys_on_two_ranks": overlap,
        }
        if phases is not None:
            line["phases"] = {name: round(t, 4) for name, t in phases.seconds.items()}
            line["memory"] = {**phases.memory, "rss_after": _rss_bytes()}
            line["actors"] = {
                a.name.split("#")[0]: {
                    "busy": round(a.busy_seconds, 4),
                    "blocked_in": round(a.blocked_input_seconds, 4),
                    "blocked_out": round(a.blocked_output_seconds, 4),
                }
                for a in network.statistics().actors
            }
    print(PREFIX + json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
