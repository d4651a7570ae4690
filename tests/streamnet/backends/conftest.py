import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamnet import Backend, backend_for

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def backend() -> Iterator[Backend]:
    """The backend under test (the CPU's; a parameter once there are others)."""
    made = backend_for("cpu")
    yield made
    made.close()
