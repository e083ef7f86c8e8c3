"""TetherClient against a real `tether dev`."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from tether_client import (
    HookNotFoundError,
    HookSelfTargetError,
    IdempotencyKeyReusedError,
    InvalidPayloadError,
    NetworkError,
    RunExistsError,
    RunFinishedError,
    RunNotFoundError,
    TetherClient,
    TetherError,
    UnauthorizedError,
    WorkflowNotFoundError,
)

from _helpers import unique, wait_until
from conftest import Server


@pytest.fixture
def client(server: Server) -> Iterator[TetherClient]:
    with TetherClient(server.url, timeout=10.0) as c:
        yield c


def test_approval_round_trip(client: TetherClient) -> None:
    run_id = client.start_run("approval", {"order_id": "o-1"})
    hooks = client.hooks(run_id)
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["kind"] == "hook"
    assert hook["metadata"] == {"order_id": "o-1"}
    token = hook["token"]

    found = client.get_hook(token)
    assert found.get("run_id") == run_id

    with pytest.raises(InvalidPayloadError) as bad:
        client.resume_hook(token, {"approved": "yes"})
    assert bad.value.status == 400
    assert bad.value.code == "invalid_payload"
    assert "approved" in str(bad.value)

    assert client.resume_hook(token, {"approved": True, "comment": "ok"}) == run_id
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["workflow"] == "approval"
    assert run["input"] == {"order_id": "o-1"}
    assert run["output"] == {"approved": True, "comment": "ok"}

    # The token was released when the run ended.
    with pytest.raises(HookNotFoundError):
        client.resume_hook(token, {"approved": True, "comment": "again"})

    assert any(r["run_id"] == run_id for r in client.list_runs(status="completed", workflow="approval"))


def test_slack_bot_custom_token_many_payloads(client: TetherClient) -> None:
    run_id = client.start_run("slack_bot", {"channel": "C1"})
    for text in ["hello", "world", "again"]:
        assert client.resume_hook("slack_messages:C1", {"text": text}) == run_id
    assert client.resume_hook("slack_messages:C1", {"text": "/stop"}) == run_id
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"messages": ["hello", "world", "again"]}
    events = client.events(run_id)
    assert events and all("seq" in e and "type" in e for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_idempotency_key_reuse_stores_once(client: TetherClient) -> None:
    run_id = client.start_run("collect", {})
    token = client.hooks(run_id)[0]["token"]
    key = unique("click")
    first = client.resume_hook(token, {"n": 1}, idempotency_key=key)
    again = client.resume_hook(token, {"n": 1}, idempotency_key=key)
    assert first == again == run_id
    # The same key with another payload is refused (409), nothing stored.
    with pytest.raises(IdempotencyKeyReusedError) as e:
        client.resume_hook(token, {"n": 99}, idempotency_key=key)
    assert (e.value.status, e.value.code) == (409, "idempotency_key_reused")
    # Without a key every call is its own delivery (the client makes a fresh key each time).
    client.resume_hook(token, {"n": 2})
    client.resume_hook(token, {"n": 2})
    client.resume_hook(token, {"done": True})
    run = client.get_run(run_id, wait_ms=5000)
    assert run["output"] == {"payloads": [{"n": 1}, {"n": 2}, {"n": 2}, {"done": True}]}


def test_unknown_token_and_odd_characters(client: TetherClient) -> None:
    with pytest.raises(HookNotFoundError) as e:
        client.resume_hook("no-such-token", {})
    assert e.value.status == 404 and e.value.code == "hook_not_found"
    # Path segments are encoded: these reach the hook route, not some other one.
    for token in ["a/b", "x y?z#w", "..", "é%2F", "a:b"]:
        with pytest.raises(HookNotFoundError):
            client.resume_hook(token, {"x": 1})
        with pytest.raises(HookNotFoundError):
            client.get_hook(token)


def test_starts_are_idempotent(client: TetherClient) -> None:
    run_id = unique("order")
    first = client.start_run("approval", {"order_id": "o-9"}, run_id=run_id)
    assert first == run_id
    assert client.start_run("approval", {"order_id": "o-9"}, run_id=run_id) == run_id
    with pytest.raises(RunExistsError) as e:
        client.start_run("approval", {"order_id": "other"}, run_id=run_id)
    assert (e.value.status, e.value.code) == (409, "run_exists")
    key = unique("start-key")
    by_key = client.start_run("approval", {"order_id": "o-10"}, idempotency_key=key)
    assert client.start_run("approval", {"order_id": "o-10"}, idempotency_key=key) == by_key
    with pytest.raises(IdempotencyKeyReusedError):
        client.start_run("approval", {"order_id": "o-11"}, idempotency_key=key)
    # Without an id or a key, every call is a new run (the client's own key is per call).
    assert client.start_run("approval", {"order_id": "o-12"}) != client.start_run(
        "approval", {"order_id": "o-12"}
    )


def test_not_found_errors(client: TetherClient) -> None:
    with pytest.raises(WorkflowNotFoundError) as w:
        client.start_run("no_such_workflow", {})
    assert w.value.status == 404
    with pytest.raises(RunNotFoundError):
        client.get_run("no-such-run")
    with pytest.raises(RunNotFoundError):
        client.hooks("no/such run")
    with pytest.raises(TetherError) as bad_input:
        client.start_run("approval", {"wrong": 1})
    assert bad_input.value.status == 400


def test_signal_to_wait_signal(client: TetherClient) -> None:
    signal_id = unique("order")
    run_id = client.start_run("wait_signal", {"signal_id": signal_id})
    sid, delivered_to = client.signal(signal_id, {"paid": True})
    assert sid == signal_id
    assert delivered_to == run_id
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"paid": True}

    # Nobody waits: kept for later.
    kept = client.signal(unique("nobody"), {"x": 1})
    assert kept.delivered_to is None


def test_signal_idempotency_key_delivers_once(client: TetherClient) -> None:
    signal_id = unique("order")
    run_id = client.start_run("wait_signal", {"signal_id": signal_id})
    key = unique("pay")
    first = client.signal(signal_id, {"paid": 1}, idempotency_key=key)
    again = client.signal(signal_id, {"paid": 1}, idempotency_key=key)
    assert first == again == (signal_id, run_id)
    # The same key with another payload is refused (409), nothing stored.
    with pytest.raises(IdempotencyKeyReusedError) as e:
        client.signal(signal_id, {"paid": 2}, idempotency_key=key)
    assert (e.value.status, e.value.code) == (409, "idempotency_key_reused")
    # Nothing else was kept: a new wait on the signal finds nothing, the next send reaches it.
    second = client.start_run("wait_signal", {"signal_id": signal_id})
    assert client.signal(signal_id, {"paid": 3}).delivered_to == second
    assert client.get_run(run_id, wait_ms=5000)["output"] == {"paid": 1}
    assert client.get_run(second, wait_ms=5000)["output"] == {"paid": 3}


def test_spawn_hook_and_state(client: TetherClient) -> None:
    run_id = client.start_run("enrich", {"name": "ada", "wait": True})
    hook_id = client.spawn_hook(
        run_id, "enrich_hook", {}, retry={"maximum_attempts": 2, "initial_interval_ms": 100}
    )
    assert isinstance(hook_id, str) and hook_id

    state = wait_until(lambda: (lambda s: s if s.get("hook_runs") == 2 else None)(client.state(run_id)))
    assert state["name"] == "ada"
    assert state["greeting"] == "hello ada"

    with pytest.raises(HookSelfTargetError) as e:
        client.spawn_hook(run_id, "enrich", {})
    assert e.value.status == 400 and e.value.code == "hook_self_target"

    # Let the run finish: it waits on one payload on a generated hook.
    token = wait_until(lambda: next((h["token"] for h in client.hooks(run_id)), None))
    client.resume_hook(token, {})
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    output = run["output"]
    assert isinstance(output, dict) and output["state"]["hook_runs"] == 2

    with pytest.raises(RunFinishedError):
        client.spawn_hook(run_id, "enrich_hook", {})
    with pytest.raises(RunNotFoundError):
        client.spawn_hook("no-such-run", "enrich_hook", {})


def test_webhook_url_and_post(client: TetherClient, server: Server) -> None:
    run_id = client.start_run("webhook_echo", {"mode": "static"})
    hook = client.hooks(run_id)[0]
    assert hook["kind"] == "webhook"
    url = client.webhook_url(hook["token"])
    assert url.startswith(server.url + "/.well-known/workflow/v1/webhook/")
    answer = httpx.post(url, json={"hello": "world"}, timeout=10)
    assert answer.status_code == 202
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"method": "POST", "body": {"hello": "world"}}


def test_cancel(client: TetherClient) -> None:
    run_id = client.start_run("approval", {"order_id": "o-2"})
    client.cancel_run(run_id, reason="not needed")
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "cancelled"
    with pytest.raises(RunFinishedError) as e:
        client.cancel_run(run_id)
    assert e.value.status == 409
    assert client.list_runs(status="cancelled", limit=1)[0]["run_id"] == run_id


def test_wait_for_run_and_meta(client: TetherClient) -> None:
    run_id = client.start_run("steps", {"n": 3})
    run = client.wait_for_run(run_id, timeout=10)
    assert run["status"] == "completed" and run["output"] == {"steps": 3}
    assert "approval" in client.workflows()
    assert client.health().get("ok") is True


def test_auth(auth_server: Server) -> None:
    with TetherClient(auth_server.url, api_token="wrong") as c:
        with pytest.raises(UnauthorizedError) as e:
            c.list_runs()
        assert e.value.status == 401
        with pytest.raises(UnauthorizedError):
            c.start_run("approval", {"order_id": "o-1"})
    with TetherClient(auth_server.url) as c:
        with pytest.raises(UnauthorizedError):
            c.list_runs()
    with TetherClient(auth_server.url, api_token=auth_server.api_token) as c:
        run_id = c.start_run("webhook_echo", {"mode": "static"})
        token = c.hooks(run_id)[0]["token"]
        # Webhook URLs never need the API token: their token is the credential.
        assert httpx.put(c.webhook_url(token), content=b"{}", timeout=10).status_code == 202
        assert c.get_run(run_id, wait_ms=5000)["status"] == "completed"


def test_network_error_when_nothing_listens() -> None:
    with TetherClient("http://127.0.0.1:1", retries=1, backoff=0.01, timeout=2) as c:
        with pytest.raises(NetworkError) as e:
            c.resume_hook("t", {})
    assert e.value.status == 0 and e.value.code == "network"
    assert isinstance(e.value, TetherError)
