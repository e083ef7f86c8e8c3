"""Every route the client calls is in the server's OpenAPI document (GET /openapi.json), when
the server has one."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Set, Tuple

import httpx
import pytest

from tether_client import TetherClient

from conftest import Server

PLACEHOLDERS = {"RUN", "TOKEN", "SIGNAL", "SCHED", "LINK"}


def _template(path: str) -> str:
    """`/v1/runs/RUN/hooks` and `/v1/runs/{run_id}/hooks` both become `/v1/runs/{}/hooks`."""
    return "/".join("{}" if seg in PLACEHOLDERS or re.fullmatch(r"\{[^}]*\}", seg) else seg for seg in path.split("/"))


def client_routes() -> Set[Tuple[str, str]]:
    """(method, path template) of every request the client's methods send."""
    seen: List[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if request.method == "POST" and path.endswith("/hooks"):
            return httpx.Response(202, json={"hook_id": "h"})
        if path.startswith("/v1/signals/"):
            return httpx.Response(202, json={"signal_id": "SIGNAL", "delivered_to": None})
        if path == "/v1/runs" and request.method == "GET":
            return httpx.Response(200, json={"runs": []})
        if path.endswith("/children"):
            return httpx.Response(200, json={"children": []})
        if path == "/v1/schedules" and request.method == "GET":
            return httpx.Response(200, json={"schedules": []})
        if path.startswith("/v1/schedules"):
            return httpx.Response(200, json={"id": "SCHED", "cron": "* * * * *"})
        if path.endswith("/links"):
            return httpx.Response(201, json={"url": "http://h:1/l/LINK", "expires_at_ms": 1})
        if path == "/v1/workflows":
            return httpx.Response(200, json={"workflows": []})
        if path.endswith(("/events", "/hooks")):
            return httpx.Response(200, json=[])
        if request.method == "POST":
            return httpx.Response(202, json={"run_id": "RUN"})
        return httpx.Response(200, json={"run_id": "RUN", "status": "completed"})

    with TetherClient("http://h:1", transport=httpx.MockTransport(handler)) as c:
        c.start_run("w", {})
        c.get_run("RUN", wait_ms=1)
        c.list_runs(status="completed")
        c.events("RUN")
        c.hooks("RUN")
        c.get_hook("TOKEN")
        c.resume_hook("TOKEN", {})
        c.cancel_run("RUN")
        c.signal("SIGNAL", {})
        c.spawn_hook("RUN", "x", {})
        c.state("RUN")
        c.workflows()
        c.health()
        c.children("RUN")
        c.create_schedule("SCHED", "w", "* * * * *")
        c.list_schedules()
        c.get_schedule("SCHED")
        c.pause_schedule("SCHED")
        c.resume_schedule("SCHED")
        c.delete_schedule("SCHED")
        c.use_resume_link(c.create_resume_link("TOKEN", {})["url"])
    return {(r.method.lower(), _template(r.url.path)) for r in seen}


def documented_routes(doc: Dict[str, Any]) -> Set[Tuple[str, str]]:
    """(method, path template) of every operation in an OpenAPI document."""
    return {
        (method.lower(), _template(path))
        for path, item in doc.get("paths", {}).items()
        for method in item
        if method.lower() in {"get", "post", "put", "delete", "patch", "head", "options", "trace"}
    }


def test_client_routes_are_in_the_openapi_document(server: Server) -> None:
    answer = httpx.get(server.url + "/openapi.json", timeout=10)
    if answer.status_code == 404:
        pytest.skip("the server has no GET /openapi.json (404)")
    assert answer.status_code == 200, answer.text
    documented = documented_routes(answer.json())
    routes = client_routes()
    missing = sorted(routes - documented)
    assert not missing, f"routes the client calls but the OpenAPI document lacks: {missing}"


def test_client_routes_are_all_recorded() -> None:
    # Runs without a server: the list the test above checks is complete.
    assert client_routes() == {
        ("post", "/v1/runs"),
        ("get", "/v1/runs/{}"),
        ("get", "/v1/runs"),
        ("get", "/v1/runs/{}/events"),
        ("get", "/v1/runs/{}/hooks"),
        ("get", "/v1/hooks/{}"),
        ("post", "/v1/hooks/{}"),
        ("post", "/v1/runs/{}/cancel"),
        ("post", "/v1/signals/{}"),
        ("post", "/v1/runs/{}/hooks"),
        ("get", "/v1/runs/{}/state"),
        ("get", "/v1/workflows"),
        ("get", "/healthz"),
        ("get", "/v1/runs/{}/children"),
        ("post", "/v1/schedules"),
        ("get", "/v1/schedules"),
        ("get", "/v1/schedules/{}"),
        ("post", "/v1/schedules/{}/pause"),
        ("post", "/v1/schedules/{}/resume"),
        ("delete", "/v1/schedules/{}"),
        ("post", "/v1/hooks/{}/links"),
        ("post", "/l/{}"),
    }


def test_documented_routes_reads_openapi_paths() -> None:
    doc = {"paths": {"/v1/runs/{run_id}": {"get": {}, "parameters": []}, "/v1/hooks/{token}": {"post": {}}}}
    assert documented_routes(doc) == {("get", "/v1/runs/{}"), ("post", "/v1/hooks/{}")}
