"""Backend.working_memory: what a kernel has in use at its peak, per kind, for reservations."""

from __future__ import annotations

import typing

import pyarrow as pa
import pytest

from streamnet import Backend, Context, KernelKind


def test_every_kind_of_kernel_has_a_factor_of_at_least_its_input(backend: Backend) -> None:
    kinds = typing.get_args(KernelKind)
    assert set(backend.WORKING_MEMORY) == set(kinds)
    for kind in kinds:
        # the input is in memory while the kernel runs: at least its own bytes
        assert backend.working_memory(kind, 1_000_000) >= 1_000_000
        assert backend.working_memory(kind, 0) == 0


@pytest.mark.parametrize("nbytes", [1, 1000, 2**20, 3 * 2**30])
def test_the_largest_input_is_the_inverse_of_the_working_memory(
    backend: Backend, nbytes: int
) -> None:
    for kind in typing.get_args(KernelKind):
        largest = backend.largest_input(kind, nbytes)
        assert largest >= 1
        assert largest == 1 or backend.working_memory(kind, largest) <= nbytes * 1.001
        assert backend.working_memory(kind, largest * 2 + 2) > nbytes


def test_bad_arguments_are_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match="`kind` must be one of .*; got 'spin'"):
        backend.working_memory("spin", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`nbytes` must be an int >= 0, got -1"):
        backend.working_memory("sort", -1)
    with pytest.raises(ValueError, match="`nbytes` must be an int >= 0, got 1.5"):
        backend.largest_input("sort", 1.5)  # type: ignore[arg-type]


def test_a_context_with_a_limit_makes_arrow_give_freed_memory_back_at_once() -> None:
    if "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("pyarrow without jemalloc")
    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        with Context():
            assert pa.default_memory_pool().backend_name == "mimalloc"  # no limit: as it was
        with Context(backend="cpu", memory_limit="64MiB"):
            assert pa.default_memory_pool().backend_name == "jemalloc"
    finally:
        pa.set_memory_pool(before)
