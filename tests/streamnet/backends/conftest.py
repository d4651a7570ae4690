from collections.abc import Iterator

import pytest

from streamnet import Backend, backend_for


@pytest.fixture
def backend() -> Iterator[Backend]:
    """The backend under test (the CPU's; a parameter once there are others)."""
    made = backend_for("cpu")
    yield made
    made.close()
