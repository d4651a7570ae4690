"""streamnet: streaming dataframe pipelines built as actor networks."""

from channels import (
    Channel,
    ChannelAborted,
    ChannelBroken,
    ChannelClosed,
    ChannelError,
    ChannelStatistics,
    Mailbox,
    MailboxClosed,
    MailboxFull,
    MailboxStatistics,
    Message,
    SequenceError,
    StreamnetError,
)
from channels._exports import publish
from streamnet._actor import (
    ActorDefinition,
    ActorNode,
    RestartPolicy,
    current_actor,
    current_actor_name,
    define_actor,
)
from streamnet._actor_runtime import (
    ActorContext,
    ActorLifecycle,
    ActorRuntime,
    PersistentActorStatistics,
    persistent_actor,
)
from streamnet._collective import Collective, CollectiveTraffic
from streamnet._communicator import Communicator, SingleCommunicator, Tag
from streamnet._context import Context
from streamnet._errors import (
    ActorResultError,
    ActorStateError,
    BackendUnavailableError,
    ColumnNotFoundError,
    DeadlockError,
    ExpressionError,
    FileReadError,
    NetworkMismatchError,
    RemoteRankError,
    SchemaError,
    SharedChannelWarning,
    SpillError,
    UnreadInputError,
    WatchdogTimeout,
    WiringError,
)
from streamnet._in_process import InProcessCommunicator, InProcessWorld, run_ranks, run_ranks_async
from streamnet._logging import ActorLogFilter
from streamnet._messages import is_message, message, reply
from streamnet._mpi import MPICommunicator, launched_ranks, mpi_communicator
from streamnet._network import Network, run_actor_network
from streamnet._on_success import on_success
from streamnet._picture import PictureEngine
from streamnet._progress import ProgressTracker
from streamnet._ray import RayCommunicator, run_on_ray
from streamnet._schema import describe_schema
from streamnet._statistics import ActorStatistics, CollectiveStatistics, NetworkStatistics
from streamnet._supervisor import (
    Backoff,
    ChildSpec,
    RestartIntensityError,
    RestartType,
    SupervisionStrategy,
    Supervisor,
)
from streamnet._table_chunk import TableChunk, TableView
from streamnet._tasks import start_task
from streamnet._timeline import Span, SpanKind, Timeline
from streamnet._typing import ActorState, Backend
from streamnet.memory import SpillDirectory, SpillStatistics, left_by_dead_process, process_tag

__version__ = "0.1.0"

__all__ = [
    "ActorContext",
    "ActorDefinition",
    "ActorLifecycle",
    "ActorLogFilter",
    "ActorResultError",
    "ActorRuntime",
    "ActorStateError",
    "ActorNode",
    "ActorState",
    "ActorStatistics",
    "Backend",
    "Backoff",
    "BackendUnavailableError",
    "Channel",
    "ChannelAborted",
    "ChannelBroken",
    "ChannelClosed",
    "ChannelError",
    "ChannelStatistics",
    "ChildSpec",
    "Collective",
    "CollectiveStatistics",
    "CollectiveTraffic",
    "ColumnNotFoundError",
    "Communicator",
    "Context",
    "DeadlockError",
    "ExpressionError",
    "FileReadError",
    "InProcessCommunicator",
    "InProcessWorld",
    "MPICommunicator",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "Message",
    "Network",
    "NetworkMismatchError",
    "NetworkStatistics",
    "PersistentActorStatistics",
    "PictureEngine",
    "ProgressTracker",
    "RayCommunicator",
    "RemoteRankError",
    "RestartIntensityError",
    "RestartPolicy",
    "RestartType",
    "SchemaError",
    "SequenceError",
    "SharedChannelWarning",
    "SingleCommunicator",
    "Span",
    "SupervisionStrategy",
    "Supervisor",
    "SpanKind",
    "SpillDirectory",
    "SpillError",
    "SpillStatistics",
    "StreamnetError",
    "TableChunk",
    "TableView",
    "Tag",
    "Timeline",
    "UnreadInputError",
    "WatchdogTimeout",
    "WiringError",
    "current_actor",
    "current_actor_name",
    "define_actor",
    "describe_schema",
    "is_message",
    "launched_ranks",
    "left_by_dead_process",
    "message",
    "mpi_communicator",
    "on_success",
    "persistent_actor",
    "process_tag",
    "reply",
    "run_actor_network",
    "run_on_ray",
    "run_ranks",
    "run_ranks_async",
    "start_task",
]

publish(globals(), "streamnet", __all__)
