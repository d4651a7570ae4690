"""Ranks as Ray actors: the same jobs and results as in-process ranks (a local Ray cluster)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import actors
from actors.demo import build_network, lineitem
from streamnet import (
    Channel,
    Context,
    Network,
    NetworkMismatchError,
    RemoteRankError,
    define_actor,
    run_ranks,
)

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

from streamnet import run_on_ray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_cluster() -> Iterator[None]:
    """One local Ray cluster for the module: starting one takes seconds."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def test_the_demo_on_two_ray_ranks_equals_one_rank(tmp_path: Path) -> None:
    path = lineitem(600_000, tmp_path)  # three row groups to share between the ranks

    async def demo(ctx: Context) -> pl.DataFrame:
        network, sink = build_network(ctx, path)
        await network.run_async(progress=False)
        result: pl.DataFrame = sink.result()
        return result

    (alone,) = run_ranks(1, demo)
    on_ray = run_on_ray(2, demo, timeout=180)
    for result in on_ray:  # the demo gathers the sorted result onto every rank
        assert_frame_equal(result, alone, check_exact=False, rel_tol=1e-9)


async def shuffled(ctx: Context, frame: pl.DataFrame) -> None:
    """Run source -> shuffle on "k" -> collect on this rank."""
    a, b = ctx.create_channel(), ctx.create_channel()
    await Network(
        ctx,
        [actors.from_polars(ctx, a, frame), actors.shuffle(ctx, a, b, "k"), actors.collect(ctx, b)],
    ).run_async()


def test_a_rank_raising_on_ray_raises_its_error_and_fails_the_peers(tmp_path: Path) -> None:
    async def job(ctx: Context) -> None:
        frame = pl.DataFrame({"k": range(1000), "v": range(1000)})
        if ctx.rank == 1:
            raise ValueError("bad input on rank 1")
        try:
            await shuffled(ctx, frame)
        except RemoteRankError as exc:  # what the peers saw, for the driver to check
            (tmp_path / f"rank-{ctx.rank}.txt").write_text(f"{exc.rank}: {exc}")
            raise

    with pytest.raises(ValueError, match="bad input on rank 1") as info:
        run_on_ray(3, job, timeout=120)
    assert "on rank 1 of 3" in info.value.__notes__
    for peer in (0, 2):
        seen = (tmp_path / f"rank-{peer}.txt").read_text()
        assert seen == "1: rank 1 failed: ValueError: bad input on rank 1"


def test_a_ray_rank_failing_ends_a_peer_waiting_outside_any_exchange(tmp_path: Path) -> None:
    """Rank 0 waits on something that never happens, upstream of its only exchange."""

    async def job(ctx: Context) -> None:
        @define_actor
        async def source(ctx: Context, ch_out: Channel[Any]) -> None:
            if ctx.rank == 1:
                raise ValueError("bad input on rank 1")
            await asyncio.Event().wait()  # only the peer's failure ends this

        a, b = ctx.create_channel(), ctx.create_channel()
        aggregate = actors.groupby_agg(ctx, a, b, [], {"v": "sum"})
        try:
            await Network(ctx, [source(ctx, a), aggregate, actors.collect(ctx, b)]).run_async()
        except RemoteRankError as exc:
            (tmp_path / f"rank-{ctx.rank}.txt").write_text(f"{exc.rank}: {exc}")
            raise

    with pytest.raises(ValueError, match="bad input on rank 1"):
        run_on_ray(2, job, timeout=60)
    assert (tmp_path / "rank-0.txt").read_text() == (
        "1: rank 1 failed: ValueError: bad input on rank 1"
    )


def test_a_ray_rank_whose_process_dies_does_not_hang_the_others() -> None:
    async def job(ctx: Context) -> None:
        if ctx.rank == 0:
            os._exit(7)
        await shuffled(ctx, pl.DataFrame({"k": range(100)}))

    with pytest.raises(RuntimeError, match="the Ray actor of rank 0 died"):
        run_on_ray(2, job, timeout=120)


@pytest.mark.parametrize("before", [False, True])
def test_a_ray_rank_whose_job_returned_fails_a_peer_that_waits_for_it(before: bool) -> None:
    """Rank 1 returns while rank 0 runs a shuffle: rank 0 fails naming rank 1, where it
    waited until the timeout. With ``before``, a shuffle both ran first still completes."""
    frame = pl.DataFrame({"k": range(10)})

    async def job(ctx: Context) -> str:
        if before:
            await shuffled(ctx, frame)
        if ctx.rank == 1:
            return "nothing more to do"
        await shuffled(ctx, frame)
        return "ok"

    with pytest.raises(NetworkMismatchError, match=r"from rank 1, whose job already ended"):
        run_on_ray(2, job, timeout=60)
