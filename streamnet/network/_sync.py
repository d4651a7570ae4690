"""Running a network from synchronous code: scripts (Ctrl-C) and Jupyter (a running loop).

`Network.run` blocks its caller until the network ends. In a thread without an
event loop it runs one; in a thread that already runs one (a notebook's), it runs
the network on a loop of its own in a helper thread. In a script's main thread,
Ctrl-C cancels the run between two steps of the event loop; a second Ctrl-C cancels
the actors' tasks once more (none waits for a kernel any longer), and a third
interrupts at once, wherever the program is.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["run_to_completion"]


def run_to_completion(
    main: Callable[[], Coroutine[Any, Any, None]], *, name: str, cancel_again: Callable[[], None]
) -> None:
    """Run ``main()`` to completion, blocking the caller (see the module).

    ``name`` names the helper thread; ``cancel_again`` is what a second Ctrl-C calls.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        inside_a_loop = False
    else:
        inside_a_loop = True
    if inside_a_loop:
        _run_in_helper_thread(main, name)
    else:  # outside the `except`, so a failure is not shown as raised while handling another
        asyncio.run(_run_interruptible(main, cancel_again))


async def _run_interruptible(
    main: Callable[[], Coroutine[Any, Any, None]], cancel_again: Callable[[], None]
) -> None:
    """``main()``, with Ctrl-C in the main thread handled as the module says."""
    if threading.current_thread() is not threading.main_thread():
        await main()
        return
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    interrupts = 0

    def interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            loop.call_soon_threadsafe(task.cancel)
        elif interrupts == 2:
            loop.call_soon_threadsafe(cancel_again)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        await main()
    except asyncio.CancelledError:
        if interrupts and task.uncancel() == 0:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_in_helper_thread(main: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Run ``main()`` on a fresh loop in a helper thread, for callers already inside a loop
    (Jupyter)."""
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def target() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(main())
            outcome["loop"], outcome["task"] = loop, task
            started.set()
            loop.run_until_complete(task)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name=f"streamnet-{name}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        started.wait()
        loop, task = outcome.get("loop"), outcome.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
        raise
    error = outcome.get("error")
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            raise KeyboardInterrupt from None
        raise error
