"""Point-to-point traffic between every pair of ranks; prints one line per rank when all is well.

Run with ``streamnet run -n N exchange.py``.
"""

import asyncio

import numpy as np
import polars as pl
import pyarrow as pa

from streamnet import Context, TableChunk
from streamnet.backends.cpu import CpuBackend

received: list[int] = []  # sizes of the buffers the Context's backend made for incoming frames
_host_buffer = CpuBackend.host_buffer


def _counted_host_buffer(self: CpuBackend, nbytes: int) -> memoryview:
    received.append(nbytes)
    return _host_buffer(self, nbytes)


CpuBackend.host_buffer = _counted_host_buffer  # type: ignore[method-assign,assignment]


async def main(ctx: Context) -> None:
    comm, rank, nranks = ctx.communicator, ctx.rank, ctx.nranks
    peers = [p for p in range(nranks) if p != rank]
    rng = np.random.default_rng(rank)
    # ~48 MB each way between every pair at once: no pair may wait on the other.
    big = pa.table({"x": rng.random(6_000_000), "r": np.full(6_000_000, rank)})

    async def talk(peer: int) -> None:
        sends = [comm.send(peer, ("big",), big)]
        sends += [comm.send(peer, ("seq",), (i, rank)) for i in range(200)]
        sends.append(comm.send(peer, ("frame",), pl.DataFrame({"s": ["a", None], "r": [rank, 0]})))
        sends.append(comm.send(peer, ("chunk",), TableChunk.from_arrow(big.slice(0, 3))))
        sent = asyncio.gather(*sends)
        table = await comm.recv(peer, ("big",))
        assert table.num_rows == 6_000_000 and table["r"][0].as_py() == peer, table.schema
        np.testing.assert_array_equal(
            table["x"].to_numpy(), np.random.default_rng(peer).random(6_000_000)
        )
        order = [await comm.recv(peer, ("seq",)) for _ in range(200)]
        assert order == [(i, peer) for i in range(200)], order[:5]
        frame = await comm.recv(peer, ("frame",))
        assert frame["s"].to_list() == ["a", None] and frame["r"][0] == peer
        chunk = await comm.recv(peer, ("chunk",))
        assert isinstance(chunk, TableChunk) and chunk.num_rows == 3
        await sent

    await asyncio.gather(*(talk(peer) for peer in peers))
    await comm.send(rank, ("self",), "to myself")
    assert await comm.recv(rank, ("self",)) == "to myself"
    everyone = await comm.allgather(("all",), rank * 10)
    assert everyone == [r * 10 for r in range(nranks)], everyone
    # Every peer's big table arrived in buffers of the backend's making.
    assert sum(received) >= len(peers) * big.nbytes, (received, big.nbytes)


with Context() as ctx:
    asyncio.run(main(ctx))
    print(f"rank {ctx.rank} of {ctx.nranks}: exchange ok", flush=True)
