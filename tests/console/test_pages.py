"""The console's pages over a demo store (memory and SQLite): content, filters, paging, errors."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from pikku_storage.console._pages import MAX_OFFSET
from pikku_storage.records import CredentialRequestApproval, CredentialType, WorkflowRun
from tests.console.conftest import Console


def _run_ids(html: str) -> list[str]:
    return re.findall(r'<td class="id"><a href="/runs/([0-9a-f-]{36})">', html)


def _runs(
    console: Console, *, workflow_name: str | None = None, status: str | None = None
) -> list[WorkflowRun]:
    return console.call(
        lambda: console.storage.workflow_runs.list_runs(
            workflow_name=workflow_name, status=status, limit=1000
        )
    )


def test_root_redirects_to_runs(console: Console) -> None:
    response = console.client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/runs"


def test_runs_page_lists_the_newest_page_of_runs_in_api_order(console: Console) -> None:
    response = console.client.get("/runs")
    assert response.status_code == 200
    assert _run_ids(response.text) == [run.id for run in _runs(console)[:50]]


def test_runs_page_filters_by_workflow_and_status(console: Console) -> None:
    html = console.client.get("/runs?workflow=invoice-sync&status=failed").text
    expected = _runs(console, workflow_name="invoice-sync", status="failed")
    assert expected
    assert _run_ids(html) == [run.id for run in expected]


def _counts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="status s-(\w+)">\w+</span> <b>([^<]+)</b>', html))


def test_runs_page_shows_exact_counts_by_status(console: Console) -> None:
    counts = _counts(console.client.get("/runs").text)
    for status in ("running", "suspended", "completed", "failed", "cancelled"):
        assert counts[status] == str(len(_runs(console, status=status)))
    assert counts["completed"] != "0"


def test_runs_page_counts_the_filtered_workflow(console: Console) -> None:
    counts = _counts(console.client.get("/runs?workflow=invoice-sync").text)
    for status in ("running", "suspended", "completed", "failed", "cancelled"):
        stored = _runs(console, workflow_name="invoice-sync", status=status)
        assert counts[status] == str(len(stored))


def _cancel_one(console: Console) -> None:
    run_id = console.call(lambda: console.storage.workflows.create_run("invoice-sync", None))
    console.call(lambda: console.storage.workflows.update_run_status(run_id, "cancelled"))


def test_runs_page_keeps_its_counts_for_the_refresh_interval(console: Console) -> None:
    first = console.client.get("/runs").text
    _cancel_one(console)
    again = console.client.get("/runs").text
    assert _counts(again) == _counts(first)
    stamp = re.compile(r"exact, as of ([0-9: .-]+) UTC")
    assert stamp.findall(again) == stamp.findall(first)
    fresh = _counts(console.client.get("/runs?workflow=invoice-sync").text)  # another filter
    assert fresh["cancelled"] == str(
        len(_runs(console, workflow_name="invoice-sync", status="cancelled"))
    )


def test_runs_page_counts_every_view_without_auto_refresh(console: Console) -> None:
    console.configure(refresh_seconds=0)
    before = int(_counts(console.client.get("/runs").text)["cancelled"])
    _cancel_one(console)
    assert _counts(console.client.get("/runs").text)["cancelled"] == str(before + 1)


def test_runs_page_pages_through_with_offset_and_limit(console: Console) -> None:
    everything = [run.id for run in _runs(console)]
    first = console.client.get("/runs?limit=20").text
    assert _run_ids(first) == everything[:20]
    assert 'href="?limit=20&amp;offset=20"' in first
    second = console.client.get("/runs?limit=20&offset=20").text
    assert _run_ids(second) == everything[20:40]
    last = console.client.get(f"/runs?limit=20&offset={len(everything) - 5}").text
    assert _run_ids(last) == everything[-5:]
    assert '<span class="off">older →</span>' in last


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "status=FAILED",
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=-1",
        "offset=-1",
        f"offset={MAX_OFFSET + 1}",
        "workflow=" + "w" * 256,
    ],
)
def test_runs_page_answers_400_for_a_bad_query(console: Console, query: str) -> None:
    response = console.client.get(f"/runs?{query}")
    assert response.status_code == 400
    assert "<h1>400</h1>" in response.text


def test_run_page_shows_payloads_state_steps_attempts_timeline_and_graph(console: Console) -> None:
    run = _runs(console, workflow_name="order-fulfilment", status="completed")[0]
    html = console.client.get(f"/runs/{run.id}").text
    assert '<span class="status s-completed">completed</span>' in html
    assert "&#34;orderId&#34;" in html  # formatted JSON input
    assert "&#34;shipped&#34;: true" in html  # output
    assert "&#34;reservation&#34;" in html
    assert "&#34;paymentId&#34;" in html
    assert "TimeoutError: payment gateway timed out after 10s" in html  # the failed attempt
    bars = re.findall(r'<rect class="bar b-(\w+)"', html)
    assert bars == ["succeeded", "failed", "succeeded", "succeeded", "succeeded"]
    assert "charge-card #1" in html
    assert "charge-card #2" in html
    assert '<svg id="graph"' in html
    assert html.count('<g class="node">') == 4
    assert html.count('class="edge"') == 3


def test_run_page_of_a_failed_run_shows_the_error(console: Console) -> None:
    run = _runs(console, workflow_name="nightly-report")[0]
    html = console.client.get(f"/runs/{run.id}").text
    assert '<section class="error">' in html
    assert "<b>ConnectionError</b>: warehouse database unreachable" in html


@pytest.mark.parametrize("run_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
def test_run_page_answers_404_for_an_unknown_run(console: Console, run_id: str) -> None:
    response = console.client.get(f"/runs/{run_id}")
    assert response.status_code == 404
    assert "<h1>404</h1>" in response.text


def test_threads_page_filters_by_agent_and_by_resource(console: Console) -> None:
    html = console.client.get("/threads?agent=support-agent").text
    titles = re.findall(r"<td>(Refund for [^<]+|Cancel my subscription)</td>", html)
    assert sorted(titles)[0] == "Cancel my subscription"
    assert len(titles) == 2
    html = console.client.get("/threads?resource=customer-4410").text
    assert "Cancel my subscription" in html
    assert "Refund for" not in html
    assert "No threads match." in console.client.get("/threads?agent=nobody").text


def test_thread_page_shows_transcript_tool_calls_results_and_runs(console: Console) -> None:
    threads = console.call(
        lambda: console.storage.agent_runs.list_threads(agent_name="support-agent")
    )
    refund = next(t for t in threads if (t.title or "").startswith("Refund"))
    html = console.client.get(f"/threads/{quote(refund.id, safe='')}").text
    for role in ("system", "user", "assistant", "tool"):
        assert f'<li class="msg role-{role}">' in html
    assert '<span class="tag">tool call</span> <b>issueRefund</b>' in html
    assert '<span class="tag">tool result</span> <b>lookupOrder</b>' in html
    assert "&#34;status&#34;: &#34;delivered&#34;" in html  # a JSON result, formatted
    assert '<span class="status s-completed">completed</span>' in html  # its agent run
    assert '<span class="status s-approved">approved</span> call-refund' in html  # decision log
    assert 'id="pending"' not in html


def test_thread_page_highlights_a_pending_approval(console: Console) -> None:
    threads = console.call(
        lambda: console.storage.agent_runs.list_threads(resource_id="customer-4410")
    )
    html = console.client.get(f"/threads/{threads[0].id}").text
    assert 'id="pending"' in html
    assert "Waiting for approval (1)" in html
    assert '<div class="toolcall is-pending">' in html
    assert "awaiting approval" in html


def test_thread_page_answers_404_for_an_unknown_thread(console: Console) -> None:
    response = console.client.get("/threads/no-such-thread")
    assert response.status_code == 404


def test_deployments_page_shows_live_and_stale_with_heartbeat_age(console: Console) -> None:
    html = console.client.get("/deployments").text
    assert "1 live, 1 stale" in html
    live = re.search(r'<tr class="live">\s*<td class="id">api-1</td>', html)
    stale = re.search(r'<tr class="stale">\s*<td class="id">worker-1</td>', html)
    assert live
    assert stale
    ages = [float(a) for a in re.findall(r"<td>([0-9.]+) s</td>", html)]
    assert ages[0] < 30 <= 90 <= ages[1]


def test_deployments_page_finds_the_deployments_serving_a_function(console: Console) -> None:
    html = console.client.get("/deployments?function=createOrder").text
    assert re.search(r'<table class="list" id="serving">.*api-1', html, re.S)
    assert "No live deployment serves nothing" in console.client.get(
        "/deployments?function=nothing"
    ).text.replace("nothing.", "nothing")


def test_channels_page_looks_up_a_topic_and_a_channel(console: Console) -> None:
    html = console.client.get("/channels?topic=orders.shipped").text
    assert "2 subscribed to orders.shipped" in html
    channel = re.findall(r'<li><a href="\?channel=([^&]+)&amp;', html)[0]
    html = console.client.get(f"/channels?channel={channel}").text
    assert "&#34;role&#34;: &#34;admin&#34;" in html
    assert "No channel ghost." in console.client.get("/channels?channel=ghost").text


def test_every_page_carries_the_security_headers(console: Console) -> None:
    for path in (
        "/runs",
        "/threads",
        "/deployments",
        "/channels",
        "/runs/x",
        "/static/console.css",
    ):
        headers = console.client.get(path).headers
        assert headers["content-security-policy"].startswith(
            "default-src 'none'; script-src 'self';"
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_list_pages_refresh_themselves_with_the_packaged_script(console: Console) -> None:
    html = console.client.get("/runs").text
    assert '<body data-refresh="10">' in html
    assert '<script src="/static/console.js" defer></script>' in html
    assert "location.reload" in console.client.get("/static/console.js").text
    assert '<body data-refresh="0">' in console.client.get("/channels").text


def test_console_mounted_under_a_prefix_links_within_it(console: Console) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from pikku_storage.console import create_app

    console.switch.app = Starlette(routes=[Mount("/ops", app=create_app(console.storage))])
    html = console.client.get("/ops/runs").text
    assert '<link rel="stylesheet" href="/ops/static/console.css">' in html
    assert re.search(r'href="/ops/runs/[0-9a-f-]{36}"', html)
    assert console.client.get("/ops/static/console.css").status_code == 200


def test_thread_page_shows_a_credential_request_and_scores(console: Console) -> None:
    """Spec 05 §2.4: a credential request is a pending approval the page can show."""
    storage = console.storage
    request_ = CredentialRequestApproval(
        tool_call_id="call-cred",
        tool_name="sendMail",
        args={"to": "a@example.test"},
        credential_name="gmail",
        credential_type=CredentialType.OAUTH2,
        connect_url="javascript:alert(1)",
    )

    async def seed() -> tuple[str, str]:
        thread = await storage.ai_storage.create_thread("customer-cred")
        run_id = await storage.ai_run_state.create_run(
            agent_name="mail-agent",
            thread_id=thread.id,
            resource_id="customer-cred",
            status="suspended",
            suspend_reason="credential",
            pending_approvals=[request_],
        )
        return thread.id, run_id

    thread_id, run_id = console.call(seed)
    console.call(lambda: storage.ai_run_state.save_score(run_id, "tone", 0.5, reason="ok"))
    html = console.client.get(f"/threads/{thread_id}").text
    assert "Waiting for approval (1)" in html
    assert "credential-request" in html
    assert "needs credential <b>gmail</b>" in html
    assert 'href="javascript' not in html
    assert "javascript:alert(1)" in html  # shown as text only
    assert "tone <b>0.50</b>" in html
