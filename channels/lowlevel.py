"""The transport's low level: what runtimes and helpers build on, not what actors use.

Like ``trio.lowlevel``, this is the one place where code above the channels
reaches into how they work, through public names only:

- **Waiting.** :class:`ParkingLot` holds every blocked call: channels
  (`Channel.send_waiters`, `Channel.recv_waiters`), mailboxes
  (`Mailbox.get_waiters`, `Mailbox.put_waiters`) and the runtime's own inboxes
  park in lots, so the wait/cancel rules (no lost wake-up, deadlines) are
  written once. ``ParkingLot.park_any`` waits in several lots at once
  (`channels.recv_any` does).
- **Introspection.** ``ParkingLot.parked`` tells which tasks wait in a lot,
  and until when (:class:`Parked`): a runtime finds actors that wait on each
  other forever from the lots of its channels. `Channel.statistics` counts
  what moved.
- **Binding.** A runtime sets how many producers must drain a channel before
  its stream ends (`Channel.producers`); who owns a channel and when its
  consumers are gone is the runtime's own business (it shuts the channel down),
  and so is whether a producer keeps running after that, its messages dropped
  (`Channel.discards_after_shutdown`).
- **Traffic.** :func:`observe` gives a task a :class:`TrafficCounter`, which
  every channel call of that task (and the tasks it starts) adds to;
  :func:`current_counter` reads it, also from another task's context.
- **Memory.** A :class:`ByteTally` keeps the bytes buffered in the channels
  counted into it as messages move, so a runtime's memory budget reads one
  number however many channels it ever ran.
- **Payloads.** :func:`payload_classes` is what ``send`` checks a declared
  payload type against, for a runtime that checks wiring before anything runs.
- **Exports.** :func:`publish` shows the public names of a package under the
  package, not the private module that defines them (``streamnet.Network``),
  as every package ``__init__`` above does; :func:`export_lazily` exports names
  whose module is imported only when one is first asked for (optional parts), and
  :func:`import_lazily` stands for a heavy dependency until it is first used.

Examples
--------
>>> import asyncio
>>> from channels import Channel, Message
>>> from channels.lowlevel import TrafficCounter, observe
>>> async def main():
...     ch, counter = Channel[int](), TrafficCounter()
...     with observe(counter):
...         await ch.send(None, Message(0, 1))
...     return counter.messages_out, ch.recv_waiters.statistics().tasks_waiting
>>> asyncio.run(main())
(1, 0)
"""

from channels._channel import ByteTally
from channels._exports import export_lazily, import_lazily, publish
from channels._message import payload_classes
from channels._observer import TrafficCounter, current_counter, observe
from channels._parking_lot import Parked, ParkingLot, ParkingLotStatistics

__all__ = [
    "ByteTally",
    "Parked",
    "ParkingLot",
    "ParkingLotStatistics",
    "TrafficCounter",
    "current_counter",
    "export_lazily",
    "import_lazily",
    "observe",
    "payload_classes",
    "publish",
]

publish(globals(), "channels.lowlevel", __all__, within="channels")
