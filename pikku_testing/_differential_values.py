"""Hypothesis strategies of the differential harness: small JSON values, messages, approvals.

Pools are deliberately tiny so that generated operations collide (duplicate ids, shared
names, same-millisecond ties) as often as they succeed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from hypothesis import strategies as st

from pikku_storage import JsonValue, Message, MessageRole, ToolCall, ToolResult
from pikku_testing._differential_core import CLOCK_START

__all__ = [
    "CALL_IDS",
    "ERRORS",
    "JSON",
    "JSON_OBJECTS",
    "MESSAGE_BATCHES",
    "MESSAGE_IDS",
    "PLAIN",
    "TEXT",
]

TEXT: Final = st.text(alphabet="ab é\x00😀", max_size=4)  # JSON strings may hold U+0000
PLAIN: Final = st.text(alphabet="ab é😀", max_size=4)  # plain-text fields may not
_FLOATS: Final = st.sampled_from([0.0, -0.0, 0.1, 1.5, 1e16, -2.5e-7])
_INTS: Final = st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 2**100])
_KEYS: Final = st.sampled_from(["a", "b", "k.x", "$", ""])
_LEAVES: Final = st.none() | st.booleans() | _INTS | _FLOATS | TEXT

JSON: Final[st.SearchStrategy[JsonValue]] = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)
JSON_OBJECTS: Final[st.SearchStrategy[dict[str, JsonValue]]] = st.dictionaries(
    _KEYS, JSON, max_size=3
)
ERRORS: Final = st.none() | st.fixed_dictionaries(
    {"message": PLAIN},
    optional={
        "name": st.none() | st.just("ValueError"),
        "code": st.none() | st.sampled_from([7, "E1"]),
        "extra": JSON,
    },
)

MESSAGE_IDS: Final = ("m1", "m2", "m3", "m4")
CALL_IDS: Final = ("c1", "c2", "c3")
_CREATED: Final = st.none() | st.sampled_from(
    [CLOCK_START + timedelta(seconds=s) for s in (-1, 0, 0.0015, 1, 3600)]
)
_PARTS: Final[st.SearchStrategy[list[dict[str, JsonValue]]]] = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image"])}, optional={"text": TEXT, "n": _INTS}
    ),
    max_size=2,
)
_CONTENT: Final = st.none() | PLAIN | _PARTS
_CALLS: Final = st.lists(
    st.builds(
        ToolCall,
        id=st.sampled_from(CALL_IDS),
        name=st.sampled_from(["search", "lookup"]),
        args=JSON_OBJECTS,
    ),
    max_size=2,
)
_RESULTS: Final = st.lists(
    st.builds(
        ToolResult,
        id=st.sampled_from(CALL_IDS),
        name=st.sampled_from(["search", "other"]),
        result=PLAIN,
        undelivered=st.booleans(),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def _message(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from([*MessageRole, MessageRole.ASSISTANT, MessageRole.USER]))
    message_id = draw(st.sampled_from(MESSAGE_IDS))
    created_at = draw(_CREATED)
    if role is MessageRole.TOOL:
        return Message(
            id=message_id,
            role=role,
            tool_results=draw(_RESULTS),
            created_at=created_at,
            undelivered=draw(st.booleans()),
        )
    assistant = role is MessageRole.ASSISTANT
    return Message(
        id=message_id,
        role=role,
        content=draw(_CONTENT),
        tool_calls=draw(_CALLS) if assistant else [],
        created_at=created_at,
        reasoning_content=draw(st.none() | PLAIN) if assistant else None,
        interrupted=draw(st.booleans()) if assistant else False,
    )


MESSAGE_BATCHES: Final = st.lists(_message(), max_size=3)
