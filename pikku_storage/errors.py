"""The error hierarchy every backend raises; messages are built here and nowhere else."""

from __future__ import annotations

__all__ = [
    "ChannelNotFound",
    "ConflictError",
    "DeploymentNotStarted",
    "InvalidValue",
    "LockHoldExceeded",
    "LockTimeout",
    "NotFoundError",
    "PikkuStorageError",
    "RunNotFound",
    "SchemaMismatch",
    "StepFunctionMismatch",
    "StepNotFound",
    "StorageUnavailable",
    "ThreadNotFound",
    "WorkflowVersionNotFound",
]


class PikkuStorageError(Exception):
    """Base class of every error this library raises for a contract situation."""


class NotFoundError(PikkuStorageError, LookupError):
    """A named record does not exist."""


class RunNotFound(NotFoundError):
    """A workflow run or agent run does not exist (`Run not found: <id>`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run not found: {run_id}")
        self.run_id = run_id


class StepNotFound(NotFoundError):
    """A workflow step does not exist, named by step id or by run and step name.

    The ids are attributes: `step_id` (by id), or `run_id` and `step_name` (by name); the
    others are `None`.
    """

    def __init__(
        self,
        message: str,
        *,
        step_id: str | None = None,
        run_id: str | None = None,
        step_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.run_id = run_id
        self.step_name = step_name

    @classmethod
    def by_id(cls, step_id: str) -> StepNotFound:
        return cls(f"Step not found: {step_id}", step_id=step_id)

    @classmethod
    def by_name(cls, run_id: str, step_name: str) -> StepNotFound:
        return cls(
            f"Step not found: run={run_id}, step={step_name}", run_id=run_id, step_name=step_name
        )


class ThreadNotFound(NotFoundError):
    """An AI thread does not exist (`Thread not found: <id>`)."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"Thread not found: {thread_id}")
        self.thread_id = thread_id


class WorkflowVersionNotFound(NotFoundError):
    """A workflow version does not exist (`Workflow version not found: name=<n>, hash=<h>`)."""

    def __init__(self, name: str, graph_hash: str) -> None:
        super().__init__(f"Workflow version not found: name={name}, hash={graph_hash}")
        self.name = name
        self.graph_hash = graph_hash


class ChannelNotFound(NotFoundError):
    """A channel does not exist (`Channel not found: <id>`)."""

    def __init__(self, channel_id: str) -> None:
        super().__init__(f"Channel not found: {channel_id}")
        self.channel_id = channel_id


class ConflictError(PikkuStorageError):
    """A create-only write found its key already taken.

    The key is in attributes: `run_id` and `step_name` (a step), `thread_id` (a thread; with
    `message_id` or `tool_call_id` for a message or tool call), `channel_id` (a channel); the
    others are `None`.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        step_name: str | None = None,
        thread_id: str | None = None,
        message_id: str | None = None,
        tool_call_id: str | None = None,
        channel_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step_name = step_name
        self.thread_id = thread_id
        self.message_id = message_id
        self.tool_call_id = tool_call_id
        self.channel_id = channel_id

    @classmethod
    def step(cls, run_id: str, step_name: str) -> ConflictError:
        return cls(
            f"Step already exists: run={run_id}, step={step_name}",
            run_id=run_id,
            step_name=step_name,
        )

    @classmethod
    def thread(cls, thread_id: str) -> ConflictError:
        return cls(f"Thread already exists: {thread_id}", thread_id=thread_id)

    @classmethod
    def message(cls, thread_id: str, message_id: str) -> ConflictError:
        return cls(
            f"Message already exists: thread={thread_id}, message={message_id}",
            thread_id=thread_id,
            message_id=message_id,
        )

    @classmethod
    def tool_call(cls, thread_id: str, tool_call_id: str) -> ConflictError:
        return cls(
            f"Tool call already exists: thread={thread_id}, tool_call={tool_call_id}",
            thread_id=thread_id,
            tool_call_id=tool_call_id,
        )

    @classmethod
    def channel(cls, channel_id: str) -> ConflictError:
        return cls(f"Channel already exists: {channel_id}", channel_id=channel_id)


class InvalidValue(PikkuStorageError, ValueError):
    """A bad id, JSON value, option or namespace name; raised before any write."""

    @classmethod
    def unmatched_tool_result(cls, thread_id: str, tool_call_id: str) -> InvalidValue:
        return cls(
            f"Tool result has no matching tool call: thread={thread_id}, tool_call={tool_call_id}"
        )


class LockTimeout(PikkuStorageError, TimeoutError):
    """A lock was not acquired before its timeout."""

    def __init__(self, lock_name: str, timeout: float | None) -> None:
        super().__init__(f"Lock not acquired within {timeout}s: {lock_name}")
        self.lock_name = lock_name
        self.timeout = timeout


class LockHoldExceeded(PikkuStorageError, TimeoutError):
    """A lock was held past its `max_hold` and taken back; the body was cancelled and fenced.

    Not a `LockTimeout` (that lock was never acquired).
    """

    def __init__(self, lock_name: str, max_hold: float) -> None:
        super().__init__(f"Lock held longer than {max_hold}s and taken back: {lock_name}")
        self.lock_name = lock_name
        self.max_hold = max_hold


class StepFunctionMismatch(PikkuStorageError):
    """A step was claimed for a function other than the one it was dispatched with.

    The message names neither function (the stored one is not the caller's to learn).
    """

    def __init__(self, run_id: str, step_name: str) -> None:
        super().__init__(
            f"Step was dispatched with a different function: run={run_id}, step={step_name}"
        )
        self.run_id = run_id
        self.step_name = step_name


class StorageUnavailable(PikkuStorageError):
    """The server could not be reached or the connection broke.

    The outcome of the call is unknown: a connection can break after a write was sent, and
    even after its COMMIT, so the write may have happened. `outcome_unknown` is `True` unless
    the backend knows nothing was sent (for example a service used before `init()`). Reads can
    be retried freely; which writes can be retried, and how to tell whether one landed, is in
    the documentation (concepts, "Retrying after StorageUnavailable").
    """

    def __init__(self, message: str = "", *, outcome_unknown: bool = True) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class SchemaMismatch(PikkuStorageError):
    """The store was written by a newer version of this library."""

    def __init__(self, namespace: str, found: int, supported: int) -> None:
        super().__init__(
            f"Store {namespace!r} is at schema version {found}, newer than this library's "
            f"{supported}; upgrade pikku-storage"
        )
        self.namespace = namespace
        self.found = found
        self.supported = supported


class DeploymentNotStarted(PikkuStorageError, RuntimeError):
    """`heartbeat()` was called before `start()` or after `stop()`."""

    def __init__(self) -> None:
        super().__init__("Deployment service not started")
