"""Persistent actors: long-lived actors the host launches, talks to, and supervises.

This is a second actor model beside the dataflow network, with words of its own:

- **persistent actor**: an ``async def`` taking an `ActorContext` first, launched
  under an **actor id** with ``runtime.launch(actor_id, fn)``; it lives until it
  returns, fails or is terminated. (A network's actor, made by ``define_actor``,
  runs once over its channels instead.)
- **instance**: one run of an actor id's function; a restart starts a new instance
  under the same id, on the same inbox.
- **lifecycle** (`ActorLifecycle`): ``launched``, ``active``, ``inactive``,
  ``terminating``, ``terminated``, ``failed``; ``activate``, ``deactivate``,
  ``reactivate`` and ``terminate`` move an actor between them.
- **inbox** and **outbox**: the actor's `channels.Mailbox` priority queues. The host
  sends to the inbox and receives from the outbox; the actor ``receive``s and ``send``s.
- **message** (``@message``): a dataclass with a ``message_id``, a ``priority`` and a
  ``correlation_id``; a **request** (``runtime.request``) waits for the **reply** whose
  ``correlation_id`` is its ``message_id``. (A network's `streamnet.Message` is the
  envelope of a stream, with a sequence number.)
- **supervisor** (`Supervisor`): starts children from `ChildSpec`s and restarts them
  with Erlang/OTP semantics (strategies, restart types, intensity, `Backoff`).

Modules: ``_runtime.py`` (`ActorRuntime`), ``_instance.py`` (an instance and its
lifecycle), ``_actor_context.py`` (`ActorContext`), ``_requests.py`` (requests and
replies), ``_watchdog.py`` (heartbeats), ``_supervisor.py`` and ``_child_spec.py``
(supervision), ``_messages.py`` (``@message``).
"""

from channels._exports import publish
from streamnet._typing import ActorLifecycle, RestartType, SupervisionStrategy
from streamnet.persistent._actor_context import ActorContext, persistent_actor
from streamnet.persistent._child_spec import Backoff, ChildSpec
from streamnet.persistent._instance import PersistentActorStatistics
from streamnet.persistent._messages import is_message, message, reply
from streamnet.persistent._runtime import ActorRuntime
from streamnet.persistent._supervisor import RestartIntensityError, Supervisor

__all__ = [
    "ActorContext",
    "ActorLifecycle",
    "ActorRuntime",
    "Backoff",
    "ChildSpec",
    "PersistentActorStatistics",
    "RestartIntensityError",
    "RestartType",
    "SupervisionStrategy",
    "Supervisor",
    "is_message",
    "message",
    "persistent_actor",
    "reply",
]

publish(globals(), "streamnet", __all__)
