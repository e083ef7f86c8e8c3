"""AsyncTetherClient against a real `tether dev` (the same scenarios as test_sync.py)."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from tether_client import (
    AsyncTetherClient,
    HookNotFoundError,
    HookSelfTargetError,
    InvalidPayloadError,
    NetworkError,
    RunFinishedError,
    RunNotFoundError,
    UnauthorizedError,
    WorkflowNotFoundError,
)

from _helpers import await_until, unique
from conftest import Server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(server: Server) -> AsyncIterator[AsyncTetherClient]:
    async with AsyncTetherClient(server.url, timeout=10.0) as c:
        yield c


async def test_approval_round_trip(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("approval", {"order_id": "o-1"})
    hooks = await client.hooks(run_id)
    assert [h["metadata"] for h in hooks] == [{"order_id": "o-1"}]
    token = hooks[0]["token"]

    with pytest.raises(InvalidPayloadError) as bad:
        await client.resume_hook(token, {"approved": "yes"})
    assert bad.value.status == 400 and bad.value.code == "invalid_payload"

    assert await client.resume_hook(token, {"approved": True, "comment": "ok"}) == run_id
    run = await client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"approved": True, "comment": "ok"}

    with pytest.raises(HookNotFoundError):
        await client.resume_hook(token, {"approved": True, "comment": "again"})


async def test_slack_bot_custom_token_many_payloads(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("slack_bot", {"channel": "C1"})
    for text in ["one", "two", "three", "/stop"]:
        assert await client.resume_hook("slack_messages:C1", {"text": text}) == run_id
    run = await client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"messages": ["one", "two", "three"]}
    assert await client.events(run_id)


async def test_idempotency_key_reuse(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("collect", {})
    token = (await client.hooks(run_id))[0]["token"]
    key = unique("k")
    assert await client.resume_hook(token, {"n": 1}, key) == run_id
    assert await client.resume_hook(token, {"n": 1}, key) == run_id
    await client.resume_hook(token, {"done": True})
    run = await client.get_run(run_id, wait_ms=5000)
    assert run["output"] == {"payloads": [{"n": 1}, {"done": True}]}


async def test_unknown_token_and_not_found(client: AsyncTetherClient) -> None:
    with pytest.raises(HookNotFoundError) as e:
        await client.resume_hook("no-such-token", {})
    assert e.value.status == 404
    with pytest.raises(HookNotFoundError):
        await client.resume_hook("..", {})
    with pytest.raises(WorkflowNotFoundError):
        await client.start_run("no_such_workflow", {})
    with pytest.raises(RunNotFoundError):
        await client.get_run("no-such-run")


async def test_signal_to_wait_signal(client: AsyncTetherClient) -> None:
    signal_id = unique("order")
    run_id = await client.start_run("wait_signal", {"signal_id": signal_id})
    sid, delivered_to = await client.signal(signal_id, {"paid": True})
    assert (sid, delivered_to) == (signal_id, run_id)
    run = await client.get_run(run_id, wait_ms=5000)
    assert run["output"] == {"paid": True}


async def test_spawn_hook_and_self_target(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("enrich", {"name": "ada", "wait": True})
    hook_id = await client.spawn_hook(run_id, "enrich_hook", {}, task_queue=None)
    assert hook_id

    async def two_runs() -> object:
        state = await client.state(run_id)
        return state if state.get("hook_runs") == 2 else None

    state = await await_until(two_runs)
    assert state == {"greeting": "hello ada", "hook_runs": 2, "name": "ada"}

    with pytest.raises(HookSelfTargetError):
        await client.spawn_hook(run_id, "enrich", {})

    async def a_token() -> object:
        return next((h["token"] for h in await client.hooks(run_id)), None)

    token = await await_until(a_token)
    await client.resume_hook(str(token), {})
    assert (await client.get_run(run_id, wait_ms=5000))["status"] == "completed"


async def test_webhook_url_and_post(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("webhook_echo", {"mode": "static"})
    token = (await client.hooks(run_id))[0]["token"]
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(client.webhook_url(token), json={"a": 1})
    assert answer.status_code == 202
    run = await client.get_run(run_id, wait_ms=5000)
    assert run["output"] == {"method": "POST", "body": {"a": 1}}


async def test_cancel(client: AsyncTetherClient) -> None:
    run_id = await client.start_run("approval", {"order_id": "o-3"})
    await client.cancel_run(run_id, "not needed")
    assert (await client.wait_for_run(run_id, timeout=10))["status"] == "cancelled"
    with pytest.raises(RunFinishedError):
        await client.cancel_run(run_id)
    runs = await client.list_runs(workflow="approval", limit=50)
    assert run_id in [r["run_id"] for r in runs]


async def test_auth(auth_server: Server) -> None:
    async with AsyncTetherClient(auth_server.url, api_token="wrong") as c:
        with pytest.raises(UnauthorizedError) as e:
            await c.list_runs()
        assert e.value.status == 401 and e.value.code == "unauthorized"
    async with AsyncTetherClient(auth_server.url, api_token=auth_server.api_token) as c:
        assert isinstance(await c.list_runs(), list)


async def test_network_error() -> None:
    async with AsyncTetherClient("http://127.0.0.1:1", retries=1, backoff=0.01, timeout=2) as c:
        with pytest.raises(NetworkError):
            await c.get_run("x")
