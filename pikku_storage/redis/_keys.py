"""Every Redis key of the backend, built from the validated prefix; nothing else builds a key.

One function per key family, in two placements of the same families:

- **standalone** (`buckets=0`, layout 2 as shipped): workflow keys carry the run's hash tag
  `{r}` (a UUID) and the namespace indexes `{P}`; AI keys escape ids so no id can close a hash
  tag or fake a separator; channel and deployment keys are `p:<family>:<id>`.
- **cluster** (`buckets=B`): a workflow run, with its bucket's namespace indexes, lives in
  the tag `{P.b}` where `b = bucket(run id)`; a thread likewise with its bucket's AI indexes
  (`b = bucket(thread id)`; step and agent-run ids are drawn into their parent's bucket);
  channels and their topics in `{P.ch}`; deployments in `{P.dep}`; the namespace-wide
  insertion sequences in `{P.seq}`. Every script and MULTI therefore touches one hash slot.

The member formats of the sorted sets (`<seq>:<id>`) are defined here once (`RUN_SEQ_WIDTH`,
`THREAD_SEQ_WIDTH`, `member_id`); `_scripts.py` hands the same widths to the Lua prelude.
Where a script must derive keys from stored members (`list_runs`, the sweepers, removals), it
gets the fixed parts of the key from here (`…_prefix`) and only appends the member: the
derived key is in the slot of the script's declared keys. See docs/operations.md#storage-layout.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Final

from pikku_storage._ids import new_id
from pikku_storage._locks import LockName
from pikku_storage.errors import InvalidValue

__all__ = [
    "DEFAULT_CLUSTER_BUCKETS",
    "LAYOUT_VERSION",
    "LUA_CONSTANTS",
    "MAX_CLUSTER_BUCKETS",
    "RUN_SEQ_WIDTH",
    "THREAD_SEQ_WIDTH",
    "AIKeys",
    "ChannelKeys",
    "DeploymentKeys",
    "WorkflowKeys",
    "bucket_of",
    "buckets_key",
    "check_buckets",
    "escape_id",
    "layout_key",
    "member_id",
    "run_member_id",
    "thread_member_id",
]

LAYOUT_VERSION: Final = 2  # 2: spec 05 (scores, resources, undelivered, markers, sweeper sets)

DEFAULT_CLUSTER_BUCKETS: Final = 16  # hash-tag buckets of runs per namespace on a cluster
MAX_CLUSTER_BUCKETS: Final = 1024

# The member formats of the sorted sets, defined once: "<seq>:<rest>", the sequence number
# zero-padded to a fixed width so members sort as bytes. The Lua prelude gets the same widths
# as the constants `WF_SEQ` and `AI_SEQ` (`_scripts.py` generates them from these; a test
# checks that no script spells a width itself).
RUN_SEQ_WIDTH: Final = 20  # workflow members: run indexes "<seq>:<run id>", step order
#   "<seq>:<step id>", history "<seq>:<step id>:<attempt>"
THREAD_SEQ_WIDTH: Final = 16  # AI members: thread indexes "<seq>:<thread id>", a thread's
#   runs and the approval index "<seq>:<run id>", messages "<seq>", scores "<seq>:<JSON>"
LUA_CONSTANTS: Final = {"WF_SEQ": RUN_SEQ_WIDTH, "AI_SEQ": THREAD_SEQ_WIDTH}


def member_id(member: str, width: int) -> str:
    """What follows the sequence number of a member `<seq of width digits>:<rest>`."""
    return member[width + 1 :]


def run_member_id(member: str) -> str:
    """The run id of a workflow index member `<seq>:<run id>`."""
    return member[RUN_SEQ_WIDTH + 1 :]


def thread_member_id(member: str) -> str:
    """The id of an AI index member `<seq>:<thread or run id>` (or a score's JSON)."""
    return member[THREAD_SEQ_WIDTH + 1 :]


def check_buckets(value: object) -> int:
    """The `cluster_buckets` option: an int from 1 to 1024; `InvalidValue` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"cluster_buckets must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_CLUSTER_BUCKETS:
        raise InvalidValue(f"cluster_buckets must be from 1 to {MAX_CLUSTER_BUCKETS}: {value!r}")
    return value


def bucket_of(entity_id: str, buckets: int) -> int:
    """The bucket of an id among `buckets` (CRC-32 of its UTF-8 bytes; 0 when standalone)."""
    if buckets <= 1:
        return 0
    return zlib.crc32(entity_id.encode()) % buckets


_ESCAPES: Final = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})


def escape_id(value: str) -> str:
    """An id made safe inside an AI key: `%`, `{`, `}` and `:` percent-escaped
    (docs/operations.md#storage-layout)."""
    return value.translate(_ESCAPES)


def layout_key(prefix: str) -> str:
    """The layout-version key of a namespace (docs/concepts.md#lifecycle-and-namespaces)."""
    return f"{prefix}:layout"


def buckets_key(prefix: str) -> str:
    """The key recording a cluster namespace's bucket count (fixed when it is created)."""
    return f"{prefix}:layout-buckets"


class _Bucketed:
    """What both bucketed key families share: the bucket of an entity id (a run's, a thread's,
    or an id drawn into its parent's bucket), the buckets to merge, and drawing such an id."""

    __slots__ = ()
    buckets: int

    @property
    def cluster(self) -> bool:
        return self.buckets > 0

    def bucket(self, entity_id: str) -> int:
        """The bucket of a run or thread (or of a step or agent-run id drawn into it)."""
        return bucket_of(entity_id, self.buckets)

    def all_buckets(self) -> range:
        return range(max(self.buckets, 1))

    def draw_id(self, b: int) -> str:
        """A new UUID4 whose bucket is `b` (a step id drawn into its run's bucket, an agent
        run id into its thread's)."""
        while True:
            candidate = new_id()
            if bucket_of(candidate, self.buckets) == b:
                return candidate


@dataclass(frozen=True, slots=True)
class WorkflowKeys(_Bucketed):
    """Workflow keys of namespace `p` (docs/operations.md#storage-layout).

    `buckets=0` is the standalone layout; `buckets=B` the cluster one, where every method that
    names an index takes the bucket `b` (`bucket(run_id)`), ignored when standalone.
    """

    p: str
    buckets: int = 0
    _run_head: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_run_head", f"{self.p}:wf:{{")

    def _r(self, run_id: str, suffix: str) -> str:
        if self.buckets:
            return f"{self.p}:wf:{{{self.p}.{bucket_of(run_id, self.buckets)}}}:{run_id}:{suffix}"
        return f"{self._run_head}{run_id}}}:{suffix}"

    def _i(self, b: int, suffix: str) -> str:
        if self.buckets:
            return f"{self.p}:wf:{{{self.p}.{b}}}:{suffix}"
        return f"{self.p}:wf:{{{self.p}}}:{suffix}"

    # --- per run, in the run's tag -----------------------------------------------------------

    def run(self, run_id: str) -> str:
        return self._r(run_id, "run")

    def state(self, run_id: str) -> str:
        return self._r(run_id, "state")

    def steps(self, run_id: str) -> str:
        return self._r(run_id, "steps")

    def stepids(self, run_id: str) -> str:
        return self._r(run_id, "stepids")

    def order(self, run_id: str) -> str:
        return self._r(run_id, "order")

    def attempts(self, run_id: str) -> str:
        return self._r(run_id, "attempts")

    def history(self, run_id: str) -> str:
        return self._r(run_id, "history")

    def run_data(self, run_id: str) -> list[str]:
        """The seven data keys of a run, in the order the delete scripts expect."""
        return [
            self.run(run_id),
            self.state(run_id),
            self.steps(run_id),
            self.stepids(run_id),
            self.order(run_id),
            self.attempts(run_id),
            self.history(run_id),
        ]

    def run_prefix(self, b: int = 0) -> tuple[str, str]:
        """What goes before and after a run id in its run-hash key (for `list_runs`), for the
        runs of bucket `b`."""
        if self.buckets:
            return f"{self.p}:wf:{{{self.p}.{b}}}:", ":run"
        return self._run_head, "}:run"

    def steps_prefix(self, b: int = 0) -> tuple[str, str]:
        """What goes before and after a run id in its steps-hash key (for the sweeper)."""
        if self.buckets:
            return f"{self.p}:wf:{{{self.p}.{b}}}:", ":steps"
        return self._run_head, "}:steps"

    # --- namespace indexes, one set per bucket (tag {P} standalone, {P.b} on a cluster) ------

    def seq(self, b: int = 0) -> str:
        """The namespace's run sequence: in the indexes' tag standalone (the create script
        increments it); on a cluster its own tag `{P.seq}` (the client increments it first)."""
        if self.buckets:
            return f"{self.p}:wf:{{{self.p}.seq}}:seq"
        return self._i(b, "seq")

    def runs(self, b: int = 0) -> str:
        return self._i(b, "runs")

    def by_workflow(self, workflow: str, b: int = 0) -> str:
        return self._i(b, f"wf:{workflow}")

    def by_status(self, status: str, b: int = 0) -> str:
        return self._i(b, f"status:{status}")

    def by_workflow_status(self, status: str, workflow: str, b: int = 0) -> str:
        return self._i(b, f"wfstatus:{status}:{workflow}")

    def updated(self, status: str, b: int = 0) -> str:
        return self._i(b, f"updated:{status}")

    def names(self, b: int = 0) -> str:
        return self._i(b, "names")

    def namecount(self, b: int = 0) -> str:
        return self._i(b, "namecount")

    def steprefs(self, b: int = 0) -> str:
        return self._i(b, "steprefs")

    def idle(self, b: int = 0) -> str:
        """Running runs with no step in flight: member run id, score `activity_at` ms."""
        return self._i(b, "idle")

    def undispatched(self, b: int = 0) -> str:
        """Pending steps of running runs: member `<step_id>:<run_id>`, score `dispatch_since`."""
        return self._i(b, "undispatched")

    def run_indexes(self, workflow: str, status: str, b: int = 0) -> list[str]:
        """The four status-dependent index keys of a run: status, workflow+status, updated,
        then the workflow index (status-independent), in the order the scripts expect."""
        return [
            self.by_status(status, b),
            self.by_workflow_status(status, workflow, b),
            self.updated(status, b),
            self.by_workflow(workflow, b),
        ]

    # --- single keys ---------------------------------------------------------------------------

    def version(self, name: str, graph_hash: str) -> str:
        digest = hashlib.sha256(f"{name}\x00{graph_hash}".encode()).hexdigest()
        return f"{self.p}:wf:version:{digest}"

    def lock(self, name: LockName) -> str:
        return f"{self.p}:wf:lock:{name.digest(self.p).hex()}"


@dataclass(frozen=True, slots=True)
class AIKeys(_Bucketed):
    """AI keys of namespace `p`; `K = p:ai`, ids escaped (docs/operations.md#storage-layout).

    `buckets=0` is the standalone layout; with `buckets=B` a thread (and its agent runs, whose
    ids are drawn into its bucket) lives in tag `{P.b}`, `b = bucket(thread id)`, with that
    bucket's namespace indexes: every method naming an index takes `b`, ignored standalone.
    """

    p: str
    buckets: int = 0

    def _t(self, thread_id: str, suffix: str) -> str:
        if self.buckets:
            b = bucket_of(thread_id, self.buckets)
            return f"{self.p}:ai:t:{{{self.p}.{b}}}:{escape_id(thread_id)}:{suffix}"
        return f"{self.p}:ai:t:{{{escape_id(thread_id)}}}:{suffix}"

    def _i(self, b: int, suffix: str) -> str:
        if self.buckets:
            return f"{self.p}:ai:i:{{{self.p}.{b}}}:{suffix}"
        return f"{self.p}:ai:i:{{{self.p}}}:{suffix}"

    # --- per thread ----------------------------------------------------------------------------

    def thread(self, thread_id: str) -> str:
        return self._t(thread_id, "thread")

    def msgs(self, thread_id: str) -> str:
        return self._t(thread_id, "msgs")

    def msg(self, thread_id: str) -> str:
        return self._t(thread_id, "msg")

    def msg_ids(self, thread_id: str) -> str:
        return self._t(thread_id, "msg-ids")

    def calls(self, thread_id: str) -> str:
        return self._t(thread_id, "calls")

    def results(self, thread_id: str) -> str:
        return self._t(thread_id, "results")

    def thread_memory(self, thread_id: str) -> str:
        return self._t(thread_id, "memory")

    def runs(self, thread_id: str) -> str:
        return self._t(thread_id, "runs")

    def agents(self, thread_id: str) -> str:
        return self._t(thread_id, "agents")

    def undelivered(self, thread_id: str) -> str:
        """The thread's tool call ids whose stored result is undelivered (a set)."""
        return self._t(thread_id, "undelivered")

    def run(self, thread_id: str, run_id: str) -> str:
        return self._t(thread_id, f"run:{run_id}")

    def pending(self, thread_id: str, run_id: str) -> str:
        return self._t(thread_id, f"run:{run_id}:pending")

    def decisions(self, thread_id: str, run_id: str) -> str:
        return self._t(thread_id, f"run:{run_id}:decisions")

    def scores(self, thread_id: str, run_id: str) -> str:
        """The run's scores: a zset, score `created_at` ms, member `<seq16>:<JSON>`."""
        return self._t(thread_id, f"run:{run_id}:scores")

    def thread_data(self, thread_id: str) -> list[str]:
        """The ten fixed keys of a thread, in the order the delete script expects."""
        return [
            self.thread(thread_id),
            self.msgs(thread_id),
            self.msg(thread_id),
            self.msg_ids(thread_id),
            self.calls(thread_id),
            self.results(thread_id),
            self.thread_memory(thread_id),
            self.runs(thread_id),
            self.agents(thread_id),
            self.undelivered(thread_id),
        ]

    # --- per resource -----------------------------------------------------------------------

    def resource_memory(self, resource_id: str) -> str:
        if self.buckets:  # one key, alone in its operations: any slot, the resource's bucket
            b = bucket_of(resource_id, self.buckets)
            return f"{self.p}:ai:r:{{{self.p}.{b}}}:{escape_id(resource_id)}:memory"
        return f"{self.p}:ai:r:{{{escape_id(resource_id)}}}:memory"

    # --- namespace indexes ------------------------------------------------------------------

    def seq(self, b: int = 0) -> str:
        """The namespace's thread and run sequence: in the indexes' tag standalone (the
        scripts increment it); on a cluster in its own tag `{P.seq}` (the client first)."""
        if self.buckets:
            return f"{self.p}:ai:i:{{{self.p}.seq}}:seq"
        return self._i(b, "seq")

    def threads(self, b: int = 0) -> str:
        return self._i(b, "threads")

    def resources(self, b: int = 0) -> str:
        """Raw ids of the resources that have a thread (a zset, scores 0, read BYLEX)."""
        return self._i(b, "resources")

    def by_resource(self, resource_id: str, b: int = 0) -> str:
        return self._i(b, f"resource:{escape_id(resource_id)}")

    def by_agent(self, agent_name: str, b: int = 0) -> str:
        return self._i(b, f"agent:{escape_id(agent_name)}")

    def by_agent_resource(self, agent_name: str, resource_id: str, b: int = 0) -> str:
        return self._i(b, f"agent-resource:{escape_id(agent_name)}:{escape_id(resource_id)}")

    def agent_names(self, b: int = 0) -> str:
        return self._i(b, "agents")

    def run_thread(self, b: int = 0) -> str:
        return self._i(b, "run-thread")

    def approval(self, tool_call_id: str, b: int = 0) -> str:
        return self._i(b, f"approval:{escape_id(tool_call_id)}")


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """Channel and subscription keys of namespace `p` (docs/operations.md#storage-layout):
    `p:<family>:…` standalone, `p:ch:{P.ch}:<family>:…` on a cluster (one slot)."""

    base: str

    @classmethod
    def of(cls, p: str, cluster: bool = False) -> ChannelKeys:
        return cls(f"{p}:ch:{{{p}.ch}}" if cluster else p)

    def channel(self, channel_id: str) -> str:
        return f"{self.base}:channel:{channel_id}"

    def seen(self) -> str:
        return f"{self.base}:channels-seen"

    def channel_topics(self, channel_id: str) -> str:
        return f"{self.base}:channel-topics:{channel_id}"

    def topic(self, topic: str) -> str:
        return f"{self.base}:topic:{topic}"

    def channel_prefix(self) -> str:
        return f"{self.base}:channel:"

    def channel_topics_prefix(self) -> str:
        return f"{self.base}:channel-topics:"

    def topic_prefix(self) -> str:
        return f"{self.base}:topic:"


@dataclass(frozen=True, slots=True)
class DeploymentKeys:
    """Deployment registration keys of namespace `p` (docs/operations.md#storage-layout):
    `p:<family>:…` standalone, `p:dep:{P.dep}:<family>:…` on a cluster (one slot)."""

    base: str

    @classmethod
    def of(cls, p: str, cluster: bool = False) -> DeploymentKeys:
        return cls(f"{p}:dep:{{{p}.dep}}" if cluster else p)

    def deployments(self) -> str:
        return f"{self.base}:deployments"

    def deployment(self, deployment_id: str) -> str:
        return f"{self.base}:deployment:{deployment_id}"

    def functions_of(self, deployment_id: str) -> str:
        return f"{self.base}:deployment-functions:{deployment_id}"

    def function(self, name: str) -> str:
        return f"{self.base}:function:{name}"

    def deployment_prefix(self) -> str:
        return f"{self.base}:deployment:"

    def functions_of_prefix(self) -> str:
        return f"{self.base}:deployment-functions:"

    def function_prefix(self) -> str:
        return f"{self.base}:function:"
