"""Every Redis key of the backend, built from the validated prefix; nothing else builds a key.

One function per key family. Workflow keys carry the run's hash tag `{r}` (a UUID) and the
namespace indexes `{P}`; AI keys escape ids so no id can close a hash tag or fake a separator;
channel and deployment keys are `p:<family>:<id>` with fixed, distinct family names. Where a
script must derive keys from stored members (docs/operations.md#storage-layout `list_runs`,
docs/operations.md#storage-layout removals), it gets
the fixed parts of the key from here (`…_prefix`) and only appends the member.
See docs/operations.md#storage-layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from pikku_storage._locks import LockName

__all__ = [
    "LAYOUT_VERSION",
    "AIKeys",
    "ChannelKeys",
    "DeploymentKeys",
    "WorkflowKeys",
    "escape_id",
    "layout_key",
]

LAYOUT_VERSION: Final = 2  # 2: spec 05 (scores, resources, undelivered, markers, sweeper sets)

_ESCAPES: Final = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})


def escape_id(value: str) -> str:
    """An id made safe inside an AI key: `%`, `{`, `}` and `:` percent-escaped
    (docs/operations.md#storage-layout)."""
    return value.translate(_ESCAPES)


def layout_key(prefix: str) -> str:
    """The layout-version key of a namespace (docs/concepts.md#lifecycle-and-namespaces)."""
    return f"{prefix}:layout"


@dataclass(frozen=True, slots=True)
class WorkflowKeys:
    """Workflow keys of namespace `p` (docs/operations.md#storage-layout)."""

    p: str

    # --- per run, tagged {r} -----------------------------------------------------------------

    def run(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:run"

    def state(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:state"

    def steps(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:steps"

    def stepids(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:stepids"

    def order(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:order"

    def attempts(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:attempts"

    def history(self, run_id: str) -> str:
        return f"{self.p}:wf:{{{run_id}}}:history"

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

    def run_prefix(self) -> tuple[str, str]:
        """What goes before and after a run id in its run-hash key (for `list_runs`)."""
        return f"{self.p}:wf:{{", "}:run"

    # --- namespace indexes, tagged {P} ---------------------------------------------------------

    def seq(self) -> str:
        return f"{self.p}:wf:{{{self.p}}}:seq"

    def runs(self) -> str:
        return f"{self.p}:wf:{{{self.p}}}:runs"

    def by_workflow(self, workflow: str) -> str:
        return f"{self.p}:wf:{{{self.p}}}:wf:{workflow}"

    def by_status(self, status: str) -> str:
        return f"{self.p}:wf:{{{self.p}}}:status:{status}"

    def by_workflow_status(self, status: str, workflow: str) -> str:
        return f"{self.p}:wf:{{{self.p}}}:wfstatus:{status}:{workflow}"

    def updated(self, status: str) -> str:
        return f"{self.p}:wf:{{{self.p}}}:updated:{status}"

    def names(self) -> str:
        return f"{self.p}:wf:{{{self.p}}}:names"

    def namecount(self) -> str:
        return f"{self.p}:wf:{{{self.p}}}:namecount"

    def steprefs(self) -> str:
        return f"{self.p}:wf:{{{self.p}}}:steprefs"

    def idle(self) -> str:
        """Running runs with no step in flight: member run id, score `activity_at` ms."""
        return f"{self.p}:wf:{{{self.p}}}:idle"

    def undispatched(self) -> str:
        """Pending steps of running runs: member `<step_id>:<run_id>`, score `dispatch_since`."""
        return f"{self.p}:wf:{{{self.p}}}:undispatched"

    def steps_prefix(self) -> tuple[str, str]:
        """What goes before and after a run id in its steps-hash key (for the sweeper)."""
        return f"{self.p}:wf:{{", "}:steps"

    def run_indexes(self, workflow: str, status: str) -> list[str]:
        """The four status-dependent index keys of a run: status, workflow+status, updated,
        then the workflow index (status-independent), in the order the scripts expect."""
        return [
            self.by_status(status),
            self.by_workflow_status(status, workflow),
            self.updated(status),
            self.by_workflow(workflow),
        ]

    # --- single keys ---------------------------------------------------------------------------

    def version(self, name: str, graph_hash: str) -> str:
        digest = hashlib.sha256(f"{name}\x00{graph_hash}".encode()).hexdigest()
        return f"{self.p}:wf:version:{digest}"

    def lock(self, name: LockName) -> str:
        return f"{self.p}:wf:lock:{name.digest(self.p).hex()}"


@dataclass(frozen=True, slots=True)
class AIKeys:
    """AI keys of namespace `p`; `K = p:ai`, ids escaped (docs/operations.md#storage-layout)."""

    p: str

    def _t(self, thread_id: str, suffix: str) -> str:
        return f"{self.p}:ai:t:{{{escape_id(thread_id)}}}:{suffix}"

    def _i(self, suffix: str) -> str:
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
        return f"{self.p}:ai:r:{{{escape_id(resource_id)}}}:memory"

    # --- namespace indexes ------------------------------------------------------------------

    def seq(self) -> str:
        return self._i("seq")

    def threads(self) -> str:
        return self._i("threads")

    def resources(self) -> str:
        """Raw ids of the resources that have a thread (a zset, scores 0, read BYLEX)."""
        return self._i("resources")

    def by_resource(self, resource_id: str) -> str:
        return self._i(f"resource:{escape_id(resource_id)}")

    def by_agent(self, agent_name: str) -> str:
        return self._i(f"agent:{escape_id(agent_name)}")

    def by_agent_resource(self, agent_name: str, resource_id: str) -> str:
        return self._i(f"agent-resource:{escape_id(agent_name)}:{escape_id(resource_id)}")

    def agent_names(self) -> str:
        return self._i("agents")

    def run_thread(self) -> str:
        return self._i("run-thread")

    def approval(self, tool_call_id: str) -> str:
        return self._i(f"approval:{escape_id(tool_call_id)}")


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """Channel and subscription keys of namespace `p` (docs/operations.md#storage-layout)."""

    p: str

    def channel(self, channel_id: str) -> str:
        return f"{self.p}:channel:{channel_id}"

    def seen(self) -> str:
        return f"{self.p}:channels-seen"

    def channel_topics(self, channel_id: str) -> str:
        return f"{self.p}:channel-topics:{channel_id}"

    def topic(self, topic: str) -> str:
        return f"{self.p}:topic:{topic}"

    def channel_prefix(self) -> str:
        return f"{self.p}:channel:"

    def channel_topics_prefix(self) -> str:
        return f"{self.p}:channel-topics:"

    def topic_prefix(self) -> str:
        return f"{self.p}:topic:"


@dataclass(frozen=True, slots=True)
class DeploymentKeys:
    """Deployment registration keys of namespace `p` (docs/operations.md#storage-layout)."""

    p: str

    def deployments(self) -> str:
        return f"{self.p}:deployments"

    def deployment(self, deployment_id: str) -> str:
        return f"{self.p}:deployment:{deployment_id}"

    def functions_of(self, deployment_id: str) -> str:
        return f"{self.p}:deployment-functions:{deployment_id}"

    def function(self, name: str) -> str:
        return f"{self.p}:function:{name}"

    def deployment_prefix(self) -> str:
        return f"{self.p}:deployment:"

    def functions_of_prefix(self) -> str:
        return f"{self.p}:deployment-functions:"

    def function_prefix(self) -> str:
        return f"{self.p}:function:"
