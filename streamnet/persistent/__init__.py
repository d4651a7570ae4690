"""Persistent actors: long-lived actors the host launches, talks to, and supervises.

This is a second actor model beside the dataflow network. Its words are its own,
and where the two models have a parallel thing, the persistent one says so:

- **persistent actor**: an ``async def`` taking a `PersistentActorContext` first,
  launched under an **actor id** with ``runtime.launch(actor_id, fn)``
  (``@persistent_actor`` marks one); it lives until it returns, fails or is
  terminated. A network's actor (``@define_actor``) runs once over its channels.
- **runtime** (`ActorRuntime`): where persistent actors live; the program that uses
  it is the **host**. A network's actors run inside a `streamnet.Network` instead.
- **persistent actor context** (`PersistentActorContext`): one actor's own view of
  its runtime, its first argument. It holds the runtime's `streamnet.Context`
  (``.context``), the thread pool and options that networks share too.
- **instance**: one run of an actor id's function; a restart starts a new instance
  under the same id, on the same inbox.
- **state** (`PersistentActorState`): ``launched``, ``active``, ``inactive``,
  ``terminating``, ``terminated``, ``failed``; ``activate``, ``deactivate``,
  ``reactivate`` and ``terminate`` move an actor between them. A network's actor
  has an `ActorState` (``created`` ... ``done``).
- **inbox** and **outbox**: the actor's `channels.Mailbox` priority queues. The host
  ``send``s to the inbox and ``receive``s from the outbox; the actor ``receive``s
  from its inbox and ``send``s to the host (``send_to`` another actor). **receive**
  waits (at most ``timeout`` seconds) and raises `TimeoutError`; a network's channel
  **recv** returns None at the end of its stream instead.
- **persistent message** (``@persistent_message``): a dataclass with a ``message_id``,
  a ``priority`` and a ``correlation_id``. A **request** (``runtime.request``) waits
  for the **reply** whose ``correlation_id`` is its ``message_id``. A network's
  `streamnet.Message` is the envelope of one item of a stream, with a sequence number.
- **dead letters**: messages set aside from an inbox (overflow, or a crash).
- **supervisor** (`Supervisor`): starts children from `ChildSpec`s and restarts them
  with Erlang/OTP semantics (strategies, restart types, intensity, `Backoff`); a
  network restarts a failing actor with a `RestartPolicy` instead.

Older names (``ActorContext``, ``ActorLifecycle``, ``message``, ``is_message``) still
work for one release and warn `DeprecationWarning`.

Modules: ``_runtime.py`` (`ActorRuntime`), ``_instance.py`` (an instance and its
lifecycle), ``_actor_context.py`` (`PersistentActorContext`), ``_requests.py`` (requests
and replies), ``_watchdog.py`` (heartbeats), ``_supervisor.py``, ``_child_spec.py`` and
``_redelivery.py`` (supervision), ``_messages.py`` (``@persistent_message``);
``device/``: what actors on a GPU share with the host (records and rings).
"""

from channels.lowlevel import publish
from streamnet._deprecation import renamed_names
from streamnet._typing import (
    PersistentActorState,
    RestartType,
    SupervisionStrategy,
    SupervisorState,
)
from streamnet.persistent._actor_context import PersistentActorContext, persistent_actor
from streamnet.persistent._child_spec import Backoff, ChildSpec
from streamnet.persistent._instance import PersistentActorStatistics
from streamnet.persistent._messages import is_persistent_message, persistent_message, reply
from streamnet.persistent._runtime import ActorRuntime
from streamnet.persistent._supervisor import (
    RestartIntensityError,
    Supervisor,
    SupervisorStatistics,
)

__all__ = [
    "ActorRuntime",
    "Backoff",
    "ChildSpec",
    "PersistentActorContext",
    "PersistentActorState",
    "PersistentActorStatistics",
    "RestartIntensityError",
    "RestartType",
    "SupervisionStrategy",
    "Supervisor",
    "SupervisorState",
    "SupervisorStatistics",
    "is_persistent_message",
    "persistent_actor",
    "persistent_message",
    "reply",
]

__getattr__ = renamed_names(__name__)  # old names, for one release (`_deprecation.RENAMED`)

publish(globals(), "streamnet", __all__)
