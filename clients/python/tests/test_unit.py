"""Request building, error mapping and retries, against httpx.MockTransport (no server)."""

from __future__ import annotations

import json
import pickle
from typing import Callable, List

import httpx
import pytest

import tether_client
from tether_client import (
    AsyncTetherClient,
    DecodeError,
    HookConflictError,
    HookNotFoundError,
    HookExpiredError,
    HookSelfTargetError,
    TokenReservedError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    InvalidLinkError,
    InvalidPayloadError,
    InvalidScheduleError,
    LinkExpiredError,
    LinkInvalidError,
    LinkUsedError,
    NetworkError,
    PayloadTooLargeError,
    RunFinishedError,
    RunNotFoundError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    StorageError,
    TetherClient,
    TetherError,
    UnauthorizedError,
    WorkflowNotFoundError,
    encode_segment,
)
from tether_client._core import error_from_answer

Handler = Callable[[httpx.Request], httpx.Response]


def recorder(handler: Handler) -> "tuple[List[httpx.Request], httpx.MockTransport]":
    seen: List[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return seen, httpx.MockTransport(record)


def fails_once_then(answer: Callable[[], httpx.Response], exc: type = httpx.ConnectError) -> Handler:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise exc("boom", request=request)
        return answer()

    return handler


def err(status: int, code: str, message: str = "m") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def RUN_ID() -> httpx.Response:
    # A fresh answer each time (a response's stream is read once, by a sync or an async client).
    return httpx.Response(202, json={"run_id": "r-1"})


# --- encoding and URLs -----------------------------------------------------------------------


def test_encode_segment_matches_the_rust_client() -> None:
    assert encode_segment("Az09_.~-") == "Az09_.~-"
    assert encode_segment("a b/c?d#e%f") == "a%20b%2Fc%3Fd%23e%25f"
    assert encode_segment("ü") == "%C3%BC"
    assert encode_segment("slack_messages:C1") == "slack_messages%3AC1"
    assert encode_segment("") == ""
    assert encode_segment("..") == "%2E%2E"


def test_webhook_url_and_base_url() -> None:
    c = TetherClient("http://h:1//")
    assert c.base_url == "http://h:1"
    assert c.webhook_url("a/b c") == "http://h:1/.well-known/workflow/v1/webhook/a%2Fb%20c"
    with pytest.raises(ValueError):
        TetherClient("h:1")


def test_repr_hides_the_api_token() -> None:
    assert "s3cret" not in repr(TetherClient("http://h:1", api_token="s3cret"))
    assert "s3cret" not in repr(AsyncTetherClient("http://h:1", api_token="s3cret"))


def test_requests_are_built_as_the_api_expects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        if path.startswith("/v1/signals/"):
            return httpx.Response(202, json={"signal_id": "s/1", "delivered_to": None})
        if path.endswith("/hooks") and request.method == "POST":
            return httpx.Response(202, json={"hook_id": "h-1"})
        if path.startswith("/v1/runs?") or path == "/v1/runs" and request.method == "GET":
            return httpx.Response(200, json={"runs": []})
        return RUN_ID()

    seen, transport = recorder(handler)
    with TetherClient("http://h:1/", api_token="tok", transport=transport) as c:
        assert c.resume_hook("slack_messages:C1", {"text": "hi"}, idempotency_key="k1") == "r-1"
        assert c.start_run("approval", {"order_id": "o-1"}) == "r-1"
        assert c.signal("s/1", [1, 2]) == ("s/1", None)
        assert c.spawn_hook("r 1", "enrich_hook", {"a": 1}, task_queue="q", retry={"maximum_attempts": 1}) == "h-1"
        assert c.list_runs(status="suspended", workflow="approval", limit=5) == []
        c.cancel_run("r-1", reason="why")
        c.get_run("r-1", wait_ms=1500)

    resume, start, signal, spawn, listing, cancel, get = seen
    assert resume.method == "POST" and resume.url.raw_path == b"/v1/hooks/slack_messages%3AC1"
    assert resume.headers["Idempotency-Key"] == "k1"
    assert resume.headers["Authorization"] == "Bearer tok"
    assert resume.headers["Content-Type"] == "application/json"
    assert json.loads(resume.content) == {"text": "hi"}
    assert json.loads(start.content) == {"workflow": "approval", "input": {"order_id": "o-1"}}
    assert start.headers["Idempotency-Key"], "a start always carries a key (retries are safe)"
    assert signal.url.raw_path == b"/v1/signals/s%2F1" and json.loads(signal.content) == [1, 2]
    assert signal.headers["Idempotency-Key"], "a signal always carries a key (retries are safe)"
    assert spawn.url.raw_path == b"/v1/runs/r%201/hooks"
    assert json.loads(spawn.content) == {
        "workflow_name": "enrich_hook",
        "args": {"a": 1},
        "task_queue": "q",
        "retry": {"maximum_attempts": 1},
    }
    assert dict(listing.url.params) == {"status": "suspended", "workflow": "approval", "limit": "5"}
    assert cancel.url.raw_path == b"/v1/runs/r-1/cancel" and json.loads(cancel.content) == {"reason": "why"}
    assert get.url.params["wait_ms"] == "1500"
    # The long-poll gets its wait on top of the client's timeout.
    assert get.extensions["timeout"]["read"] == pytest.approx(30.0 + 1.5)


def test_signal_sends_the_given_key() -> None:
    seen, transport = recorder(lambda r: httpx.Response(202, json={"signal_id": "s", "delivered_to": "r-1"}))
    with TetherClient("http://h:1", transport=transport) as c:
        assert c.signal("s", {}, idempotency_key="k1") == ("s", "r-1")
        c.signal("s", {})
        c.signal("s", {})
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert keys[0] == "k1" and len(set(keys)) == 3


def test_resume_without_a_key_generates_a_fresh_one_per_call() -> None:
    seen, transport = recorder(lambda r: RUN_ID())
    with TetherClient("http://h:1", transport=transport) as c:
        c.resume_hook("t", {})
        c.resume_hook("t", {})
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert len(set(keys)) == 2 and all(len(k) == 36 for k in keys)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,code,cls",
    [
        (404, "hook_not_found", HookNotFoundError),
        (409, "hook_conflict", HookConflictError),
        (400, "invalid_payload", InvalidPayloadError),
        (404, "run_not_found", RunNotFoundError),
        (404, "workflow_not_found", WorkflowNotFoundError),
        (409, "run_finished", RunFinishedError),
        (409, "idempotency_key_reused", IdempotencyKeyReusedError),
        (401, "unauthorized", UnauthorizedError),
        (413, "payload_too_large", PayloadTooLargeError),
        (400, "invalid_input", InvalidInputError),
        (400, "hook_self_target", HookSelfTargetError),
        (410, "hook_expired", HookExpiredError),
        (410, "token_reserved", TokenReservedError),
        (404, "schedule_not_found", ScheduleNotFoundError),
        (409, "schedule_exists", ScheduleExistsError),
        (400, "invalid_schedule", InvalidScheduleError),
        (400, "invalid_link", InvalidLinkError),
        (403, "link_invalid", LinkInvalidError),
        (410, "link_expired", LinkExpiredError),
        (410, "link_used", LinkUsedError),
        (503, "storage_unavailable", StorageError),
        (507, "storage_full", StorageError),
        (503, "storage_read_only", StorageError),
        (418, "brand_new_code", TetherError),
    ],
)
def test_error_codes_map_to_classes(status: int, code: str, cls: type) -> None:
    e = error_from_answer(status, json.dumps({"error": {"code": code, "message": "the message"}}).encode())
    assert type(e) is cls
    assert (e.status, e.code, e.message, str(e)) == (status, code, "the message", "the message")
    assert isinstance(e, TetherError)


def test_non_json_error_answers() -> None:
    e = error_from_answer(502, b"upstream down")
    assert type(e) is TetherError and e.code == "http_502" and "upstream down" in e.message
    assert type(error_from_answer(401, b"")) is UnauthorizedError
    assert type(error_from_answer(413, b"<html>too big</html>")) is PayloadTooLargeError


def test_errors_pickle() -> None:
    e = pickle.loads(pickle.dumps(HookNotFoundError(404, "hook_not_found", "gone")))
    assert type(e) is HookNotFoundError and (e.status, e.code, e.message) == (404, "hook_not_found", "gone")
    n = pickle.loads(pickle.dumps(NetworkError(0, "network", "down")))
    assert type(n) is NetworkError and n.message == "down"


def test_unexpected_success_answer_is_a_decode_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>"))
    with TetherClient("http://h:1", transport=transport) as c:
        with pytest.raises(DecodeError):
            c.get_run("r")
    transport = httpx.MockTransport(lambda r: httpx.Response(202, json={"nope": 1}))
    with TetherClient("http://h:1", transport=transport) as c:
        with pytest.raises(DecodeError):
            c.start_run("w", {})


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["my-key", None])
def test_sync_resume_retries_a_connect_error_with_the_same_key(key: "str | None") -> None:
    seen, transport = recorder(fails_once_then(RUN_ID))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.resume_hook("tok", {"approved": True}, idempotency_key=key) == "r-1"
    assert len(seen) == 2
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(keys) == 1
    if key is not None:
        assert keys == {key}
    assert seen[0].content == seen[1].content


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["my-key", None])
async def test_async_resume_retries_a_connect_error_with_the_same_key(key: "str | None") -> None:
    seen, transport = recorder(fails_once_then(RUN_ID))
    async with AsyncTetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert await c.resume_hook("tok", {"approved": True}, idempotency_key=key) == "r-1"
    assert len(seen) == 2
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1


def test_resume_retries_a_lost_answer_and_a_503_with_the_same_key() -> None:
    answers = iter([None, err(503, "storage_unavailable"), RUN_ID()])

    def handler(request: httpx.Request) -> httpx.Response:
        a = next(answers)
        if a is None:
            raise httpx.ReadError("connection reset", request=request)
        return a

    seen, transport = recorder(handler)
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.resume_hook("tok", {}) == "r-1"
    assert len(seen) == 3 and len({r.headers["Idempotency-Key"] for r in seen}) == 1


def test_retries_are_bounded() -> None:
    seen, transport = recorder(lambda r: err(503, "storage_unavailable"))
    with TetherClient("http://h:1", transport=transport, retries=2, backoff=0) as c:
        with pytest.raises(StorageError):
            c.resume_hook("tok", {})
    assert len(seen) == 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    seen, transport = recorder(down)
    with TetherClient("http://h:1", transport=transport, retries=0) as c:
        with pytest.raises(NetworkError) as e:
            c.resume_hook("tok", {})
    assert len(seen) == 1 and "refused" in e.value.message


def test_requests_without_a_key_are_not_repeated_once_sent() -> None:
    # A lost answer to cancel_run: it may have acted; it carries no key, so it is not sent again.
    seen, transport = recorder(fails_once_then(RUN_ID, httpx.ReadError))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        with pytest.raises(NetworkError):
            c.cancel_run("r-1", reason=None)
    assert len(seen) == 1
    # A lost answer to start_run is retried with the same key: the server answers with the
    # run the first attempt made, never a second one.
    seen, transport = recorder(fails_once_then(RUN_ID, httpx.ReadError))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.start_run("w", {}) == "r-1"
    assert len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    seen, transport = recorder(lambda r: err(503, "storage_unavailable"))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        with pytest.raises(StorageError):
            c.spawn_hook("r-1", "w", {})
    assert len(seen) == 1
    # So is a lost answer to a signal: the server answers a repeated key with the first answer.
    def kept() -> httpx.Response:
        return httpx.Response(202, json={"signal_id": "s", "delivered_to": None})

    seen, transport = recorder(fails_once_then(kept, httpx.ReadError))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.signal("s", {}) == ("s", None)
    assert len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    # But a connection that was never made sent nothing: retried.
    seen, transport = recorder(fails_once_then(RUN_ID, httpx.ConnectError))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.start_run("w", {}) == "r-1"
    assert len(seen) == 2
    # GETs are safe to repeat.
    def run() -> httpx.Response:
        return httpx.Response(200, json={"run_id": "r-1", "status": "running"})

    seen, transport = recorder(fails_once_then(run, httpx.ReadTimeout))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.get_run("r-1")["status"] == "running"
    assert len(seen) == 2


SCHEDULE = {
    "id": "s/1", "workflow": "w", "cron": "* * * * *", "timezone": "UTC", "input": {}, "overlap": "skip",
    "catch_up": "one", "paused": False, "next_tick": None, "next_tick_ms": None, "last_run_id": None,
    "created_at": "t", "updated_at": "t",
}


def test_newer_endpoints_are_built_as_the_api_expects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        if path.endswith("/children"):
            return httpx.Response(200, json={"children": [{"run_id": "r.c1", "parent_run_id": "r"}]})
        if path == "/v1/schedules" and request.method == "GET":
            return httpx.Response(200, json={"schedules": [SCHEDULE]})
        if path.startswith("/v1/schedules") and request.method == "DELETE":
            return httpx.Response(200, json={"id": "s/1", "deleted": True})
        if path.startswith("/v1/schedules"):
            return httpx.Response(201 if path == "/v1/schedules" else 200, json=SCHEDULE)
        if path.endswith("/links"):
            return httpx.Response(201, json={"url": "https://other.example/l/abc.def", "expires_at_ms": 42})
        if path.startswith("/l/"):
            return httpx.Response(200, json={"run_id": "r-1"})
        return RUN_ID()

    seen, transport = recorder(handler)
    with TetherClient("http://h:1/", api_token="tok", transport=transport) as c:
        assert c.start_run("w", {}, queue="q1", run_id="r") == "r-1"
        assert c.start_run("w", {}) == "r-1"
        assert c.children("r/1") == [{"run_id": "r.c1", "parent_run_id": "r"}]
        assert c.create_schedule("s/1", "w", "* * * * *", timezone="Europe/Paris", input={"a": 1}, overlap="allow", catch_up="skip") == SCHEDULE
        assert c.create_schedule("s2", "w", "* * * * *") == SCHEDULE
        assert c.list_schedules() == [SCHEDULE]
        assert c.get_schedule("s/1") == SCHEDULE
        assert c.pause_schedule("s/1") == SCHEDULE
        assert c.resume_schedule("s/1") == SCHEDULE
        assert c.delete_schedule("s/1") is None
        link = c.create_resume_link("tok:1", {"approved": True}, expires_in_ms=60000, label="Approve?", set="decision")
        assert link == {"url": "https://other.example/l/abc.def", "expires_at_ms": 42}
        c.create_resume_link("t", None)
        assert c.use_resume_link(link["url"]) == {"run_id": "r-1"}
        with pytest.raises(ValueError):
            c.use_resume_link("/l/abc")

    start_q, start, children, create, create2, listing, get, pause, resume, delete, mk, mk2, use = seen
    assert json.loads(start_q.content) == {"workflow": "w", "input": {}, "run_id": "r", "queue": "q1"}
    assert "queue" not in json.loads(start.content)
    assert children.method == "GET" and children.url.raw_path == b"/v1/runs/r%2F1/children"
    assert json.loads(create.content) == {
        "id": "s/1", "workflow": "w", "cron": "* * * * *", "timezone": "Europe/Paris", "input": {"a": 1},
        "overlap": "allow", "catch_up": "skip",
    }
    assert json.loads(create2.content) == {"id": "s2", "workflow": "w", "cron": "* * * * *"}
    assert [(r.method, r.url.raw_path) for r in (listing, get, pause, resume, delete)] == [
        ("GET", b"/v1/schedules"),
        ("GET", b"/v1/schedules/s%2F1"),
        ("POST", b"/v1/schedules/s%2F1/pause"),
        ("POST", b"/v1/schedules/s%2F1/resume"),
        ("DELETE", b"/v1/schedules/s%2F1"),
    ]
    assert mk.url.raw_path == b"/v1/hooks/tok%3A1/links" and mk.headers["Authorization"] == "Bearer tok"
    assert json.loads(mk.content) == {"payload": {"approved": True}, "expires_in_ms": 60000, "label": "Approve?", "set": "decision"}
    assert json.loads(mk2.content) == {"payload": None}
    # The link goes to its own URL, asks for JSON, and never carries the API token.
    assert str(use.url) == "https://other.example/l/abc.def" and use.method == "POST"
    assert use.headers["Accept"] == "application/json"
    assert "Authorization" not in use.headers
    assert use.content == b""


def test_schedule_calls_retry_when_idempotent_and_links_are_sent_once() -> None:
    # Create, pause and resume answer a repeat like the first: retried after a lost answer.
    seen, transport = recorder(fails_once_then(lambda: httpx.Response(200, json=SCHEDULE), httpx.ReadTimeout))
    with TetherClient("http://h:1", transport=transport, backoff=0) as c:
        assert c.create_schedule("s/1", "w", "* * * * *") == SCHEDULE
    assert len(seen) == 2
    # Delete and a link's use do not: the repeat would be schedule_not_found / link_used.
    for call in (lambda c: c.delete_schedule("s"), lambda c: c.use_resume_link("http://h:1/l/x")):
        seen, transport = recorder(fails_once_then(lambda: httpx.Response(200, json={"run_id": "r"}), httpx.ReadTimeout))
        with TetherClient("http://h:1", transport=transport, backoff=0) as c:
            with pytest.raises(NetworkError):
                call(c)
        assert len(seen) == 1


@pytest.mark.anyio
async def test_async_links_and_schedules() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/l/"):
            return err(410, "link_used")
        if request.url.path.endswith("/children"):
            return httpx.Response(200, json={"children": []})
        return err(404, "schedule_not_found")

    seen, transport = recorder(handler)
    async with AsyncTetherClient("http://h:1", api_token="tok", transport=transport) as c:
        with pytest.raises(LinkUsedError):
            await c.use_resume_link("http://h:1/l/x")
        with pytest.raises(ScheduleNotFoundError):
            await c.pause_schedule("s")
        assert await c.children("r") == []
    assert "Authorization" not in seen[0].headers
    assert seen[1].headers["Authorization"] == "Bearer tok"


def test_public_names() -> None:
    for name in tether_client.__all__:
        assert hasattr(tether_client, name), name
