from collections.abc import Iterator

import pytest

from streamnet import Backend, BackendName, backend_for


@pytest.fixture
def backend(backend: BackendName) -> Iterator[Backend]:
    """The backend under test, one per registered backend (the name's fixture, in
    ``tests/conftest.py``, skips those unavailable here and makes it the default)."""
    made = backend_for(backend)
    yield made
    made.close()
