"""Schedules, child runs, run queues and resume links, against a real `tether dev` (sync and
async clients)."""

from __future__ import annotations

import time
from typing import AsyncIterator, Iterator

import pytest

from tether_client import (
    AsyncTetherClient,
    HookNotFoundError,
    InvalidLinkError,
    InvalidPayloadError,
    InvalidScheduleError,
    LinkInvalidError,
    LinkUsedError,
    RunNotFoundError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    TetherClient,
)

from _helpers import await_until, unique, wait_until
from conftest import Server


@pytest.fixture
def client(server: Server) -> Iterator[TetherClient]:
    with TetherClient(server.url, timeout=10.0) as c:
        yield c


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[AsyncTetherClient]:
    async with AsyncTetherClient(server.url, timeout=10.0) as c:
        yield c


def test_start_run_on_a_queue(client: TetherClient) -> None:
    run_id = client.start_run("approval", {"order_id": "o-queue"}, queue="default")
    run = client.get_run(run_id)
    assert run["queue"] == "default"
    assert run["parent_run_id"] is None and run["schedule_id"] is None
    client.cancel_run(run_id)


def test_fan_out_children(client: TetherClient) -> None:
    run_id = client.start_run("fan_out", {"n": 2})
    assert client.wait_for_run(run_id, timeout=10)["status"] == "completed"
    children = client.children(run_id)
    assert len(children) == 2
    assert all(c["parent_run_id"] == run_id and c["run_id"] != run_id for c in children)
    assert client.children(children[0]["run_id"]) == []
    with pytest.raises(RunNotFoundError):
        client.children("no-such-run")


def test_schedule_lifecycle(client: TetherClient) -> None:
    sid = unique("every-second")
    made = client.create_schedule(sid, "approval", "* * * * * *", input={"order_id": "o-sched"})
    assert (made["id"], made["workflow"], made["cron"], made["timezone"]) == (sid, "approval", "* * * * * *", "UTC")
    assert (made["overlap"], made["catch_up"], made["paused"]) == ("skip", "one", False)
    assert made["input"] == {"order_id": "o-sched"}
    # The same create again returns the schedule; other settings are refused.
    assert client.create_schedule(sid, "approval", "* * * * * *", input={"order_id": "o-sched"})["id"] == sid
    with pytest.raises(ScheduleExistsError) as exists:
        client.create_schedule(sid, "approval", "*/2 * * * * *", input={"order_id": "o-sched"})
    assert exists.value.status == 409
    assert any(s["id"] == sid for s in client.list_schedules())

    # A tick starts a run sched:{id}:{tick_ms}, tagged with the schedule.
    def scheduled() -> "dict | None":
        runs = client.list_runs(workflow="approval", limit=1000)
        return next((r for r in runs if r["run_id"].startswith(f"sched:{sid}:")), None)

    run = wait_until(scheduled, timeout=8.0)
    assert run["schedule_id"] == sid
    assert client.get_schedule(sid)["last_run_id"] is not None

    assert client.pause_schedule(sid)["paused"] is True
    assert client.get_schedule(sid)["paused"] is True
    assert client.resume_schedule(sid)["paused"] is False

    assert client.delete_schedule(sid) is None
    with pytest.raises(ScheduleNotFoundError) as gone:
        client.get_schedule(sid)
    assert (gone.value.status, gone.value.code) == (404, "schedule_not_found")
    with pytest.raises(ScheduleNotFoundError):
        client.delete_schedule(sid)
    assert all(s["id"] != sid for s in client.list_schedules())
    # The run it started stays.
    assert client.get_run(run["run_id"])["run_id"] == run["run_id"]
    client.cancel_run(run["run_id"])

    with pytest.raises(InvalidScheduleError) as bad:
        client.create_schedule(unique("bad"), "approval", "not cron")
    assert bad.value.status == 400


def test_resume_link_used_once(client: TetherClient) -> None:
    run_id = client.start_run("approval", {"order_id": "o-link"})
    token = client.hooks(run_id)[0]["token"]
    link = client.create_resume_link(
        token, {"approved": True, "comment": "via link"}, expires_in_ms=60_000, label="Approve order o-link?"
    )
    assert "/l/" in link["url"]
    assert link["expires_at_ms"] > time.time() * 1000
    assert client.use_resume_link(link["url"]) == {"run_id": run_id}
    run = client.get_run(run_id, wait_ms=5000)
    assert run["status"] == "completed"
    assert run["output"] == {"approved": True, "comment": "via link"}
    with pytest.raises(LinkUsedError) as used:
        client.use_resume_link(link["url"])
    assert (used.value.status, used.value.code) == (410, "link_used")
    with pytest.raises(LinkInvalidError):
        client.use_resume_link(link["url"] + "x")

    other = client.start_run("approval", {"order_id": "o-link-2"})
    token2 = client.hooks(other)[0]["token"]
    with pytest.raises(InvalidLinkError) as bad:
        client.create_resume_link(token2, {"approved": True, "comment": "x"}, expires_in_ms=0)
    assert bad.value.status == 400
    with pytest.raises(InvalidPayloadError):
        client.create_resume_link(token2, {"approved": "yes"})
    with pytest.raises(HookNotFoundError):
        client.create_resume_link("no-such-token", {"approved": True})
    client.cancel_run(other)


def test_resume_link_needs_no_api_token(auth_server: Server) -> None:
    assert auth_server.api_token is not None
    with TetherClient(auth_server.url, api_token=auth_server.api_token, timeout=10.0) as c:
        run_id = c.start_run("approval", {"order_id": "o-auth-link"})
        token = c.hooks(run_id)[0]["token"]
        link = c.create_resume_link(token, {"approved": True, "comment": "ok"})
        assert c.use_resume_link(link["url"]) == {"run_id": run_id}
        assert c.get_run(run_id, wait_ms=5000)["status"] == "completed"


@pytest.mark.anyio
async def test_async_schedule_children_and_link(aclient: AsyncTetherClient) -> None:
    sid = unique("async-every-second")
    made = await aclient.create_schedule(sid, "approval", "* * * * * *", input={"order_id": "o-async"})
    assert made["id"] == sid

    async def scheduled() -> "dict | None":
        runs = await aclient.list_runs(workflow="approval", limit=1000)
        return next((r for r in runs if r["run_id"].startswith(f"sched:{sid}:")), None)

    run = await await_until(scheduled, timeout=8.0)
    assert run["schedule_id"] == sid
    assert (await aclient.pause_schedule(sid))["paused"] is True
    assert (await aclient.resume_schedule(sid))["paused"] is False
    assert any(s["id"] == sid for s in await aclient.list_schedules())
    await aclient.delete_schedule(sid)
    with pytest.raises(ScheduleNotFoundError):
        await aclient.get_schedule(sid)

    # The scheduled approval run waits on its hook: answer it through a link.
    token = (await aclient.hooks(run["run_id"]))[0]["token"]
    link = await aclient.create_resume_link(token, {"approved": False, "comment": "no"})
    assert await aclient.use_resume_link(link["url"]) == {"run_id": run["run_id"]}
    with pytest.raises(LinkUsedError):
        await aclient.use_resume_link(link["url"])

    parent = await aclient.start_run("fan_out", {"n": 2}, queue="default")
    assert (await aclient.wait_for_run(parent, timeout=10))["queue"] == "default"
    children = await aclient.children(parent)
    assert [c["parent_run_id"] for c in children] == [parent, parent]
