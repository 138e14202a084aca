"""White-box: the shared fast paths (codec checks and copies, record builders) decide and
build exactly what the plain paths do, and the memory fake's cached reads alias nothing."""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pikku_storage import open_storage, records
from pikku_storage._build import record_builder
from pikku_storage._ids import new_id
from pikku_storage.codec import MAX_INT_DIGITS, MAX_JSON_DEPTH, _find_problem, _valid, copy_json
from pikku_storage.errors import InvalidValue
from pikku_storage.interfaces._ai_messages import MessageBatch, NewMessage, StoredMessage
from pikku_storage.interfaces.workflows import NewRun
from pikku_storage.memory import _ai_store
from pikku_storage.records import PlannedStep, WorkflowRunWire

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: they must be refused
    | st.text()  # lone surrogates included
    | st.builds(  # around the digit limit (built lazily: such ints have no repr)
        lambda digits, sign: sign * (10**digits - 1),
        st.integers(MAX_INT_DIGITS - 1, MAX_INT_DIGITS + 1),
        st.sampled_from([1, -1]),
    )
    | st.sampled_from([(1,), {1}, b"x", datetime(2026, 1, 1, tzinfo=UTC)])
)
ANY_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text() | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int) -> object:
    value: object = 1
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


def _accepted(value: object, depth: int = MAX_JSON_DEPTH) -> bool:
    try:
        _find_problem(value, "v", depth)
    except InvalidValue:
        return False
    return True


@given(ANY_VALUES)
def test_the_fast_check_accepts_exactly_what_the_path_naming_check_accepts(value: object) -> None:
    assert _valid(value, MAX_JSON_DEPTH) == _accepted(value)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_the_fast_check_bounds_depth_as_the_path_naming_check_does(depth: int) -> None:
    value = _nested(depth)
    assert _valid(value, MAX_JSON_DEPTH) == _accepted(value) == (depth <= MAX_JSON_DEPTH)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _containers(value: object) -> list[object]:
    if isinstance(value, list):
        return [value, *(c for item in value for c in _containers(item))]
    if isinstance(value, dict):
        return [value, *(c for item in value.values() for c in _containers(item))]
    return []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_copy_json_is_equal_and_shares_no_container(value: Any) -> None:
    copied = copy_json(value)
    assert _same(copied, value)
    originals = {id(c) for c in _containers(value)}
    assert not originals & {id(c) for c in _containers(copied)}


def test_copy_json_copies_nested_container_subclasses_as_plain_containers() -> None:
    class Bag(dict[str, object]):
        pass

    class Row(list[object]):
        pass

    inner = Row([Bag(k=[1])])
    original: Any = {"a": inner, "b": [Bag()]}
    copied: Any = copy_json(original)
    assert copied == original
    assert type(copied["a"]) is list
    assert type(copied["a"][0]) is dict
    assert type(copied["b"][0]) is dict
    assert not {id(c) for c in _containers(original)} & {id(c) for c in _containers(copied)}


def _builder_cases() -> list[type[Any]]:
    """Every record that can have a builder, plus the internal ones that use one."""
    public = [
        cls
        for cls in vars(records).values()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and cls.__module__ == records.__name__
        and not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        and all(f.init and f.kw_only for f in dataclasses.fields(cls))
    ]
    return [*public, NewRun, NewMessage, MessageBatch, StoredMessage, _ai_store._Message]


def _arguments(cls: type[Any], *, every: bool) -> dict[str, object]:
    """A distinct value per field (all of them, or only those without a default)."""
    return {
        f.name: f"value-{f.name}"
        for f in dataclasses.fields(cls)
        if every or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    }


@pytest.mark.parametrize("cls", _builder_cases(), ids=lambda cls: cls.__name__)
def test_a_record_builder_builds_what_the_class_builds(cls: type[Any]) -> None:
    build = record_builder(cls)
    for every in (True, False):
        kwargs = _arguments(cls, every=every)
        built, expected = build(**kwargs), cls(**kwargs)
        assert type(built) is cls
        assert built == expected
    # default factories run per record, as in __init__
    first, second = build(**_arguments(cls, every=False)), build(**_arguments(cls, every=False))
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(first, f.name) is not getattr(second, f.name)


def test_a_record_builder_refuses_what_it_cannot_build_like_init() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Frozen:
        a: int

    @dataclasses.dataclass(kw_only=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass
    class Positional:
        a: int

    for cls in (Frozen, Checked, Positional):
        with pytest.raises(TypeError):
            record_builder(cls)
    with pytest.raises(TypeError):
        record_builder(PlannedStep)(name="x")  # type: ignore[call-arg]  # a wrong keyword


def _scribble(value: object) -> None:
    """Mutate a read deeply, fields and containers (as the contract's `scribble`)."""
    if isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("scribbled")
    elif isinstance(value, dict):
        for item in value.values():
            _scribble(item)
        value["scribbled"] = True
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _scribble(getattr(value, f.name))
            setattr(value, f.name, "scribbled")


async def test_memory_run_reads_share_nothing_with_the_store_or_each_other() -> None:
    """The memory fake decodes a run's payloads once and copies them per read."""
    async with open_storage("memory://") as storage:
        wf = storage.workflows
        run_id = await wf.create_run(
            "wf",
            {"list": [1, {"deep": [2]}], "obj": {"a": 1}},
            wire=WorkflowRunWire(type="http", id="req", parent_run_id="p"),
            deterministic=True,
            planned_steps=[
                PlannedStep(step_name="a", display_name="A"),
                PlannedStep(step_name="b"),
            ],
        )
        await wf.update_run_status(run_id, "failed", output=[{"o": [1]}], error={"message": "m"})
        first = await wf.get_run(run_id)
        listed = await storage.workflow_runs.list_runs()
        expected = await wf.get_run(run_id)
        assert first == expected == listed[0]
        _scribble(first)
        _scribble(listed)
        assert await wf.get_run(run_id) == expected
        assert (await storage.workflow_runs.list_runs())[0] == expected
        await wf.update_run_status(run_id, "completed", output={"new": [3]})
        after = await wf.get_run(run_id)
        assert after is not None
        assert (after.output, after.error) == ({"new": [3]}, None)
        assert after.input == {"list": [1, {"deep": [2]}], "obj": {"a": 1}}


def test_ids_across_batches_are_distinct_uuid4_strings_of_every_variant() -> None:
    ids = [new_id() for _ in range(2000)]  # several batches
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(value) for value in ids]
    assert all(str(u) == value and u.version == 4 for u, value in zip(parsed, ids, strict=True))
    assert {value[19] for value in ids} == set("89ab")
    assert all(u.variant == uuid.RFC_4122 for u in parsed)


def test_threads_drawing_ids_at_once_never_share_one() -> None:
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [new_id() for _ in range(3000)], range(4)))
    ids = [value for batch in batches for value in batch]
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_id()  # a batch with unused digits exists before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  # the child
        os.close(read)
        os.write(write, " ".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(10)}
    assert len(child) == 10
    assert not child & parent
