"""Unit tests of the shared core: codec, argument rules, clocks, ids, serial forms, open_storage."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pikku_storage import (
    AgentCallApproval,
    InvalidValue,
    ManualClock,
    Storage,
    SystemClock,
    ToolCallApproval,
    WorkflowRunWire,
    open_storage,
)
from pikku_storage import _validate as v
from pikku_storage._ids import is_canonical_uuid, new_id
from pikku_storage._serial import (
    decode_approval,
    decode_content,
    decode_wire,
    encode_approval,
    encode_content,
    encode_error,
    encode_wire,
)
from pikku_storage.clock import (
    EARLIEST,
    LATEST,
    TEST_START,
    clamp_ms,
    from_epoch_ms,
    now_ms,
    to_epoch_ms,
    truncate_ms,
)
from pikku_storage.codec import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    copy_json,
    decode,
    decode_optional,
    encode,
    encode_object,
    encode_optional,
)
from pikku_storage.errors import ConflictError, SchemaMismatch, StepNotFound, StorageUnavailable
from pikku_storage.memory import InMemoryStore
from pikku_storage.records import StepStatus, WorkflowStatus

T0 = TEST_START
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same_json(a: object, b: object) -> bool:
    """Equal with types: `1`, `1.0` and `True` differ, `-0.0` differs from `0.0`."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return a == b


# --- codec ------------------------------------------------------------------------------------


@given(JSON_VALUES)
def test_json_values_round_trip_exactly(value: object) -> None:
    assert same_json(decode(encode(value, "value")), value)


@pytest.mark.parametrize(
    "value", [0, False, "", [], {}, None, 2**100, 1e16, 0.1, -0.0, "\u0000", "é😀", [[[[{}]]]]]
)
def test_spec_round_trip_values_keep_their_type(value: object) -> None:
    assert same_json(decode(encode(value, "v")), value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({1, 2}, "input"),
        (b"x", "input"),
        (T0, "input"),
        (object(), "input"),
        ({1: "a"}, "input"),
        (math.nan, "input"),
        (math.inf, "input"),
        ({"a": [0, "\ud800"]}, "input['a'][1]"),
        ({"\udfff": 1}, "input key"),
    ],
    ids=["set", "bytes", "datetime", "object", "int-key", "nan", "inf", "surrogate", "key"],
)
def test_non_json_values_raise_invalid_value_naming_the_path(value: object, path: str) -> None:
    with pytest.raises(InvalidValue, match=path.replace("[", r"\[").replace("]", r"\]")):
        encode(value, "input")


def test_encoding_is_compact_and_keeps_unicode_and_escapes_nul() -> None:
    assert encode({"a": [1, "é"]}, "v") == '{"a":[1,"é"]}'
    assert encode("\u0000", "v") == '"\\u0000"'


def test_encode_object_optional_and_decode_optional() -> None:
    assert encode_object({}, "metadata") == "{}"
    with pytest.raises(InvalidValue, match="metadata: expected a JSON object, got list"):
        encode_object([], "metadata")
    assert encode_optional(None, "v") is None
    assert encode_optional(0, "v") == "0"
    assert decode_optional(None) is None
    assert decode_optional(b'{"a":1}') == {"a": 1}


def test_copy_json_shares_nothing() -> None:
    original: dict[str, object] = {"a": [1, {"b": []}]}
    copied = copy_json(original)  # type: ignore[arg-type]  # a JSON value built above
    assert copied == original
    assert isinstance(copied, dict)
    inner = copied["a"]
    assert isinstance(inner, list)
    assert inner is not original["a"]
    inner.append(2)
    assert original == {"a": [1, {"b": []}]}


# --- argument rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "x" * 256, "a\x00b", "\ud800", 5, None, b"id"], ids=repr)
def test_identifiers_refuse_empty_long_nul_surrogate_and_non_str(bad: object) -> None:
    with pytest.raises(InvalidValue, match="run_id"):
        v.identifier("run_id", bad)


@pytest.mark.parametrize("good", ["x" * 255, "a:b", "with space", 'q"uote', "名前", "😀"])
def test_identifiers_accept_any_other_text_up_to_255(good: str) -> None:
    assert v.identifier("id", good) == good


def test_plain_text_allows_empty_but_not_nul_or_surrogates() -> None:
    assert v.plain_text("source", "") == ""
    assert v.optional_text("title", None) is None
    for bad in ("\x00", "\ud800", 1):
        with pytest.raises(InvalidValue, match="source"):
            v.plain_text("source", bad)


def test_identifier_lists_refuse_a_bare_string() -> None:
    assert v.identifier_list("node_ids", ("a", "b")) == ["a", "b"]
    for bad in ("ab", b"ab", 3):
        with pytest.raises(InvalidValue, match="node_ids"):
            v.identifier_list("node_ids", bad)
    with pytest.raises(InvalidValue, match=r"node_ids\[1\]"):
        v.identifier_list("node_ids", ["a", ""])


@pytest.mark.parametrize("bad", [True, -1, 1.5, "1"], ids=repr)
def test_non_negative_ints_refuse_bools_negatives_and_non_ints(bad: object) -> None:
    with pytest.raises(InvalidValue, match="retries"):
        v.non_negative_int("retries", bad)


def test_limits_offsets_and_batch_sizes_have_bounds() -> None:
    assert v.limit_offset(1, 0) == (1, 0)
    assert v.limit_offset(1000, 5) == (1000, 5)
    for limit, offset in ((0, 0), (1001, 0), (True, 0), (-1, 0), (1, -1)):
        with pytest.raises(InvalidValue):
            v.limit_offset(limit, offset)
    assert v.batch_size(10_000) == 10_000
    for bad in (0, 10_001, True):
        with pytest.raises(InvalidValue, match="batch_size"):
            v.batch_size(bad)
    with pytest.raises(InvalidValue):
        v.non_negative_int("n", 2**63, below=2**63)


def test_enum_members_accept_members_and_exact_values_only() -> None:
    assert v.enum_member(WorkflowStatus, "status", "completed") is WorkflowStatus.COMPLETED
    assert v.enum_member(StepStatus, "status", StepStatus.FAILED) is StepStatus.FAILED
    for bad in ("Completed", " running", "bogus", 1, None):
        with pytest.raises(InvalidValue, match="status must be one of"):
            v.enum_member(WorkflowStatus, "status", bad)


def test_cutoffs_must_be_aware_and_are_truncated_to_utc_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    cutoff = v.aware_cutoff("finished_before", datetime(2026, 1, 1, 2, 0, 0, 1999, plus_two))
    assert cutoff == datetime(2026, 1, 1, 0, 0, 0, 1000, UTC)
    assert cutoff.tzinfo is UTC
    with pytest.raises(InvalidValue, match="timezone-aware"):
        v.aware_cutoff("finished_before", datetime(2026, 1, 1))
    with pytest.raises(InvalidValue):
        v.aware_cutoff("finished_before", "2026-01-01")


def test_timeouts_seconds_and_booleans() -> None:
    assert v.timeout(None) is None
    assert v.timeout(0) == 0.0
    for bad in (-1, math.nan, math.inf, True, "1"):
        with pytest.raises(InvalidValue, match="timeout"):
            v.timeout(bad)
    assert v.positive_seconds("ttl", 0.5) == 0.5
    for bad in (0, -1, math.inf, True):
        with pytest.raises(InvalidValue, match="ttl"):
            v.positive_seconds("ttl", bad)
    assert v.boolean("inline", False) is False
    with pytest.raises(InvalidValue, match="inline"):
        v.boolean("inline", 0)


@pytest.mark.parametrize("good", ["pikku", "_x", "a1_b2", "P" * 48])
def test_namespace_names_are_plain_ascii_identifiers(good: str) -> None:
    assert v.namespace("schema", good) == good


@pytest.mark.parametrize("bad", ["", "1a", "a-b", "a b", 'a"b', "é", "a" * 49, None], ids=repr)
def test_namespace_names_refuse_anything_else(bad: object) -> None:
    with pytest.raises(InvalidValue, match="schema must be a plain identifier"):
        v.namespace("schema", bad)


# --- clocks -------------------------------------------------------------------------------------


def test_manual_clock_starts_at_2026_and_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock.now() == T0
    assert clock.now() == T0
    clock.advance(1.5)
    assert clock.now() == T0 + timedelta(seconds=1.5)
    clock.advance(-3)
    assert clock.now() == T0 - timedelta(seconds=1.5)
    clock.set(datetime(2001, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2001, 1, 1, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert repr(clock) == "ManualClock(2001-01-01T00:00:00+00:00)"


def test_manual_clock_refuses_naive_times_and_odd_steps() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock()
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        clock.advance(True)
    with pytest.raises(ValueError, match="finite"):
        clock.advance(math.inf)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert now_ms(SystemClock()).microsecond % 1000 == 0


def test_millisecond_truncation_and_epoch_conversions() -> None:
    when = datetime(2026, 1, 1, 0, 0, 0, 999_999, UTC)
    assert truncate_ms(when) == datetime(2026, 1, 1, 0, 0, 0, 999_000, UTC)
    assert truncate_ms(datetime(1969, 12, 31, 23, 59, 59, 999_999, UTC)).microsecond == 999_000
    clock = ManualClock(when)
    assert now_ms(clock) == truncate_ms(when)
    assert to_epoch_ms(T0) == 1_767_225_600_000
    assert from_epoch_ms(1_767_225_600_001) == T0 + timedelta(milliseconds=1)
    assert from_epoch_ms(to_epoch_ms(when)) == truncate_ms(when)


# --- ids ------------------------------------------------------------------------------------


def test_new_ids_are_canonical_uuid4_strings() -> None:
    first, second = new_id(), new_id()
    assert first != second
    assert uuid.UUID(first).version == 4
    assert is_canonical_uuid(first)


@pytest.mark.parametrize(
    "value",
    [
        lambda u: u.upper(),
        lambda u: "{" + u + "}",
        lambda u: u.replace("-", ""),
        lambda u: "urn:uuid:" + u,
        lambda u: "x",
        lambda u: "a:b",
        lambda u: " " + u[1:],
    ],
    ids=["upper", "braces", "hex", "urn", "x", "colon", "space"],
)
def test_non_canonical_uuid_spellings_are_unknown_ids(value: object) -> None:
    assert callable(value)
    assert not is_canonical_uuid(value(new_id()))


# --- serial forms -----------------------------------------------------------------------------


class CodedError(Exception):
    def __init__(self, message: str, code: object) -> None:
        super().__init__(message)
        self.code = code


@pytest.mark.parametrize(
    ("code", "stored"), [(None, None), (7, 7), ("E1", "E1"), (True, "True"), (1.5, "1.5")]
)
def test_exceptions_store_message_name_stack_and_code(code: object, stored: object) -> None:
    error = decode(encode_error(CodedError("boom", code)))
    assert isinstance(error, dict)
    assert error["message"] == "boom"
    assert error["name"] == "CodedError"
    assert isinstance(error["stack"], str)
    assert "CodedError: boom" in error["stack"]
    assert error["code"] == stored
    assert type(error["code"]) is type(stored)


def test_raised_exceptions_keep_their_traceback() -> None:
    try:
        raise ValueError("raised")
    except ValueError as exc:
        error = decode(encode_error(exc))
    assert isinstance(error, dict)
    assert "test_raised_exceptions_keep_their_traceback" in str(error["stack"])


def test_mappings_store_the_four_keys_plus_extras() -> None:
    assert json.loads(encode_error({"message": "m", "extra": [1]})) == {
        "message": "m",
        "name": None,
        "stack": None,
        "code": None,
        "extra": [1],
    }
    for bad in ({}, {"message": 1}, {"message": "m", "name": 1}, {"message": "m", "code": True}):
        with pytest.raises(InvalidValue, match="error"):
            encode_error(bad)
    with pytest.raises(InvalidValue, match="error"):
        encode_error("not an error")
    with pytest.raises(InvalidValue, match=r"error\['extra'\]"):
        encode_error({"message": "m", "extra": {1, 2}})


def test_wires_default_to_unknown_and_round_trip() -> None:
    assert decode_wire(encode_wire(None)) == WorkflowRunWire(type="unknown")
    wire = WorkflowRunWire(type="rpc", id="w", parent_run_id="p")
    assert decode_wire(encode_wire(wire)) == wire
    with pytest.raises(InvalidValue, match="wire"):
        encode_wire({"type": "http"})
    with pytest.raises(InvalidValue, match=r"wire\.type"):
        encode_wire(WorkflowRunWire(type=""))


def test_approvals_round_trip_by_kind() -> None:
    tool = ToolCallApproval(tool_call_id="c1", tool_name="search", args={"q": [1, None]})
    agent = AgentCallApproval(
        tool_call_id="c2",
        agent_name="sub",
        agent_run_id="r",
        display_tool_name="ask",
        display_args=2**70,
    )
    for approval in (tool, agent):
        encoded = encode_approval(approval, "pending_approvals[0]")
        assert encoded.tool_call_id == approval.tool_call_id
        assert decode_approval(encoded.kind, encoded.payload) == approval
    bad_args: object = {1, 2}
    with pytest.raises(InvalidValue, match=r"pending_approvals\[0\].args"):
        encode_approval(
            ToolCallApproval(tool_call_id="c", tool_name="t", args=bad_args),  # type: ignore[arg-type]  # not JSON on purpose
            "pending_approvals[0]",
        )
    with pytest.raises(InvalidValue, match="must be a ToolCallApproval"):
        encode_approval({"tool_call_id": "c"}, "pending_approvals[0]")


@pytest.mark.parametrize("content", [None, "", "x", '"x"', [], [{"type": "text", "text": "t"}]])
def test_message_content_splits_and_rebuilds_exactly(content: object) -> None:
    text, parts = encode_content(content, "content")
    assert same_json(decode_content(text, parts), content)


@pytest.mark.parametrize(
    "bad", [5, {"type": "text"}, [1], [{"text": "no type"}], "a\x00"], ids=repr
)
def test_bad_message_content_raises_invalid_value(bad: object) -> None:
    with pytest.raises(InvalidValue, match="content"):
        encode_content(bad, "content")


# --- open_storage -----------------------------------------------------------------------------


async def test_open_storage_memory_builds_every_service_and_closes_them() -> None:
    clock = ManualClock()
    storage = open_storage("memory://", clock=clock)
    assert isinstance(storage, Storage)
    assert len(list(storage.services())) == 8
    async with storage as entered:
        assert entered is storage
        assert storage.workflows.clock is clock
        run_id = await storage.workflows.create_run("wf", None)
        assert (await storage.workflow_runs.get_run(run_id)) is not None


@pytest.mark.parametrize("url", ["bogus://x", "http://x", "", "mysql://x"])
def test_open_storage_refuses_unknown_schemes_naming_the_known_ones(url: str) -> None:
    with pytest.raises(InvalidValue, match="unknown storage URL scheme") as caught:
        open_storage(url)
    assert "memory://" in str(caught.value)
    assert "postgresql+psycopg://" in str(caught.value)


def test_open_storage_refuses_a_non_string_url() -> None:
    with pytest.raises(InvalidValue, match="url must be a str"):
        open_storage(b"memory://")  # type: ignore[arg-type]  # the wrong type on purpose


# --- limits of issue 17 -----------------------------------------------------------------------


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def test_json_depth_limit_is_checked_once_in_the_codec() -> None:
    """Item 1: the limit and one past it; far past it is `InvalidValue`, not RecursionError."""
    assert decode(encode(_nested(MAX_JSON_DEPTH), "input")) == _nested(MAX_JSON_DEPTH)
    for depth in (MAX_JSON_DEPTH + 1, 10_000, 1_000_000):
        with pytest.raises(InvalidValue, match=f"nested deeper than {MAX_JSON_DEPTH}"):
            encode(_nested(depth), "input")
    with pytest.raises(InvalidValue, match=r"^input\['a'\]\[0\]"):
        encode({"a": [_nested(MAX_JSON_DEPTH)]}, "input")


def test_a_stored_document_too_deep_to_read_is_invalid_value_not_recursion_error() -> None:
    """Item 1: text written before the limit existed (depth 100,000) reads as `InvalidValue`."""
    with pytest.raises(InvalidValue, match="nested too deep"):
        decode("[" * 100_000 + "]" * 100_000)


def test_ints_past_the_digit_limit_are_invalid_value_not_value_error() -> None:
    """Item 7: CPython writes at most 4,300 digits; one more is `InvalidValue` naming the path."""
    assert MAX_INT_DIGITS == 4300
    for value in (10**MAX_INT_DIGITS - 1, -(10**MAX_INT_DIGITS - 1), 2**14_284):
        assert decode(encode(value, "n")) == value
    for value in (10**MAX_INT_DIGITS, -(10**MAX_INT_DIGITS), 10**100_000):
        with pytest.raises(InvalidValue, match=r"^input\[0\]: int has more than 4300 digits"):
            encode([value], "input")


def test_json_subclasses_pass_the_slow_path() -> None:
    class Tag(int):
        pass

    class Bag(dict[str, object]):
        pass

    assert encode(Bag(k=Tag(3)), "x") == '{"k":3}'
    with pytest.raises(InvalidValue, match="tuple"):
        encode(Bag(k=(1,)), "x")


def test_counts_are_signed_64_bit_and_capped_for_the_backend() -> None:
    """Item 7 / issue 12: 2**63 is `InvalidValue`; 2**63 - 1 reaches the backend as 2**53."""
    assert v.count("last_n", 5) == 5
    assert v.count("last_n", 2**63 - 1) == v.COUNT_CEILING
    assert v.limit_offset(50, 2**63 - 1) == (50, v.COUNT_CEILING)
    for bad in (2**63, 2**100, -1, True):
        with pytest.raises(InvalidValue, match="last_n"):
            v.count("last_n", bad)
    with pytest.raises(InvalidValue, match=r"out of range 0\.\.9223372036854775807"):
        v.non_negative_int("offset", 2**63)
    with pytest.raises(InvalidValue, match="an int of 1001 bits"):
        v.non_negative_int("offset", 2**1000)


def test_lock_timeouts_past_what_a_server_can_wait_mean_no_deadline() -> None:
    """Item 6: over (2**31 - 1) ms the timeout is `None` on every backend."""
    assert v.timeout(v.MAX_LOCK_WAIT) == v.MAX_LOCK_WAIT
    for huge in (v.MAX_LOCK_WAIT + 0.001, 1e300, 10**400):
        assert v.timeout(huge) is None


def test_table_prefixes_must_be_lower_case() -> None:
    """Item 2."""
    assert v.table_prefix("table_prefix", "pikku_") == "pikku_"
    assert v.table_prefix("table_prefix", "") == ""
    for bad in ("Pikku_", "xCase_", "X"):
        with pytest.raises(InvalidValue, match="must be lower case"):
            v.table_prefix("table_prefix", bad)
    assert v.namespace("key_prefix", "MyApp") == "MyApp"  # Redis keys compare exactly
    assert v.namespace("schema", "Pikku_X") == "Pikku_X"  # a quoted schema: case matters


@pytest.mark.parametrize(
    "name",
    ["pg_catalog", "pg_toast", "pg_temp_3", "PG_TEMP", "information_schema", "mysql", "sys"],
)
def test_reserved_schema_names_are_invalid(name: str) -> None:
    """Item 8."""
    with pytest.raises(InvalidValue, match="reserved by the database server"):
        v.namespace("schema", name)
    assert v.namespace("key_prefix", name) == name  # not a schema


class _Naive:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, 12, 0)  # naive on purpose


class _Text:
    def now(self) -> object:
        return "2026-01-01T00:00:00Z"


def test_a_clock_returning_naive_or_non_datetimes_is_invalid_where_it_is_read() -> None:
    """Item 9: never read as local time."""
    with pytest.raises(InvalidValue, match=r"_Naive.now\(\) must return a timezone-aware"):
        now_ms(_Naive())
    with pytest.raises(InvalidValue, match="timezone-aware"):
        now_ms(_Text())  # type: ignore[arg-type]  # deliberately not a Clock


async def test_a_naive_clock_fails_the_first_stamped_write_on_memory() -> None:
    """Item 9: the write is refused and nothing is stored."""
    store = InMemoryStore()
    async with open_storage("memory://", store=store, clock=_Naive()) as naive:
        with pytest.raises(InvalidValue, match="timezone-aware"):
            await naive.workflows.create_run("wf", None)
    async with open_storage("memory://", store=store) as storage:
        assert await storage.workflow_runs.list_runs() == []


def test_cutoffs_saturate_at_the_ends_of_the_calendar() -> None:
    """Item 9: a clock near year 1 minus a TTL, or an aware year-1 cutoff east of UTC."""
    assert clamp_ms(to_epoch_ms(EARLIEST) - 30_000) == EARLIEST
    assert clamp_ms(10**20) == LATEST
    assert clamp_ms(0) == from_epoch_ms(0)
    east = timezone(timedelta(hours=5))
    assert v.aware_cutoff("before", datetime(1, 1, 1, 1, tzinfo=east)) == EARLIEST
    west = timezone(timedelta(hours=-5))
    assert v.aware_cutoff("before", datetime(9999, 12, 31, 23, tzinfo=west)) == LATEST


def test_a_clock_outside_the_calendar_in_utc_is_invalid() -> None:
    class Edge:
        def now(self) -> datetime:
            return datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))

    with pytest.raises(InvalidValue, match=r"outside year 1\.\.9999"):
        now_ms(Edge())


def test_errors_carry_the_ids_they_name() -> None:
    """Issue 12: ids as attributes."""
    by_id = StepNotFound.by_id("s-1")
    assert (by_id.step_id, by_id.run_id, by_id.step_name) == ("s-1", None, None)
    by_name = StepNotFound.by_name("r-1", "charge")
    assert (by_name.step_id, by_name.run_id, by_name.step_name) == (None, "r-1", "charge")
    assert str(by_name) == "Step not found: run=r-1, step=charge"
    step = ConflictError.step("r-1", "charge")
    assert (step.run_id, step.step_name, step.thread_id) == ("r-1", "charge", None)
    message = ConflictError.message("t-1", "m-1")
    assert (message.thread_id, message.message_id) == ("t-1", "m-1")
    tool_call = ConflictError.tool_call("t-1", "tc-1")
    assert (tool_call.thread_id, tool_call.tool_call_id) == ("t-1", "tc-1")
    assert ConflictError.thread("t-1").thread_id == "t-1"
    assert ConflictError.channel("c-1").channel_id == "c-1"
    assert SchemaMismatch("pikku", 9, 3).namespace == "pikku"


def test_storage_unavailable_says_the_outcome_is_unknown_by_default() -> None:
    """Item 10."""
    assert StorageUnavailable("connection lost").outcome_unknown is True
    assert StorageUnavailable("not initialized", outcome_unknown=False).outcome_unknown is False
    assert "outcome of the call is unknown" in (StorageUnavailable.__doc__ or "")


async def test_a_service_used_before_init_is_unavailable_with_a_known_outcome(
    tmp_path: Path,
) -> None:
    """Item 10: nothing was sent, so `outcome_unknown` is `False`."""
    storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StorageUnavailable, match="not initialized") as caught:
        await storage.workflow_runs.list_runs()
    assert caught.value.outcome_unknown is False
    await storage.close()


def test_the_test_clock_start_is_one_constant() -> None:
    """Issue 12: every default start is `clock.TEST_START`."""
    assert ManualClock().now() == TEST_START == T0
