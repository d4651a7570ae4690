"""Files a process owns, named so that another process can tell when their owner is gone.

What a process keeps on disk while it runs (spill folders, a writer's staged
output) has the process's tag in its name, ``<host>-<pid>``. A process that is
killed cannot remove what it owned; the next process of the same host that
works in that folder removes what was left by processes that are no longer
running. Processes of other hosts are never judged (their pids mean nothing
here), nor is anything on a system that cannot probe a pid.
"""

from __future__ import annotations

import os
import socket

__all__ = ["left_by_dead_process", "process_tag"]


def _host() -> str:
    return socket.gethostname().replace("-", "_")


def process_tag() -> str:
    """``<host>-<pid>`` of this process (dashes in the host name become ``_``), for
    the names of the files it owns.

    Examples
    --------
    >>> import os
    >>> process_tag().endswith(f"-{os.getpid()}")
    True
    """
    return f"{_host()}-{os.getpid()}"


def left_by_dead_process(name: str) -> bool:
    """Whether ``name`` starts with the :func:`process_tag` of a process of this host
    that is no longer running (followed by ``-`` or nothing).

    False for another host's process, a running one, a name without a tag, and
    on a system where a pid cannot be probed (not POSIX). A pid reused since by a
    new process reads as running: what its first owner left then stays.

    Examples
    --------
    >>> left_by_dead_process(process_tag() + "-0123abcd")
    False
    >>> left_by_dead_process("elsewhere-12345-0123abcd")
    False
    """
    if os.name != "posix":  # os.kill(pid, 0) only probes on POSIX
        return False
    host = _host()
    if not name.startswith(f"{host}-"):
        return False
    pid = name[len(host) + 1 :].split("-", 1)[0]
    return pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, say: alive
        return True
    return True
