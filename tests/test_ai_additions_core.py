"""Shared spec 05 AI code without a backend: owner bounds and rule, credential-request
encoding, score records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pikku_storage import CredentialRequestApproval, CredentialType, InvalidValue
from pikku_storage._build import agent_run_score
from pikku_storage._owners import check_owners, owner_bounds, resource_in_owners
from pikku_storage._serial import decode_approval, encode_approval


def test_owner_bounds_hold_exactly_the_colon_prefixed_ids() -> None:
    low, high = owner_bounds("alice")
    assert (low, high) == ("alice:", "alice;")
    inside = ["alice:", "alice:x", "alice:\U0010ffff", "alice::"]
    outside = ["alice", "alice;", "alice-x", "alice9", "alicf", "alice;:"]
    assert all(low <= r < high for r in inside)
    assert not any(low <= r < high for r in outside)
    assert all(resource_in_owners(r, ["alice"]) for r in inside)
    assert not any(resource_in_owners(r, ["alice"]) for r in outside[1:])


def test_check_owners_keeps_the_first_of_each_owner_in_order() -> None:
    assert check_owners(("b", "a", "b", "c", "a")) == ["b", "a", "c"]
    assert check_owners([]) == []
    for bad in ("a", None, {"a"}, ["a", 1], [""], ["x" * 256], [f"o{i}" for i in range(101)]):
        with pytest.raises(InvalidValue):
            check_owners(bad)


def test_a_credential_request_round_trips_through_its_stored_kind() -> None:
    for url in ("https://x.test/c", None):
        approval = CredentialRequestApproval(
            tool_call_id="c1",
            tool_name="mail",
            args={"to": ["a"]},
            credential_name="gmail",
            credential_type=CredentialType.API_KEY,
            connect_url=url,
        )
        encoded = encode_approval(approval, "pending_approvals[0]")
        assert (encoded.tool_call_id, encoded.kind) == ("c1", "credential-request")
        assert decode_approval(encoded.kind, encoded.payload) == approval


def test_a_credential_request_names_its_bad_field() -> None:
    approval = CredentialRequestApproval(
        tool_call_id="c1",
        tool_name="mail",
        args=None,
        credential_name="gmail",
        credential_type="basic",  # type: ignore[arg-type]  # outside the enum on purpose
    )
    with pytest.raises(InvalidValue, match=r"pending_approvals\[0\]\.credential_type"):
        encode_approval(approval, "pending_approvals[0]")
    approval.credential_type = CredentialType.OAUTH2
    approval.connect_url = "u" * 2049
    with pytest.raises(InvalidValue, match=r"pending_approvals\[0\]\.connect_url"):
        encode_approval(approval, "pending_approvals[0]")


def test_agent_run_score_decodes_metadata_and_normalises_score_and_zone() -> None:
    local = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    score = agent_run_score("r", "s", 1, None, '{"a":[1]}', local)
    assert score.metadata == {"a": [1]}
    assert (type(score.score), score.score) == (float, 1.0)
    assert score.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert score.created_at.tzinfo is UTC
    assert agent_run_score("r", "s", -0.0, "why", None, local).score.hex() == "0x0.0p+0"
