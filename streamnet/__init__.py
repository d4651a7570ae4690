"""streamnet: streaming dataframe pipelines built as actor networks.

The runtime. Its core concepts sit at the top: `Context` (``_context.py``, its kernel
thread pool in ``_kernel_pool.py``), `define_actor` (``_define_actor.py``) and the
`ActorNode`s it makes (``_actor.py``), `TableChunk` (``_table_chunk.py``),
schemas (``_schema.py``), `Collective` (``_collective.py``), tasks (``_tasks.py``),
errors (``_errors.py``) and the `Literal` choices of options (``_typing.py``). The
rest is in subpackages, each with a map of its modules:

- `streamnet.network`: `Network`, its wiring checks, the driver of its run, liveness;
- `streamnet.backends`: `Backend`, where tables live and kernels run (``cpu/``), by name;
- `streamnet.plans`: `Plan` and its steps, per-chunk work as Polars expressions
  (`run_plan`, ``_run_plan.py``, runs an actor's plan over its stream);
- `streamnet.io`: file planning (paths, Parquet footers and row groups, CSV byte
  ranges, each rank's share), the same for every backend;
- `streamnet.persistent`: `ActorRuntime`, `Supervisor`, ``@persistent_message``
  (persistent actors, with words of their own: see its glossary);
- `streamnet.comm`: `Communicator` and its transports (in-process, MPI, Ray), the wire;
- `streamnet.engines`: `run_ranks`, `run_on_ray`, ``streamnet run``: ranks and Contexts;
- `streamnet.observe`: statistics, progress, timeline, pictures, logging;
- `streamnet.memory`: the spill directory and what killed processes left behind.

Every public name is exported here; import it from `streamnet`. Renamed names keep
working for one release with a `DeprecationWarning` (``_deprecation.py``). What a
library above the runtime builds on is in `streamnet.lowlevel`. The optional parts
(persistent actors, the engines, the MPI and Ray transports) and the aliases of Arrow
types are imported when one of their names is first used (`_LAZY`), so that
``import streamnet`` stays light: pyarrow itself loads with the first Context.
"""

from typing import TYPE_CHECKING

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
from channels.lowlevel import export_lazily, publish
from streamnet._actor import (
    ActorDefinition,
    ActorNode,
    RestartPolicy,
    current_actor,
    current_actor_name,
)
from streamnet._collective import Collective
from streamnet._context import Context
from streamnet._define_actor import define_actor
from streamnet._deprecation import renamed_names
from streamnet._errors import (
    ActorResultError,
    ActorStateError,
    BackendUnavailableError,
    ColumnNotFoundError,
    DeadlockError,
    ExpressionError,
    FileReadError,
    MemoryLimitError,
    NetworkMismatchError,
    RemoteRankError,
    SchemaError,
    SharedChannelWarning,
    SpillError,
    UnreadInputError,
    WatchdogTimeout,
    WiringError,
)
from streamnet._run_plan import run_plan
from streamnet._schema import describe_schema, empty_table, frame_of_arrow, null_schema
from streamnet._table_chunk import TableChunk, TableView
from streamnet._tasks import map_in_threads, start_task, stop_tasks
from streamnet._typing import (
    ActorState,
    FileSystem,
    HostKind,
    JoinHow,
    PolarsFrame,
    StorageOptions,
)
from streamnet.backends import (
    AggregationKernel,
    Backend,
    BackendName,
    ChunkReader,
    ChunkWriter,
    JoinBuild,
    JoinSpec,
    KernelKind,
    Packed,
    SortOrder,
    Tier,
    backend_for,
    default_backend,
    host_kind,
    probe_backend,
    use_backend,
)
from streamnet.comm import (
    Communicator,
    InProcessCommunicator,
    InProcessWorld,
    SingleCommunicator,
    Tag,
)
from streamnet.comm._exchange import Exchange, Owner, Partitions, contiguous, round_robin
from streamnet.comm._inputs import InputSchema, inputs
from streamnet.io import (
    FilePath,
    HivePartitions,
    ParquetFiles,
    RowGroup,
    ScanTask,
    StorePath,
    arrow_schema,
    dataset_root,
    expand_paths,
    file_size,
    group_scan_tasks,
    hive_folder,
    hive_partitions,
    plan_row_groups,
    polars_types,
    prune_partitions,
    rank_share,
    read_parquet_footers,
    resolve_path,
    row_group_statistics,
    skip_predicate,
    split_scan_tasks,
)
from streamnet.memory import (
    ActorMemory,
    MemoryBudget,
    MemoryHolder,
    MemorySample,
    MemoryStatistics,
    Reservation,
    SpillDirectory,
    SpillStatistics,
    left_by_dead_process,
    parse_memory_limit,
    process_tag,
)
from streamnet.network import Network, on_success, run_actor_network
from streamnet.observe import (
    ActorLogFilter,
    ActorStatistics,
    CollectiveStatistics,
    CollectiveTraffic,
    NetworkStatistics,
    PictureEngine,
    ProgressTracker,
    Span,
    SpanKind,
    Timeline,
    record_bytes_read,
)
from streamnet.plans import (
    Agg,
    AggHow,
    Cast,
    CompiledPlan,
    Filter,
    FusionLink,
    KeySet,
    ParquetScan,
    PartialAggregate,
    Plan,
    PlanParams,
    Predicate,
    Rename,
    Select,
    Slices,
    Stamp,
    Step,
    WithColumns,
    check_row_wise,
)

if TYPE_CHECKING:
    from streamnet._typing import ArrowSchema, ArrowTable, HostTable, IntoSchema
    from streamnet.comm import MPICommunicator, RayCommunicator, mpi_communicator
    from streamnet.engines import launched_ranks, run_on_ray, run_ranks, run_ranks_async
    from streamnet.io import (
        CsvFormat,
        CsvPart,
        DeltaFiles,
        check_delta_target,
        commit_delta,
        csv_shares,
        delta_add_action,
        delta_schema,
        delta_storage_options,
        plan_delta,
    )
    from streamnet.persistent import (
        ActorRuntime,
        Backoff,
        ChildSpec,
        PersistentActorContext,
        PersistentActorState,
        PersistentActorStatistics,
        RestartIntensityError,
        RestartType,
        SupervisionStrategy,
        Supervisor,
        SupervisorState,
        SupervisorStatistics,
        is_persistent_message,
        persistent_actor,
        persistent_message,
        reply,
    )

__version__ = "0.1.0"

__all__ = [
    "ActorDefinition",
    "ActorLogFilter",
    "ActorResultError",
    "ActorRuntime",
    "ActorStateError",
    "ActorNode",
    "ActorState",
    "ActorStatistics",
    "Agg",
    "AggHow",
    "AggregationKernel",
    "Backend",
    "BackendName",
    "Backoff",
    "BackendUnavailableError",
    "Cast",
    "Channel",
    "ChannelAborted",
    "ChannelBroken",
    "ChannelClosed",
    "ChannelError",
    "ChannelStatistics",
    "ChildSpec",
    "Collective",
    "CompiledPlan",
    "Exchange",
    "InputSchema",
    "Owner",
    "Partitions",
    "contiguous",
    "inputs",
    "map_in_threads",
    "round_robin",
    "CollectiveStatistics",
    "CollectiveTraffic",
    "ColumnNotFoundError",
    "Communicator",
    "Context",
    "DeadlockError",
    "ExpressionError",
    "FileReadError",
    "Filter",
    "InProcessCommunicator",
    "InProcessWorld",
    "KeySet",
    "JoinBuild",
    "JoinHow",
    "JoinSpec",
    "MPICommunicator",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "Message",
    "Network",
    "NetworkMismatchError",
    "NetworkStatistics",
    "record_bytes_read",
    "PersistentActorContext",
    "PersistentActorState",
    "Packed",
    "FusionLink",
    "ParquetScan",
    "PartialAggregate",
    "PersistentActorStatistics",
    "PictureEngine",
    "Plan",
    "PlanParams",
    "Predicate",
    "ProgressTracker",
    "RayCommunicator",
    "RemoteRankError",
    "Rename",
    "RestartIntensityError",
    "RestartPolicy",
    "RestartType",
    "SchemaError",
    "Select",
    "SequenceError",
    "SharedChannelWarning",
    "SingleCommunicator",
    "Slices",
    "SortOrder",
    "Span",
    "SupervisionStrategy",
    "Supervisor",
    "SupervisorState",
    "SupervisorStatistics",
    "SpanKind",
    "SpillDirectory",
    "SpillError",
    "SpillStatistics",
    "ActorMemory",
    "MemoryBudget",
    "MemoryHolder",
    "MemoryLimitError",
    "MemorySample",
    "MemoryStatistics",
    "Reservation",
    "parse_memory_limit",
    "Stamp",
    "Step",
    "StreamnetError",
    "TableChunk",
    "TableView",
    "Tag",
    "Tier",
    "KernelKind",
    "Timeline",
    "UnreadInputError",
    "WatchdogTimeout",
    "WiringError",
    "WithColumns",
    "current_actor",
    "backend_for",
    "check_row_wise",
    "current_actor_name",
    "default_backend",
    "define_actor",
    "describe_schema",
    "host_kind",
    "is_persistent_message",
    "launched_ranks",
    "left_by_dead_process",
    "mpi_communicator",
    "empty_table",
    "frame_of_arrow",
    "null_schema",
    "on_success",
    "persistent_actor",
    "persistent_message",
    "probe_backend",
    "process_tag",
    "reply",
    "run_actor_network",
    "run_on_ray",
    "run_plan",
    "run_ranks",
    "run_ranks_async",
    "start_task",
    "stop_tasks",
    "use_backend",
    # streamnet.backends: the files facet's readers and writers
    "ChunkReader",
    "ChunkWriter",
    # streamnet.io: file planning
    "CsvFormat",
    "CsvPart",
    "DeltaFiles",
    "check_delta_target",
    "commit_delta",
    "delta_add_action",
    "delta_schema",
    "delta_storage_options",
    "plan_delta",
    "FilePath",
    "HivePartitions",
    "ParquetFiles",
    "RowGroup",
    "ScanTask",
    "StorePath",
    "csv_shares",
    "dataset_root",
    "expand_paths",
    "file_size",
    "resolve_path",
    "group_scan_tasks",
    "split_scan_tasks",
    "hive_folder",
    "hive_partitions",
    "plan_row_groups",
    "prune_partitions",
    "rank_share",
    "read_parquet_footers",
    "row_group_statistics",
    "skip_predicate",
    "arrow_schema",
    "polars_types",
    # host types that user code hands to the runtime (annotations)
    "ArrowSchema",
    "ArrowTable",
    "FileSystem",
    "StorageOptions",
    "HostKind",
    "HostTable",
    "IntoSchema",
    "PolarsFrame",
]

_LAZY = {
    **dict.fromkeys(["ArrowSchema", "ArrowTable", "HostTable", "IntoSchema"], "streamnet._typing"),
    **dict.fromkeys(
        [
            "CsvFormat",
            "CsvPart",
            "DeltaFiles",
            "check_delta_target",
            "commit_delta",
            "csv_shares",
            "delta_add_action",
            "delta_schema",
            "delta_storage_options",
            "plan_delta",
        ],
        "streamnet.io",
    ),
    **dict.fromkeys(["MPICommunicator", "RayCommunicator", "mpi_communicator"], "streamnet.comm"),
    **dict.fromkeys(
        ["launched_ranks", "run_on_ray", "run_ranks", "run_ranks_async"], "streamnet.engines"
    ),
    **dict.fromkeys(
        [
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
        ],
        "streamnet.persistent",
    ),
}
"""Names imported from their module when first used (tests/test_exports.py checks that each
is in `__all__` and imported under `if TYPE_CHECKING:` too)."""

# Old names, for one release (`_deprecation.RENAMED`), after the lazily imported ones.
__getattr__, __dir__ = export_lazily(
    globals(), "streamnet", _LAZY, otherwise=renamed_names(__name__)
)

publish(globals(), "streamnet", [name for name in __all__ if name not in _LAZY])
