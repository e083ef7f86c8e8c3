"""Python client for Tether's HTTP API: :class:`TetherClient` (blocking) and
:class:`AsyncTetherClient` (``async``), the same methods on both.

>>> from tether_client import TetherClient
>>> with TetherClient("http://127.0.0.1:8080") as client:  # doctest: +SKIP
...     run_id = client.start_run("approval", {"order_id": "o-1"})
...     token = client.hooks(run_id)[0]["token"]
...     client.resume_hook(token, {"approved": True, "comment": "ok"})
...     print(client.get_run(run_id, wait_ms=5000)["status"])
"""

from ._core import __version__, encode_segment
from .async_client import AsyncTetherClient
from .client import TetherClient
from .errors import (
    DecodeError,
    HookConflictError,
    HookNotFoundError,
    HookExpiredError,
    HookSelfTargetError,
    TokenReservedError,
    IdempotencyKeyReusedError,
    RunExistsError,
    InvalidInputError,
    InvalidJsonError,
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
    TetherError,
    UnauthorizedError,
    WorkflowNotFoundError,
)
from .types import (
    TERMINAL_STATUSES,
    ErrorBody,
    Event,
    Hook,
    LinkUse,
    ResumeLink,
    RetryPolicy,
    Run,
    Schedule,
    SignalResult,
    is_terminal,
)

__all__ = [
    "__version__",
    "TetherClient",
    "AsyncTetherClient",
    "encode_segment",
    # errors
    "TetherError",
    "HookNotFoundError",
    "HookConflictError",
    "InvalidPayloadError",
    "InvalidJsonError",
    "RunNotFoundError",
    "WorkflowNotFoundError",
    "RunFinishedError",
    "IdempotencyKeyReusedError",
    "RunExistsError",
    "UnauthorizedError",
    "PayloadTooLargeError",
    "InvalidInputError",
    "HookExpiredError",
    "HookSelfTargetError",
    "TokenReservedError",
    "ScheduleNotFoundError",
    "ScheduleExistsError",
    "InvalidScheduleError",
    "InvalidLinkError",
    "LinkInvalidError",
    "LinkExpiredError",
    "LinkUsedError",
    "StorageError",
    "NetworkError",
    "DecodeError",
    # types
    "Run",
    "Hook",
    "Event",
    "ErrorBody",
    "RetryPolicy",
    "SignalResult",
    "Schedule",
    "ResumeLink",
    "LinkUse",
    "TERMINAL_STATUSES",
    "is_terminal",
]
