"""The asynchronous client (asyncio, or trio through httpx)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar, Union

import httpx

from ._core import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_WAIT_MS, Call, ClientCore, network_error, read_answer
from .types import JSON, Event, Hook, LinkUse, ResumeLink, RetryPolicy, Run, Schedule, SignalResult, is_terminal

try:  # httpx brings anyio: its sleep works under asyncio and trio alike.
    from anyio import sleep as _sleep
except ImportError:  # pragma: no cover
    from asyncio import sleep as _sleep

__all__ = ["AsyncTetherClient"]

T = TypeVar("T")


class AsyncTetherClient(ClientCore):
    """A client of one Tether server (``tether dev`` / ``serve``), for ``async`` code:
    the same methods as :class:`TetherClient`, to be awaited.

    :param base_url: e.g. ``http://127.0.0.1:8080`` (a trailing ``/`` is ignored).
    :param api_token: sent as ``Authorization: Bearer`` (for a server started with
        ``--api-token``); never shown by ``repr``.
    :param timeout: seconds a request may take (a long-poll gets its wait on top).
    :param retries: extra attempts for a request that failed on the network or with a 503 and
        is safe to repeat (``resume_hook`` always is: it sends an ``Idempotency-Key``).
    :param backoff: seconds before the first retry, doubled for each next one.
    :param transport: an ``httpx`` transport (e.g. ``httpx.MockTransport`` in tests).
    :param http_client: an ``httpx.AsyncClient`` of your own (proxies, TLS, ...); not closed by
        :meth:`aclose`.

    Use it as a context manager (``async with AsyncTetherClient(url) as client:``) or call
    :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        api_token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        *,
        backoff: float = DEFAULT_BACKOFF,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        super().__init__(base_url, api_token, timeout, retries, backoff)
        if http_client is not None and transport is not None:
            raise ValueError("give transport or http_client, not both")
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(transport=transport)

    # Lifecycle.

    async def aclose(self) -> None:
        """Close the connection pool (unless it came from ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncTetherClient":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    # Sending.

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    self._url(call),
                    params=call.params,
                    content=self._content(call),
                    headers=self._headers(call),
                    timeout=self._request_timeout(call),
                )
            except httpx.TransportError as e:
                delay = self._retry_delay(call, attempt, exc=e)
                if delay is None:
                    raise network_error(e) from e
            else:
                delay = self._retry_delay(call, attempt, response=response)
                if delay is None:
                    return read_answer(call, response.status_code, response.content)
                await response.aclose()
            attempt += 1
            await _sleep(delay)

    # The API.

    async def resume_hook(self, token: str, payload: JSON, idempotency_key: Optional[str] = None) -> str:
        """Deliver ``payload`` to the hook holding ``token``; returns the run id once the payload
        is durably stored.

        Sent with ``Idempotency-Key: idempotency_key`` (a fresh UUID when none is given), the
        same on every retry, so a retry never delivers twice; reuse your own key to make a
        repeated call (e.g. a redelivered webhook) answer the first run id and store nothing.
        Raises :class:`HookNotFoundError`, :class:`InvalidPayloadError`,
        :class:`PayloadTooLargeError`, ...
        """
        return await self._send(self._resume_hook(token, payload, idempotency_key))

    async def start_run(
        self,
        workflow: str,
        input: JSON,
        run_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        queue: Optional[str] = None,
    ) -> str:
        """Start a run of ``workflow`` with ``input``; returns its id once it has recorded what
        it first waits on. Raises :class:`WorkflowNotFoundError`, :class:`InvalidInputError`.

        Idempotent: with ``run_id`` the run gets that id, with ``idempotency_key`` the server
        derives the id from the key (without either the client makes a key, so its own retries
        never start a second run). Starting again with the same id or key, workflow and input
        returns the first run; another workflow or input raises :class:`RunExistsError` (a
        ``run_id``) or :class:`IdempotencyKeyReusedError` (a key). ``queue``: the task queue to
        run it on (the server's default ``default``); only nodes serving it run it."""
        return await self._send(self._start_run(workflow, input, run_id, idempotency_key, queue))

    async def get_run(self, run_id: str, wait_ms: Optional[int] = None) -> Run:
        """The run; with ``wait_ms``, long-polls until it has ended or ``wait_ms`` passed (the
        server caps one wait at 60000). Raises :class:`RunNotFoundError`."""
        return await self._send(self._get_run(run_id, wait_ms))

    async def wait_for_run(self, run_id: str, timeout: float = 60.0) -> Run:
        """Long-poll until the run has ended or ``timeout`` seconds passed; the run as it is then
        (check ``run["status"]``)."""
        deadline = time.monotonic() + timeout
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            run = await self.get_run(run_id, wait_ms=min(left_ms, MAX_WAIT_MS))
            if is_terminal(run) or time.monotonic() >= deadline:
                return run

    async def list_runs(
        self, status: Optional[str] = None, workflow: Optional[str] = None, limit: Optional[int] = None
    ) -> List[Run]:
        """Runs, newest first, optionally only those with ``status`` or of ``workflow``; at most
        ``limit`` (the server's default 100, its cap 1000)."""
        return await self._send(self._list_runs(status, workflow, limit))

    async def events(self, run_id: str) -> List[Event]:
        """The run's journal, its hook threads' entries included (each tagged ``thread``)."""
        return await self._send(self._events(run_id))

    async def hooks(self, run_id: str) -> List[Hook]:
        """The run's active hooks (``token``, ``kind``, ``metadata``, ``created_at``)."""
        return await self._send(self._hooks(run_id))

    async def children(self, run_id: str) -> List[Run]:
        """The child runs the run started (``ctx.start_child``), oldest first; each has its
        ``parent_run_id``. Raises :class:`RunNotFoundError`."""
        return await self._send(self._children(run_id))

    # Schedules.

    async def create_schedule(
        self,
        schedule_id: str,
        workflow: str,
        cron: str,
        *,
        timezone: Optional[str] = None,
        input: Optional[JSON] = None,
        overlap: Optional[str] = None,
        catch_up: Optional[str] = None,
    ) -> Schedule:
        """Create a durable cron schedule: each tick of ``cron`` (5 fields, or 6 with seconds
        first; read in ``timezone``, default ``UTC``) starts one run ``sched:{id}:{tick_ms}`` of
        ``workflow`` with ``input`` (default ``{}``). ``overlap``: ``skip`` (default) or
        ``allow``; ``catch_up``: ``one`` (default) or ``skip``; ``None`` leaves the server's
        default. Repeating the same create returns the schedule (so it is retried); the same id
        with other settings raises :class:`ScheduleExistsError`; a bad expression, zone or
        option :class:`InvalidScheduleError`; an unknown workflow
        :class:`WorkflowNotFoundError`."""
        return await self._send(self._create_schedule(schedule_id, workflow, cron, timezone, input, overlap, catch_up))

    async def list_schedules(self) -> List[Schedule]:
        """Every schedule, by id."""
        return await self._send(self._list_schedules())

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule. Raises :class:`ScheduleNotFoundError`."""
        return await self._send(self._get_schedule(schedule_id))

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule: no more ticks; the runs it started stay. Raises
        :class:`ScheduleNotFoundError`."""
        await self._send(self._delete_schedule(schedule_id))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        """Pause a schedule: no tick fires until it is resumed (pausing a paused one does
        nothing)."""
        return await self._send(self._pause_schedule(schedule_id, True))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        """Resume a paused schedule from its next tick after now (the paused ticks never fire)."""
        return await self._send(self._pause_schedule(schedule_id, False))

    # Resume links.

    async def create_resume_link(
        self,
        token: str,
        payload: JSON,
        *,
        expires_in_ms: Optional[int] = None,
        label: Optional[str] = None,
        set: Optional[str] = None,
    ) -> ResumeLink:
        """Make a resume link for the hook holding ``token``: a signed URL that resumes it with
        ``payload`` once, for anyone holding it, without the API token (``GET`` shows a
        confirmation page, ``POST`` resumes). ``expires_in_ms``: how long it works (default a
        day, at most the server's idempotency window); ``label``: shown on the page; ``set``:
        links sharing it answer one question (the first used wins). Returns ``{"url",
        "expires_at_ms"}``. Raises :class:`InvalidPayloadError` (checked now),
        :class:`InvalidLinkError`, :class:`HookNotFoundError`."""
        return await self._send(self._create_resume_link(token, payload, expires_in_ms, label, set))

    async def use_resume_link(self, url: str) -> LinkUse:
        """Use a resume link: ``POST`` it with ``Accept: application/json``; returns
        ``{"run_id"}`` of the run that got its payload. Sent to the link's own URL without
        the API token (the link is its own credential), once. Raises :class:`LinkUsedError`
        (a second use), :class:`LinkExpiredError`, :class:`LinkInvalidError`,
        :class:`HookNotFoundError` (nothing waits for it any more)."""
        return await self._send(self._use_resume_link(url))

    async def get_hook(self, token: str) -> Hook:
        """The active hook holding ``token``, with its ``run_id``. Raises :class:`HookNotFoundError`."""
        return await self._send(self._get_hook(token))

    async def cancel_run(self, run_id: str, reason: Optional[str] = None) -> None:
        """Ask the run to cancel (it ends ``cancelled`` at its next await). Raises
        :class:`RunFinishedError` if it has already ended."""
        await self._send(self._cancel_run(run_id, reason))

    async def signal(self, signal_id: str, payload: JSON, idempotency_key: Optional[str] = None) -> SignalResult:
        """Send a signal: a run waiting on ``signal_id`` gets it now, or it is kept for a later
        wait. Returns ``(signal_id, delivered_to)`` (``delivered_to``: the run, or ``None``).

        Sent with ``Idempotency-Key: idempotency_key`` (a fresh UUID when none is given), the
        same on every retry, so a retry never delivers twice; reuse your own key to make a
        repeated call answer the first ``delivered_to`` and store nothing. The same key with
        another payload raises :class:`IdempotencyKeyReusedError`.
        """
        return await self._send(self._signal(signal_id, payload, idempotency_key))

    async def spawn_hook(
        self,
        run_id: str,
        workflow_name: str,
        args: JSON,
        task_queue: Optional[str] = None,
        retry: Optional[Union[RetryPolicy, Mapping[str, Any]]] = None,
    ) -> str:
        """Start a hook thread running ``workflow_name`` with ``args`` in the running job
        ``run_id``; returns its hook id. Raises :class:`RunNotFoundError`,
        :class:`RunFinishedError`, :class:`HookSelfTargetError` (the run's own workflow)."""
        return await self._send(self._spawn_hook(run_id, workflow_name, args, task_queue, retry))

    async def state(self, run_id: str) -> Dict[str, JSON]:
        """The shared key/value state of the run's namespace."""
        return await self._send(self._state(run_id))

    async def workflows(self) -> List[str]:
        """The names of the workflows the server runs."""
        return await self._send(self._workflows())

    async def health(self) -> Dict[str, Any]:
        """``GET /healthz``: ``{"ok": true, "backend": ...}``."""
        return await self._send(self._health())
