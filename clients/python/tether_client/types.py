"""The JSON shapes of the API's answers, as typed dicts (the values are the server's JSON)."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, TypedDict

__all__ = [
    "JSON",
    "ErrorBody",
    "Run",
    "Hook",
    "Event",
    "RetryPolicy",
    "SignalResult",
    "Schedule",
    "ResumeLink",
    "LinkUse",
    "TERMINAL_STATUSES",
    "is_terminal",
]

JSON = Any
"""Any JSON value: ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``."""

Event = Dict[str, Any]
"""One journal entry: ``seq``, ``at_ms``, ``type``, ``thread`` (``main`` or a hook id) and the
entry's own fields."""

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
"""The statuses of a run that has ended (the others: ``pending``, ``running``, ``suspended``)."""


class ErrorBody(TypedDict):
    """An error as the API reports it, e.g. in a run's ``error`` field."""

    code: str
    message: str


class Run(TypedDict):
    """A run as the server shows it."""

    run_id: str
    workflow: str
    status: str
    """``pending``, ``running``, ``suspended``, ``completed``, ``failed`` or ``cancelled``."""
    input: JSON
    output: Optional[JSON]
    error: Optional[ErrorBody]
    created_at: str
    updated_at: str
    parent_run_id: Optional[str]
    """The run that started it as a child run (``ctx.start_child``), else ``None``."""
    schedule_id: Optional[str]
    """The schedule whose tick started it (its id is then ``sched:{id}:{tick_ms}``), else ``None``."""
    queue: Optional[str]
    """The task queue it is on (``default`` unless started on another)."""


class _HookBase(TypedDict):
    token: str
    kind: str
    """``hook`` or ``webhook``."""
    metadata: JSON
    schema: Optional[Dict[str, Any]]
    """The JSON Schema of the payloads it takes, when its hook definition publishes one."""
    created_at: str


class Hook(_HookBase, total=False):
    """An active hook. ``run_id`` is set by ``get_hook``, absent from a run's hook list."""

    run_id: str


class RetryPolicy(TypedDict, total=False):
    """How a failing hook thread is retried (every field optional; the server's defaults: 3
    attempts, 1000 ms, coefficient 2.0, at most 60000 ms)."""

    maximum_attempts: int
    initial_interval_ms: int
    backoff_coefficient: float
    maximum_interval_ms: int


class Schedule(TypedDict):
    """A durable cron schedule as the server shows it."""

    id: str
    workflow: str
    """The workflow each tick starts (one run ``sched:{id}:{tick_ms}`` per tick)."""
    cron: str
    """5 fields, or 6 with seconds first."""
    timezone: str
    """The IANA time zone it is read in."""
    input: JSON
    """The input of its runs."""
    overlap: str
    """``skip`` or ``allow``: a tick while the previous run goes on."""
    catch_up: str
    """``one`` or ``skip``: ticks missed while no node was up."""
    paused: bool
    next_tick: Optional[str]
    """The next tick, RFC 3339 (UTC, ms); ``None`` when the expression has no more."""
    next_tick_ms: Optional[int]
    """The next tick, ms since the Unix epoch."""
    last_run_id: Optional[str]
    """The run of its latest tick, if any."""
    created_at: str
    updated_at: str


class ResumeLink(TypedDict):
    """What ``create_resume_link`` returns."""

    url: str
    """The link: a confirmation page on ``GET``, the resume on ``POST`` (once). A credential."""
    expires_at_ms: int
    """When it stops working, ms since the Unix epoch."""


class LinkUse(TypedDict):
    """What ``use_resume_link`` returns."""

    run_id: str
    """The run that received the link's payload."""


class SignalResult(NamedTuple):
    """What ``signal`` answers: unpack as ``signal_id, delivered_to = client.signal(...)``."""

    signal_id: str
    delivered_to: Optional[str]
    """The waiting run that got it, or ``None`` when it is kept for a later wait."""


def is_terminal(run: Run) -> bool:
    """Whether ``run`` has ended (``completed``, ``failed`` or ``cancelled``)."""
    return run["status"] in TERMINAL_STATUSES
