"""Process tags: what a process leaves on disk names it, so another can tell when it is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from streamnet import left_by_dead_process, process_tag

HOST = socket.gethostname().replace("-", "_")


def test_the_tag_names_this_host_and_process() -> None:
    assert process_tag() == f"{HOST}-{os.getpid()}"


@pytest.mark.skipif(os.name != "posix", reason="pids are probed on POSIX only")
def test_only_a_process_of_this_host_that_ended_left_its_files() -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(ended.stdout)
    assert left_by_dead_process(f"{HOST}-{dead}-0123abcd")
    assert left_by_dead_process(f"{HOST}-{dead}")
    assert not left_by_dead_process(f"{process_tag()}-0123abcd")  # running
    assert not left_by_dead_process(f"elsewhere-{dead}-0123abcd")  # another host's pid
    assert not left_by_dead_process(f"{HOST}-notapid-0123abcd")
    assert not left_by_dead_process(f"{HOST}x-{dead}-0123abcd")
    assert not left_by_dead_process("")
