"""Device behaviours: what a device actor does with each record, written twice, as a CUDA
C++ device function for the persistent kernel and as Python for the kernel's model;
and the library of ready ones.

A `DeviceBehaviour` names the message types it takes and gives (numeric
`persistent_message` classes, see `RecordLayout`), the body of its device function
and its Python model. The device function is

.. code-block:: cuda

    __device__ void sn_<name>(i64* state, const i64* params, const Record& in, Out& out)

run once per record taken: ``state`` is the slot's `STATE_WORDS` words (zero after a
reset), ``params`` the slot's parameters (`DeviceBehaviour.params`, an actor named
by `ActorRef` given as its slot), ``in`` the record. It gives at most one output:
``sn_reply(out, SN_TYPE_<Message>, in)`` starts a reply to the host and returns its
record, whose fields it sets with ``sn_set_f64``/``sn_set_i64`` and
``SN_FIELD_<Message>_<field>`` (``sn_f64``/``sn_i64`` read the input's);
``sn_forward(out, slot, in)`` passes the record to another slot's
kernel-to-kernel ring; ``sn_stall(out)`` stops the slot's heartbeat until it is
reset. The model's ``step(state, message, params)`` gives the same as a list
(replies, `Forward`, `STALL`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamnet.persistent._messages import persistent_message
from streamnet.persistent.device._model import STALL, Behaviour, Forward, behaviour

__all__ = [
    "ADD", "DECREMENT", "DIVIDE", "DIVIDE_BY_ZERO", "INCREMENT", "INVALID_INPUT", "LIBRARY",
    "MULTIPLY", "PARAM_WORDS", "RESET_COUNT", "STATE_WORDS", "SUBTRACT", "ActorRef", "CalculateRequest", "CalculateResponse", "CounterRequest",
    "CounterResponse", "DeviceBehaviour", "Sample", "WindowSum", "calculator", "counter",
    "forwarder", "stalling", "windowed_sum",
]  # fmt: skip

STATE_WORDS = 8
"""The 64-bit words of state each slot has on the device."""
PARAM_WORDS = 4
"""The most parameters a behaviour takes."""


@dataclass(frozen=True)
class ActorRef:
    """A behaviour's parameter that names another device actor: the runtime gives the
    behaviour that actor's slot (it must be launched on the same device first)."""

    actor_id: str


@dataclass(frozen=True)
class DeviceBehaviour:
    """A device actor's behaviour (see the module doc).

    Raises
    ------
    ValueError
        ``name`` is not an identifier, ``messages`` is empty, or there are more than
        `PARAM_WORDS` parameters.
    """

    name: str
    messages: tuple[type, ...]
    cuda: str
    step: Callable[[Any, Any, tuple[Any, ...]], Iterable[Any]]
    start: Callable[[tuple[Any, ...]], Any] = field(default=lambda params: {})
    params: tuple[int | float | ActorRef, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"DeviceBehaviour: `name` must be an identifier, got {self.name!r}")
        if not self.messages:
            raise ValueError(f"DeviceBehaviour `{self.name}`: `messages` names no message type")
        if len(self.params) > PARAM_WORDS:
            raise ValueError(
                f"DeviceBehaviour `{self.name}`: at most {PARAM_WORDS} parameters, got "
                f"{len(self.params)}"
            )

    def model(self, params: Sequence[int | float]) -> Behaviour:
        """The Python model with ``params`` (actor references resolved to slots)."""
        bound = tuple(params)
        return behaviour(
            lambda: self.start(bound), lambda state, message: self.step(state, message, bound)
        )

    @property
    def references(self) -> tuple[str, ...]:
        """The actors its parameters name."""
        return tuple(p.actor_id for p in self.params if isinstance(p, ActorRef))


# ------------------------------------------------------------------ the library's messages
ADD, SUBTRACT, MULTIPLY, DIVIDE = 0, 1, 2, 3
"""The calculator's operations (a record holds numbers: the guide's names as codes)."""
DIVIDE_BY_ZERO, INVALID_INPUT = 1, 2
"""The calculator's error codes."""
INCREMENT, DECREMENT, RESET_COUNT = 0, 1, 2
"""The counter's actions."""


@persistent_message
@dataclass
class CalculateRequest:
    """The guide's calculator request, its operation a code (`ADD`...)."""

    a: float
    b: float
    operation: int = ADD


@persistent_message
@dataclass
class CalculateResponse:
    """The guide's calculator response, its error a code (0: none)."""

    result: float
    success: bool = True
    error_code: int = 0


@persistent_message
@dataclass
class CounterRequest:
    action: int = INCREMENT


@persistent_message
@dataclass
class CounterResponse:
    count: int


@persistent_message
@dataclass
class Sample:
    value: float


@persistent_message
@dataclass
class WindowSum:
    """The sum of a window of ``count`` samples; ``window`` counts the windows from 1."""

    total: float
    count: int
    window: int


# ------------------------------------------------------------------ the library
def _calculate(state: Any, request: Any, params: tuple[Any, ...]) -> list[Any]:
    a, b, op = request.a, request.b, request.operation
    if op == ADD:
        return [CalculateResponse(a + b)]
    if op == SUBTRACT:
        return [CalculateResponse(a - b)]
    if op == MULTIPLY:
        return [CalculateResponse(a * b)]
    if op == DIVIDE:
        if b == 0:
            return [CalculateResponse(0.0, False, DIVIDE_BY_ZERO)]
        return [CalculateResponse(a / b)]
    return [CalculateResponse(0.0, False, INVALID_INPUT)]


def calculator() -> DeviceBehaviour:
    """The guide's calculator: a `CalculateRequest` answered by a `CalculateResponse`."""
    return DeviceBehaviour(
        "calculator",
        (CalculateRequest, CalculateResponse),
        """
    double a = sn_f64(in, SN_FIELD_CalculateRequest_a);
    double b = sn_f64(in, SN_FIELD_CalculateRequest_b);
    i64 op = sn_i64(in, SN_FIELD_CalculateRequest_operation);
    Record& r = sn_reply(out, SN_TYPE_CalculateResponse, in);
    double result = 0.0; i64 error = 0;
    if (op == 0) result = a + b;
    else if (op == 1) result = a - b;
    else if (op == 2) result = a * b;
    else if (op == 3) { if (b == 0.0) error = 1; else result = a / b; }
    else error = 2;
    sn_set_f64(r, SN_FIELD_CalculateResponse_result, result);
    sn_set_i64(r, SN_FIELD_CalculateResponse_success, error == 0 ? 1 : 0);
    sn_set_i64(r, SN_FIELD_CalculateResponse_error_code, error);
""",
        _calculate,
    )


def _count(state: dict[str, int], request: Any, params: tuple[Any, ...]) -> list[Any]:
    if request.action == INCREMENT:
        state["count"] += 1
    elif request.action == DECREMENT:
        state["count"] -= 1
    elif request.action == RESET_COUNT:
        state["count"] = 0
    return [CounterResponse(state["count"])]


def counter() -> DeviceBehaviour:
    """The guide's counter: each `CounterRequest` (increment, decrement, reset) answered by
    the count after it. Its count lives in the slot's state: a restart begins it anew."""
    return DeviceBehaviour(
        "counter",
        (CounterRequest, CounterResponse),
        """
    i64 action = sn_i64(in, SN_FIELD_CounterRequest_action);
    if (action == 0) state[0] += 1;
    else if (action == 1) state[0] -= 1;
    else if (action == 2) state[0] = 0;
    Record& r = sn_reply(out, SN_TYPE_CounterResponse, in);
    sn_set_i64(r, SN_FIELD_CounterResponse_count, state[0]);
""",
        _count,
        lambda params: {"count": 0},
    )


def _window(state: dict[str, Any], sample: Any, params: tuple[Any, ...]) -> list[Any]:
    state["total"] += sample.value
    state["count"] += 1
    if state["count"] < params[0]:
        return []
    state["windows"] += 1
    out = WindowSum(state["total"], state["count"], state["windows"])
    state["total"], state["count"] = 0.0, 0
    return [out]


def windowed_sum(window: int) -> DeviceBehaviour:
    """Sums `Sample` values in tumbling windows of ``window`` samples, each answered by a
    `WindowSum` once full.

    Raises
    ------
    ValueError
        ``window`` is not an int >= 1.
    """
    if type(window) is not int or window < 1:
        raise ValueError(f"windowed_sum: `window` must be an int >= 1, got {window!r}")
    return DeviceBehaviour(
        "windowed_sum",
        (Sample, WindowSum),
        """
    // state: [0] the total's bits, [1] samples in the window, [2] windows done
    double total = __longlong_as_double(state[0]) + sn_f64(in, SN_FIELD_Sample_value);
    state[0] = __double_as_longlong(total);
    state[1] += 1;
    if (state[1] < params[0]) return;
    state[2] += 1;
    Record& r = sn_reply(out, SN_TYPE_WindowSum, in);
    sn_set_f64(r, SN_FIELD_WindowSum_total, total);
    sn_set_i64(r, SN_FIELD_WindowSum_count, state[1]);
    sn_set_i64(r, SN_FIELD_WindowSum_window, state[2]);
    state[0] = __double_as_longlong(0.0);
    state[1] = 0;
""",
        _window,
        lambda params: {"total": 0.0, "count": 0, "windows": 0},
        (window,),
    )


def forwarder(to: str, *, messages: Sequence[type] = (Sample,)) -> DeviceBehaviour:
    """Passes every record, unchanged and with its ids, to the device actor ``to`` through
    a kernel-to-kernel ring (chains of actors on the device). ``messages``: the types it
    carries."""
    if not isinstance(to, str) or not to:
        raise ValueError(f"forwarder: `to` must name a device actor, got {to!r}")
    return DeviceBehaviour(
        "forwarder",
        tuple(messages),
        """
    sn_forward(out, (int)params[0], in);
""",
        lambda state, message, params: [Forward(params[0], message)],
        params=(ActorRef(to),),
    )


def stalling(*, messages: Sequence[type] = (Sample,)) -> DeviceBehaviour:
    """Stops beating at its first record, until reset: an actor stuck on the device, for
    testing heartbeat supervision."""
    return DeviceBehaviour(
        "stalling",
        tuple(messages),
        """
    sn_stall(out);
""",
        lambda state, message, params: [STALL],
    )


LIBRARY: tuple[Callable[[], DeviceBehaviour], ...] = (
    calculator, counter, lambda: windowed_sum(1), lambda: forwarder("-"), stalling,
)  # fmt: skip
"""The ready behaviours, as every kernel compiles them (a user's own are added to these)."""
