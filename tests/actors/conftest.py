import sys
from pathlib import Path

import pytest

from streamnet import BackendName

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _on_every_backend(backend: BackendName) -> None:
    """Every actor and collective test runs once per backend (``test_x[cpu]``,
    ``test_x[gpu]``), with that backend as the process's default (see `backend`)."""
