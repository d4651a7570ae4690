"""The working memory of the backend's kernels, measured, beside the factors the backend
reserves by (`Backend.working_memory`).

Each kernel runs alone in a fresh process on a table like W7's (an int64 key over
``0.3 * rows`` values, a float64, an int64 and an 8-character string): the inputs
are made, the resident set's high-water mark is reset (``/proc/self/clear_refs``),
the kernel runs once and the mark is read. The factor is the mark's growth plus
the input, per byte of input as `TableChunk.nbytes` counts it (for a scan: per
byte the footer says it decodes, `ScanTask.decoded`, besides the encoded bytes it
reads; for the merge: per byte of the slices it holds). The processes free memory
at once (jemalloc's and mimalloc's decay set to 0), so that what the kernel takes
is new memory, not pages the making of its inputs left behind. A kernel runs once on
a small input first, so that its threads and caches are there before the mark.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
import polars as pl

KINDS = (
    "scan", "scan_aggregate", "aggregate", "finish", "hash_partition", "range_partition",
    "concat", "sort", "merge", "join", "write",
)  # fmt: skip
"""The kinds of kernel measured (`streamnet.KernelKind`)."""

FREE_AT_ONCE = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0", "MIMALLOC_PURGE_DELAY": "0"}
"""The child's allocator settings: Polars' jemalloc and Arrow's mimalloc return freed pages at once."""


def table(rows: int, seed: int = 7) -> pl.DataFrame:
    """W7's fact table: ``k`` over ``0.3 * rows`` keys, ``a``, ``b``, an 8-character ``s``."""
    rng = np.random.default_rng(seed)
    letters = rng.integers(97, 123, (rows, 8), dtype=np.uint8).view("S8").ravel()
    return pl.DataFrame(
        {
            "k": rng.integers(0, max(1, int(rows * 0.3)), rows),
            "a": rng.random(rows),
            "b": rng.integers(-(10**9), 10**9, rows),
            "s": pl.Series(letters).cast(pl.String),
        }
    )


# ------------------------------------------------------------------ the kernels
# Each setup makes the inputs and says how many bytes they count; each run calls the kernel.
Setup = Callable[[Any, int, Path], tuple[Any, int]]
Run = Callable[[Any, Any], Any]


def _pieces(backend: Any, rows: int, parts: int = 8) -> list[Any]:
    frame = table(rows)
    step = -(-rows // parts)
    # copies, so that no piece keeps the whole frame's buffers alive
    return [backend.from_polars(frame.slice(i, step).clone().rechunk()) for i in range(0, rows, step)]


def _chunk(backend: Any, rows: int) -> Any:
    return backend.from_polars(table(rows))


def _scan_setup(aggregate: bool) -> Setup:
    def setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
        from streamnet import Agg, ParquetScan, PartialAggregate, Plan, plan_row_groups
        from streamnet import read_parquet_footers as footers

        path = work / f"scan-{rows}.parquet"
        if not path.exists():
            table(rows).write_parquet(path, row_group_size=rows, compression="zstd")
        columns = ("k", "a", "b") if aggregate else None
        steps = (
            (PartialAggregate(("k",), (Agg("a", "sum"), Agg("b", "max"), Agg(None, "len"))),)
            if aggregate else ()
        )  # fmt: skip
        plan = Plan(ParquetScan((path,), columns), steps)
        files = footers([path])
        compiled = backend.compile(plan, files.schema)
        (group,) = plan_row_groups(files, None, read_columns=columns)
        return (compiled, group.task), group.task.decoded

    return setup


def _scan(backend: Any, inputs: Any) -> Any:
    compiled, task = inputs
    return backend.scan(compiled, task)


def _kernel(backend: Any, rows: int) -> Any:
    from streamnet import Agg

    aggs = [Agg("a", "sum"), Agg("b", "max"), Agg(None, "len")]
    return backend.aggregation(["k"], aggs, backend.from_polars(table(1)).schema, ordered=False)


def _aggregate_setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
    chunk = _chunk(backend, rows)
    return (_kernel(backend, rows), chunk), chunk.nbytes


def _finish_setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
    kernel = _kernel(backend, rows)
    partials = [kernel.partial(piece) for piece in _pieces(backend, rows)]
    return (kernel, partials), sum(p.nbytes for p in partials)


def _spilled(backend: Any, chunks: list[Any], work: Path) -> list[Any]:
    for chunk in chunks:
        chunk.spill(work)
    return chunks


def _merge_setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
    from streamnet import SortOrder

    order = SortOrder(("k", "b"), (False, False), (False, False))
    runs = [backend.sort(piece, order) for piece in _pieces(backend, rows)]
    row_bytes = sum(run.nbytes for run in runs) / rows
    slice_rows = max(1, rows // 32)
    _spilled(backend, runs, work)
    return (runs, order, slice_rows), int(len(runs) * slice_rows * row_bytes)


def _merge(backend: Any, inputs: Any) -> Any:
    runs, order, slice_rows = inputs
    biggest = 0
    rows = len(runs) * slice_rows  # as the sort actor asks: one slice of every run
    for out in backend.merge_sorted(runs, order, rows=rows, slice_rows=slice_rows):
        biggest = max(biggest, out.num_rows)
    return biggest


def _join_setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
    from streamnet import JoinSpec

    left = _chunk(backend, rows)
    keys = max(1, int(rows * 0.3))
    rng = np.random.default_rng(3)
    right = backend.from_polars(pl.DataFrame({"k": rng.permutation(keys), "w": rng.random(keys)}))
    spec = JoinSpec(("k",), ("k",), "inner", "_right")
    return (left, right, spec), left.nbytes + right.nbytes


def _range_setup(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
    from streamnet import SortOrder

    chunk = _chunk(backend, rows)
    order = SortOrder(("k",), (False,), (False,))
    samples = backend.sample(chunk, ["k"], 1000, seed=1)
    bounds = backend.range_boundaries(samples, order, 4)
    return (chunk, bounds, order), chunk.nbytes


def _write(backend: Any, inputs: Any) -> Any:
    chunk, path = inputs
    writer = backend.parquet_writer(path, chunk.schema, compression="zstd")
    writer.write(chunk)
    writer.close()
    return None


def _sorted_run(backend: Any, inputs: Any) -> Any:
    from streamnet import SortOrder

    order = SortOrder(("k", "b"), (False, False), (False, False))
    return backend.sort(backend.concat(inputs), order)


def _loaded(setup: Setup) -> Setup:
    """``setup`` with its chunks spilled and loaded back: held as Arrow tables, as a kernel
    meets the chunks it loads from disk."""

    def loaded(backend: Any, rows: int, work: Path) -> tuple[Any, int]:
        from streamnet import TableChunk

        inputs, nbytes = setup(backend, rows, work)
        todo = [inputs]
        while todo:
            item = todo.pop()
            if isinstance(item, TableChunk):
                item.spill(work)
                item.make_available()
            elif isinstance(item, list | tuple):
                todo.extend(item)
        return inputs, nbytes

    return loaded


KERNELS: dict[str, tuple[Setup, Run]] = {
    "scan": (_scan_setup(False), _scan),
    "scan_aggregate": (_scan_setup(True), _scan),
    "aggregate": (_aggregate_setup, lambda b, i: i[0].partial(i[1])),
    "finish": (_finish_setup, lambda b, i: i[0].finish(b.concat(i[1]))),
    "hash_partition": (
        lambda b, rows, w: ((c := _chunk(b, rows)), c.nbytes),
        lambda b, c: b.hash_partition(c, ["k"], 16),
    ),
    "range_partition": (_range_setup, lambda b, i: b.range_partition(*i)),
    "concat": (
        lambda b, rows, w: ((p := _pieces(b, rows)), sum(x.nbytes for x in p)),
        lambda b, p: b.concat(p).to_polars(),
    ),
    "sort": (lambda b, rows, w: ((p := _pieces(b, rows)), sum(x.nbytes for x in p)), _sorted_run),
    "merge": (_merge_setup, _merge),
    "join": (_join_setup, lambda b, i: b.join(*i)),
    "write": (
        lambda b, rows, w: (((c := _chunk(b, rows)), w / "out.parquet"), c.nbytes),
        _write,
    ),
}
for _kind in ("hash_partition", "sort", "join", "finish", "write"):
    _setup, _run = KERNELS[_kind]
    KERNELS[f"{_kind} (loaded)"] = (_loaded(_setup), _run)
"""Kernels on chunks loaded back from disk (Arrow tables): "<kind> (loaded)"."""


# ------------------------------------------------------------------ measuring
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _child(kind: str, rows: int, queue: Any) -> None:
    import actors  # noqa: F401 - everything loaded before the mark
    from streamnet import Context

    try:
        with Context() as ctx, tempfile.TemporaryDirectory(prefix="kernel-memory-") as folder:
            backend = ctx.backend
            setup, run = KERNELS[kind]
            work = Path(folder)
            warm, _ = setup(backend, 2_000, work)
            run(backend, warm)
            del warm
            inputs, nbytes = setup(backend, rows, work)
            gc.collect()
            before = _status_kib("VmRSS")
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            result = run(backend, inputs)
            growth = (_status_kib("VmHWM") - before) * 1024
            out = getattr(result, "nbytes", 0) or 0
            del result
            queue.put((nbytes, growth, out))
    except Exception as exc:
        queue.put(f"{type(exc).__name__}: {exc}")


@dataclass
class Result:
    kind: str
    rows: int
    input_bytes: int
    growth: int
    output_bytes: int
    reserved: float  # the backend's factor

    @property
    def measured(self) -> float:
        """Peak bytes in use per byte of input (a merge's slices are not resident before)."""
        held = 0 if self.kind.split(" ")[0] in ("merge", "scan", "scan_aggregate") else self.input_bytes
        return (self.growth + held) / max(1, self.input_bytes)


def measure(kind: str, rows: int) -> Result:
    """One kernel in a fresh process."""
    from streamnet import Context

    with Context() as ctx:
        factor = ctx.backend.WORKING_MEMORY[kind.split(" ")[0]]  # type: ignore[index]
    saved = {name: os.environ.get(name) for name in FREE_AT_ONCE}
    os.environ.update(FREE_AT_ONCE)
    try:
        spawn = multiprocessing.get_context("spawn")
        queue = spawn.Queue()
        child = spawn.Process(target=_child, args=(kind, rows, queue))
        child.start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        answer: Any = None
        while answer is None:
            alive = child.is_alive()
            try:
                answer = queue.get(timeout=1.0)
            except Empty:
                if not alive:
                    answer = f"died (exit code {child.exitcode})"
    finally:
        child.join()
    if isinstance(answer, str):
        raise RuntimeError(f"measuring {kind}: {answer}")
    nbytes, growth, out = answer
    return Result(kind, rows, nbytes, growth, out, factor)


def run(*, rows: int = 1_000_000, kinds: tuple[str, ...] = tuple(KERNELS)) -> list[Result]:
    """Every kind of kernel on ``rows`` rows."""
    return [measure(kind, rows) for kind in kinds]


def report(results: list[Result]) -> str:
    lines = [
        "Peak memory of one kernel per byte of its input, measured (fresh process, VmHWM) "
        "beside the factor the backend reserves by",
        "",
        "| kernel | rows | input MiB | peak growth MiB | result MiB | measured | reserved | |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = "ok" if r.reserved >= r.measured else "UNDER"
        lines.append(
            f"| {r.kind} | {r.rows:,} | {r.input_bytes / 2**20:,.1f} | {r.growth / 2**20:,.1f} | "
            f"{r.output_bytes / 2**20:,.1f} | {r.measured:.2f} | {r.reserved:.2f} | {ok} |"
        )
    return "\n".join(lines)


def factors(results: list[Result], margin: float = 1.1) -> dict[str, float]:
    """Factors to reserve by: the measured ones with ``margin``, rounded up to a quarter."""
    out: dict[str, float] = {}
    for r in results:
        kind = r.kind.split(" ")[0]
        out[kind] = max(out.get(kind, 0.0), math.ceil(r.measured * margin * 4) / 4)
    return out


if __name__ == "__main__":
    print(report(run()))
