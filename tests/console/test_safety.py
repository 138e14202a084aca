"""The console's safety rules: escaping, token, Host check, read-only default, CSRF."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from pikku_storage._cli.console import console_command, is_loopback
from pikku_storage.cli import main
from pikku_storage.console import TOKEN_COOKIE
from tests.console._seed import HOSTILE_CHANNEL, HOSTILE_THREAD, HOSTILE_TOPIC, IMG, SCRIPT
from tests.console.conftest import Console


def _assert_inert(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "onerror=alert(1)>" not in html.replace("onerror=alert(1)&gt;", "")
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/console.js" defer>']


def test_hostile_strings_render_as_text_on_every_page(console: Console) -> None:
    pages = [
        "/runs",
        f"/runs?workflow={quote(SCRIPT)}",
        f"/runs/{console.hostile_run}",
        "/threads",
        f"/threads?resource={quote(IMG)}&agent={quote(SCRIPT)}",
        f"/threads/{quote(HOSTILE_THREAD, safe='')}",
        f"/deployments?function={quote(SCRIPT)}",
        f"/channels?topic={quote(HOSTILE_TOPIC)}",
        f"/channels?channel={quote(HOSTILE_CHANNEL)}",
        f"/channels?channel={quote(IMG)}",
        f"/runs/{quote(SCRIPT, safe='')}",
    ]
    for page in pages:
        response = console.client.get(page)
        assert response.status_code in (200, 404), page
        _assert_inert(response.text)
    html = console.client.get(f"/threads/{quote(HOSTILE_THREAD, safe='')}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_hostile_run_shows_its_escaped_workflow_name_and_payloads(console: Console) -> None:
    html = console.client.get(f"/runs/{console.hostile_run}").text
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; " in html
    assert '<text class="label" x="202" y="45" text-anchor="end">&#34;&gt;&lt;img' in html


def test_a_thread_id_with_slashes_and_markup_links_to_itself(console: Console) -> None:
    html = console.client.get("/threads").text
    assert f'href="/threads/{quote(HOSTILE_THREAD, safe="")}"' in html


def test_token_is_required_on_every_request_when_set(console: Console) -> None:
    console.configure(token="s3cret")
    console.client.cookies.clear()
    for path in ("/runs", "/threads", "/static/console.css", "/runs/x", "/nowhere"):
        response = console.client.get(path, follow_redirects=False)
        assert response.status_code == 401, path
        assert "content-security-policy" in response.headers
    assert console.client.get("/runs?token=wrong").status_code == 401
    bearer = {"Authorization": "Bearer s3cret"}
    assert console.client.get("/runs", headers=bearer).status_code == 200
    assert console.client.post(f"/runs/{console.hostile_run}/delete").status_code == 401


def test_token_in_the_query_sets_a_strict_cookie_and_drops_it_from_the_url(
    console: Console,
) -> None:
    console.configure(token="s3cret")
    console.client.cookies.clear()
    response = console.client.get("/runs?status=failed&token=s3cret", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/runs?status=failed"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=s3cret;")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert console.client.get("/threads").status_code == 200  # the cookie now opens every page


def test_unknown_host_header_is_refused_when_hosts_are_limited(console: Console) -> None:
    console.configure(allowed_hosts=["127.0.0.1", "localhost"])
    assert console.client.get("/runs").status_code == 200
    assert console.client.get("/runs", headers={"host": "evil.example"}).status_code == 400


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_actions_are_off_by_default(console: Console) -> None:
    run_id = console.hostile_run
    html = console.client.get(f"/runs/{run_id}").text
    assert "Delete this run" not in html
    assert "read-only" in html
    assert "Approve" not in console.client.get(f"/threads/{quote(HOSTILE_THREAD, safe='')}").text
    response = console.client.post(f"/runs/{run_id}/delete", data={"csrf": "x"})
    assert response.status_code == 403
    assert "--allow-actions" in response.text
    decision = {"run_id": "r", "tool_call_id": "call-2", "decision": "approved"}
    assert console.client.post("/approvals", data=decision).status_code == 403
    assert console.client.get(f"/runs/{run_id}").status_code == 200
    assert console.client.get("/runs/x/delete").status_code == 405


def test_delete_run_with_actions_needs_the_csrf_token(console: Console) -> None:
    console.configure(allow_actions=True)
    run_id = console.hostile_run
    html = console.client.get(f"/runs/{run_id}").text
    assert console.client.post(f"/runs/{run_id}/delete", data={"csrf": "forged"}).status_code == 403
    assert console.client.post(f"/runs/{run_id}/delete").status_code == 403
    evil = {"origin": "http://evil.example"}
    token = {"csrf": _csrf(html)}
    refused = console.client.post(f"/runs/{run_id}/delete", data=token, headers=evil)
    assert refused.status_code == 403
    assert console.client.get(f"/runs/{run_id}").status_code == 200
    deleted = console.client.post(f"/runs/{run_id}/delete", data=token, follow_redirects=False)
    assert deleted.status_code == 303
    assert console.client.get(f"/runs/{run_id}").status_code == 404
    again = console.client.post(f"/runs/{run_id}/delete", data=token)
    assert again.status_code == 404


def test_approve_with_actions_claims_the_approval_once(console: Console) -> None:
    console.configure(allow_actions=True)
    threads = console.call(
        lambda: console.storage.agent_runs.list_threads(resource_id="customer-4410")
    )
    thread_id = threads[0].id
    html = console.client.get(f"/threads/{thread_id}").text
    run_id = re.findall(r'name="run_id" value="([^"]+)"', html)[0]
    form = {
        "csrf": _csrf(html),
        "run_id": run_id,
        "tool_call_id": "call-cancel",
        "thread_id": thread_id,
        "decision": "approved",
    }
    assert console.client.post("/approvals", data={**form, "csrf": "no"}).status_code == 403
    assert console.client.post("/approvals", data={**form, "decision": "maybe"}).status_code == 400
    response = console.client.post("/approvals", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/threads/{thread_id}"
    html = console.client.get(f"/threads/{thread_id}").text
    assert 'id="pending"' not in html
    assert '<span class="status s-approved">approved</span> call-cancel' in html
    decisions = console.call(lambda: console.storage.ai_run_state.get_approval_decisions(run_id))
    assert [d.status.value for d in decisions] == ["approved"]
    assert console.client.post("/approvals", data=form).status_code == 409


def test_deny_with_actions_records_a_denial(console: Console) -> None:
    console.configure(allow_actions=True)
    html = console.client.get(f"/threads/{quote(HOSTILE_THREAD, safe='')}").text
    form = {
        "csrf": _csrf(html),
        "run_id": re.findall(r'name="run_id" value="([^"]+)"', html)[0],
        "tool_call_id": "call-2",
        "thread_id": HOSTILE_THREAD,
        "decision": "denied",
    }
    response = console.client.post("/approvals", data=form, follow_redirects=False)
    assert response.headers["location"] == f"/threads/{quote(HOSTILE_THREAD, safe='')}"
    html = console.client.get(response.headers["location"]).text
    assert '<span class="status s-denied">denied</span> call-2' in html


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback_accepts_only_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_console_command_refuses_a_non_loopback_host_without_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIKKU_CONSOLE_TOKEN", raising=False)
    result = CliRunner().invoke(console_command, ["memory://", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "pass --token" in result.output


def test_console_command_needs_a_url_unless_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIKKU_STORAGE_URL", raising=False)
    result = CliRunner().invoke(main, ["console"])
    assert result.exit_code == 2
    assert "missing URL" in result.output


def test_console_command_refuses_an_uninitialized_store(tmp_path: object) -> None:
    result = CliRunner().invoke(main, ["console", f"sqlite:///{tmp_path}/none.db"])
    assert result.exit_code == 3
    assert "nothing was created or changed" in result.output
