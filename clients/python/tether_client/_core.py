"""What the sync and async clients share: each API call as a :class:`Call` (request and how to
read its answer), error mapping, and the retry rules. The clients only send."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, TypeVar, Union, cast

import httpx

from .errors import DecodeError, NetworkError, TetherError, error_for
from .types import JSON, Event, Hook, LinkUse, ResumeLink, RetryPolicy, Run, Schedule, SignalResult

__version__ = "0.1.0"

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take (a long-poll gets its ``wait_ms`` on top)."""
DEFAULT_RETRIES = 3
"""Extra attempts for a request that may be retried (see :func:`retry_delay`)."""
DEFAULT_BACKOFF = 0.2
"""Seconds before the first retry; doubled for each next one, at most :data:`MAX_BACKOFF`."""
MAX_BACKOFF = 5.0
MAX_WAIT_MS = 60_000
"""The longest single long-poll the server accepts (``wait_ms`` is capped there)."""

IDEMPOTENCY_HEADER = "Idempotency-Key"


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()


def encode_segment(s: str) -> str:
    """Percent-encode ``s`` as one URL path segment: every byte outside ``[A-Za-z0-9_.~-]``
    becomes ``%XX`` (so ``/``, ``:``, ``?``, ``%``, spaces and non-ASCII are all safe), the same
    rule as the Rust client's ``encode_path_segment``; ``.`` and ``..`` are sent as ``%2E``s."""
    if s in (".", ".."):
        # A bare dot segment would be resolved away by URL normalization; encoded, it stays a
        # segment (and the server decodes it back).
        return "%2E" * len(s)
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "_.~-"):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def normalize_base_url(base_url: str) -> str:
    base = str(base_url).strip()
    while base.endswith("/"):
        base = base[:-1]
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    return base


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its successful answer."""

    method: str
    path: str
    """Already encoded."""
    parse: Callable[[int, Any], T]
    """Reads the decoded JSON of a 2xx answer (given its status)."""
    params: Optional[Dict[str, str]] = None
    body: Any = NO_BODY
    idempotency_key: Optional[str] = None
    extra_timeout: float = 0.0
    """Seconds added to the client's timeout (a long-poll's wait)."""
    headers: Dict[str, str] = field(default_factory=dict)
    idempotent: bool = False
    """Whether the server answers a repeat of it as it answered the first (a schedule's create,
    pause or resume), so it may be retried like a GET."""
    url: Optional[str] = None
    """An absolute URL to send to instead of ``base_url + path`` (a resume link). Such a request
    carries no ``Authorization`` header: the link is its own credential."""

    @property
    def retry_safe(self) -> bool:
        """Whether sending it twice cannot act twice: a GET, a request with an idempotency key
        (the server stores nothing new for a key it has seen), or one marked ``idempotent``."""
        return self.method == "GET" or self.idempotency_key is not None or self.idempotent


# --- reading answers -------------------------------------------------------------------------


def _decode_error(status: int, what: str) -> DecodeError:
    return DecodeError(status, "decode", f"unexpected answer from the server (HTTP {status}): {what}")


def _str_field(name: str) -> Callable[[int, Any], str]:
    def parse(status: int, data: Any) -> str:
        if isinstance(data, dict) and isinstance(data.get(name), str):
            return cast(str, data[name])
        raise _decode_error(status, f"no {name!r} string in {data!r}")

    return parse


def _of_type(kind: type, what: str) -> Callable[[int, Any], Any]:
    def parse(status: int, data: Any) -> Any:
        if isinstance(data, kind):
            return data
        raise _decode_error(status, f"expected {what}, got {data!r}")

    return parse


def _runs(status: int, data: Any) -> List[Run]:
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return cast(List[Run], data["runs"])
    raise _decode_error(status, f"no 'runs' list in {data!r}")


def _signal(status: int, data: Any) -> SignalResult:
    if isinstance(data, dict) and isinstance(data.get("signal_id"), str):
        delivered = data.get("delivered_to")
        if delivered is None or isinstance(delivered, str):
            return SignalResult(data["signal_id"], delivered)
    raise _decode_error(status, f"expected {{'signal_id', 'delivered_to'}}, got {data!r}")


def _workflows(status: int, data: Any) -> List[str]:
    if isinstance(data, dict) and isinstance(data.get("workflows"), list):
        return cast(List[str], data["workflows"])
    raise _decode_error(status, f"no 'workflows' list in {data!r}")


def _ignore(status: int, data: Any) -> None:
    return None


def _list_of(name: str) -> Callable[[int, Any], Any]:
    def parse(status: int, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get(name), list):
            return data[name]
        raise _decode_error(status, f"no {name!r} list in {data!r}")

    return parse


def _schedule(status: int, data: Any) -> Schedule:
    if isinstance(data, dict) and isinstance(data.get("id"), str) and isinstance(data.get("cron"), str):
        return cast(Schedule, data)
    raise _decode_error(status, f"expected a schedule object, got {data!r}")


def _resume_link(status: int, data: Any) -> ResumeLink:
    if isinstance(data, dict) and isinstance(data.get("url"), str) and isinstance(data.get("expires_at_ms"), int):
        return ResumeLink(url=data["url"], expires_at_ms=data["expires_at_ms"])
    raise _decode_error(status, f"expected {{'url', 'expires_at_ms'}}, got {data!r}")


def _link_use(status: int, data: Any) -> LinkUse:
    return LinkUse(run_id=_str_field("run_id")(status, data))


def error_from_answer(status: int, content: bytes) -> TetherError:
    """The error for a non-2xx answer: the API's ``{"error": {"code", "message"}}``, or, for
    anything else (a proxy's page, say), code ``http_<status>`` with the body as the message."""
    try:
        data = json.loads(content)
        err = data["error"]
        code, message = err["code"], err["message"]
        if isinstance(code, str) and isinstance(message, str):
            return error_for(status, code, message)
    except (ValueError, KeyError, TypeError):
        pass
    text = content.decode("utf-8", "replace").strip()
    message = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    return error_for(status, f"http_{status}", message)


def read_answer(call: "Call[T]", status: int, content: bytes) -> T:
    """The result of ``call`` from its answer, or the :class:`TetherError` it stands for."""
    if not 200 <= status < 300:
        raise error_from_answer(status, content)
    try:
        data = json.loads(content) if content.strip() else None
    except ValueError as e:
        raise _decode_error(status, f"not JSON ({e})") from None
    return call.parse(status, data)


# --- retries ---------------------------------------------------------------------------------

# The request never reached the server: safe to send again whatever it is.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Sending again would not help.
_NO_RETRY = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def retry_delay(
    call: "Call[Any]",
    attempt: int,
    retries: int,
    backoff: float,
    *,
    exc: Optional[BaseException] = None,
    response: Optional[httpx.Response] = None,
) -> Optional[float]:
    """Seconds to wait before sending ``call`` again after attempt number ``attempt`` (from 0)
    failed with ``exc`` or answered ``response``; ``None``: do not retry.

    Retried: a connection that could not be made (any call: nothing was sent); any other network
    error and a ``503`` only for calls that are safe to repeat (GETs and calls with an
    idempotency key, which ``resume_hook`` always has).
    """
    if attempt >= retries:
        return None
    if exc is not None:
        if isinstance(exc, _NO_RETRY):
            return None
        if not (isinstance(exc, _NOT_SENT) or call.retry_safe):
            return None
    elif response is not None:
        if response.status_code != 503 or not call.retry_safe:
            return None
    else:
        return None
    delay = min(MAX_BACKOFF, backoff * (2.0**attempt))
    delay *= 0.5 + random.random() / 2  # jitter: retrying clients do not move in step
    if response is not None:
        after = _retry_after(response)
        if after is not None:
            delay = max(delay, min(after, MAX_BACKOFF))
    return delay


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def network_error(exc: BaseException) -> NetworkError:
    """A :class:`NetworkError` naming ``exc`` and its causes."""
    parts: List[str] = []
    e: Optional[BaseException] = exc
    while e is not None and len(parts) < 6:
        text = str(e) or type(e).__name__
        if not any(text in p for p in parts):
            parts.append(text)
        e = e.__cause__ or e.__context__
    return NetworkError(0, "network", "request failed: " + ": ".join(parts))


# --- the shared client state and the calls ---------------------------------------------------


class ClientCore:
    """Configuration and request building shared by :class:`~tether_client.TetherClient` and
    :class:`~tether_client.AsyncTetherClient`."""

    def __init__(
        self,
        base_url: str,
        api_token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._base_url = normalize_base_url(base_url)
        self._api_token = api_token
        self._timeout = float(timeout)
        self._retries = int(retries)
        self._backoff = float(backoff)

    @property
    def base_url(self) -> str:
        """The base URL requests go to (without a trailing ``/``)."""
        return self._base_url

    def __repr__(self) -> str:
        # Never show the API token.
        token = "<redacted>" if self._api_token is not None else None
        return f"{type(self).__name__}(base_url={self._base_url!r}, api_token={token!r})"

    def webhook_url(self, token: str) -> str:
        """The URL of the webhook holding ``token``:
        ``{base_url}/.well-known/workflow/v1/webhook/{token}`` (the token URL-encoded). It needs
        no API token: the webhook's token is the credential."""
        return f"{self._base_url}/.well-known/workflow/v1/webhook/{encode_segment(token)}"

    # Building requests.

    def _url(self, call: "Call[Any]") -> str:
        return call.url if call.url is not None else self._base_url + call.path

    def _headers(self, call: "Call[Any]") -> Dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"tether-client-python/{__version__}"}
        if call.body is not NO_BODY:
            headers["Content-Type"] = "application/json"
        # A foreign URL (a resume link) is its own credential: never send it the API token.
        if self._api_token is not None and call.url is None:
            headers["Authorization"] = f"Bearer {self._api_token}"
        if call.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = call.idempotency_key
        headers.update(call.headers)
        return headers

    @staticmethod
    def _content(call: "Call[Any]") -> Optional[bytes]:
        if call.body is NO_BODY:
            return None
        return json.dumps(call.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _request_timeout(self, call: "Call[Any]") -> float:
        return self._timeout + call.extra_timeout

    def _retry_delay(
        self,
        call: "Call[Any]",
        attempt: int,
        *,
        exc: Optional[BaseException] = None,
        response: Optional[httpx.Response] = None,
    ) -> Optional[float]:
        return retry_delay(call, attempt, self._retries, self._backoff, exc=exc, response=response)

    # The calls (one per API operation).

    @staticmethod
    def _start_run(
        workflow: str,
        input: JSON,
        run_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        queue: Optional[str] = None,
    ) -> "Call[str]":
        body: Dict[str, Any] = {"workflow": workflow, "input": input}
        if run_id is not None:
            body["run_id"] = run_id
        if queue is not None:
            body["queue"] = queue
        # Always a key (the server derives the run's id from it; a chosen run id wins), so a
        # retry after a lost answer never starts a second run.
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        return Call("POST", "/v1/runs", _str_field("run_id"), body=body, idempotency_key=key)

    @staticmethod
    def _get_run(run_id: str, wait_ms: Optional[int] = None) -> "Call[Run]":
        params = None
        extra = 0.0
        if wait_ms is not None:
            wait_ms = max(0, int(wait_ms))
            params = {"wait_ms": str(wait_ms)}
            extra = min(wait_ms, MAX_WAIT_MS) / 1000.0
        return Call(
            "GET",
            f"/v1/runs/{encode_segment(run_id)}",
            _of_type(dict, "a run object"),
            params=params,
            extra_timeout=extra,
        )

    @staticmethod
    def _list_runs(
        status: Optional[str] = None, workflow: Optional[str] = None, limit: Optional[int] = None
    ) -> "Call[List[Run]]":
        params: Dict[str, str] = {}
        if status is not None:
            params["status"] = status
        if workflow is not None:
            params["workflow"] = workflow
        if limit is not None:
            params["limit"] = str(int(limit))
        return Call("GET", "/v1/runs", _runs, params=params or None)

    @staticmethod
    def _events(run_id: str) -> "Call[List[Event]]":
        return Call("GET", f"/v1/runs/{encode_segment(run_id)}/events", _of_type(list, "a list of events"))

    @staticmethod
    def _hooks(run_id: str) -> "Call[List[Hook]]":
        return Call("GET", f"/v1/runs/{encode_segment(run_id)}/hooks", _of_type(list, "a list of hooks"))

    @staticmethod
    def _children(run_id: str) -> "Call[List[Run]]":
        return Call("GET", f"/v1/runs/{encode_segment(run_id)}/children", _list_of("children"))

    @staticmethod
    def _get_hook(token: str) -> "Call[Hook]":
        return Call("GET", f"/v1/hooks/{encode_segment(token)}", _of_type(dict, "a hook object"))

    @staticmethod
    def _resume_hook(token: str, payload: JSON, idempotency_key: Optional[str]) -> "Call[str]":
        # Always a key: a retry after a lost answer must never deliver the payload twice.
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        return Call(
            "POST",
            f"/v1/hooks/{encode_segment(token)}",
            _str_field("run_id"),
            body=payload,
            idempotency_key=key,
        )

    @staticmethod
    def _cancel_run(run_id: str, reason: Optional[str]) -> "Call[None]":
        body: Dict[str, Any] = {} if reason is None else {"reason": reason}
        return Call("POST", f"/v1/runs/{encode_segment(run_id)}/cancel", _ignore, body=body)

    @staticmethod
    def _signal(signal_id: str, payload: JSON, idempotency_key: Optional[str]) -> "Call[SignalResult]":
        # Always a key: a retry after a lost answer must never deliver the signal twice.
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        return Call(
            "POST",
            f"/v1/signals/{encode_segment(signal_id)}",
            _signal,
            body=payload,
            idempotency_key=key,
        )

    @staticmethod
    def _spawn_hook(
        run_id: str,
        workflow_name: str,
        args: JSON,
        task_queue: Optional[str],
        retry: Optional[Union[RetryPolicy, Mapping[str, Any]]],
    ) -> "Call[str]":
        body: Dict[str, Any] = {"workflow_name": workflow_name, "args": args}
        if task_queue is not None:
            body["task_queue"] = task_queue
        if retry is not None:
            body["retry"] = dict(retry)
        return Call("POST", f"/v1/runs/{encode_segment(run_id)}/hooks", _str_field("hook_id"), body=body)

    @staticmethod
    def _state(run_id: str) -> "Call[Dict[str, JSON]]":
        return Call("GET", f"/v1/runs/{encode_segment(run_id)}/state", _of_type(dict, "a state object"))

    @staticmethod
    def _workflows() -> "Call[List[str]]":
        return Call("GET", "/v1/workflows", _workflows)

    @staticmethod
    def _health() -> "Call[Dict[str, Any]]":
        return Call("GET", "/healthz", _of_type(dict, "a health object"))

    # Schedules.

    @staticmethod
    def _create_schedule(
        schedule_id: str,
        workflow: str,
        cron: str,
        timezone: Optional[str],
        input: Optional[JSON],
        overlap: Optional[str],
        catch_up: Optional[str],
    ) -> "Call[Schedule]":
        body: Dict[str, Any] = {"id": schedule_id, "workflow": workflow, "cron": cron}
        for name, value in (("timezone", timezone), ("input", input), ("overlap", overlap), ("catch_up", catch_up)):
            if value is not None:
                body[name] = value
        # Repeating the same create answers the schedule: safe to retry.
        return Call("POST", "/v1/schedules", _schedule, body=body, idempotent=True)

    @staticmethod
    def _list_schedules() -> "Call[List[Schedule]]":
        return Call("GET", "/v1/schedules", _list_of("schedules"))

    @staticmethod
    def _get_schedule(schedule_id: str) -> "Call[Schedule]":
        return Call("GET", f"/v1/schedules/{encode_segment(schedule_id)}", _schedule)

    @staticmethod
    def _delete_schedule(schedule_id: str) -> "Call[None]":
        # Not idempotent: a repeat after a lost answer is schedule_not_found.
        return Call("DELETE", f"/v1/schedules/{encode_segment(schedule_id)}", _ignore)

    @staticmethod
    def _pause_schedule(schedule_id: str, paused: bool) -> "Call[Schedule]":
        action = "pause" if paused else "resume"
        return Call("POST", f"/v1/schedules/{encode_segment(schedule_id)}/{action}", _schedule, idempotent=True)

    # Resume links.

    @staticmethod
    def _create_resume_link(
        token: str, payload: JSON, expires_in_ms: Optional[int], label: Optional[str], set: Optional[str]
    ) -> "Call[ResumeLink]":
        body: Dict[str, Any] = {"payload": payload}
        if expires_in_ms is not None:
            body["expires_in_ms"] = int(expires_in_ms)
        if label is not None:
            body["label"] = label
        if set is not None:
            body["set"] = set
        return Call("POST", f"/v1/hooks/{encode_segment(token)}/links", _resume_link, body=body)

    @staticmethod
    def _use_resume_link(url: str) -> "Call[LinkUse]":
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"a resume link is an absolute http(s) URL, as create_resume_link returns; got {url!r}")
        # Sent once (retried only if the connection could not be made): a repeat after a lost
        # answer would only meet link_used.
        return Call("POST", "", _link_use, url=url)
