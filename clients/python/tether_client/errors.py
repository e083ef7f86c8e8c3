"""The errors a Tether client raises.

Every error is a :class:`TetherError` with the HTTP ``status``, the API's stable ``code`` and its
``message`` (``str(error)`` is the message). The server's codes map to subclasses, so callers can
``except HookNotFoundError`` instead of comparing strings; a code this client does not know comes
back as a plain :class:`TetherError` (its ``code`` is still the server's).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

__all__ = [
    "TetherError",
    "HookNotFoundError",
    "HookConflictError",
    "InvalidPayloadError",
    "InvalidJsonError",
    "RunNotFoundError",
    "WorkflowNotFoundError",
    "RunFinishedError",
    "IdempotencyKeyReusedError",
    "UnauthorizedError",
    "PayloadTooLargeError",
    "InvalidInputError",
    "HookSelfTargetError",
    "HookExpiredError",
    "TokenReservedError",
    "RunExistsError",
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
    "error_for",
]


class TetherError(Exception):
    """An error answer from the server (or, for subclasses, no usable answer at all).

    :ivar status: the HTTP status (``0`` when there was no answer, see :class:`NetworkError`).
    :ivar code: the stable machine-readable code (``hook_not_found``, ``invalid_payload``, ...),
        or ``http_<status>`` when the answer was not the API's JSON error shape.
    :ivar message: the server's explanation, for a person.
    """

    status: int
    code: str
    message: str

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keep the three fields through pickling (multiprocessing, task queues).
        return (type(self), (self.status, self.code, self.message))


class HookNotFoundError(TetherError):
    """404 ``hook_not_found``: no active hook holds this token (unknown, disposed or its run ended)."""


class HookExpiredError(TetherError):
    """410 ``hook_expired``: the hook holding this token expired (``HookOptions::expires_in``);
    nothing was stored and no payload will be taken for it again."""


class TokenReservedError(TetherError):
    """410 ``token_reserved``: the token's hook has ended and the token stays reserved for a
    while (``HookOptions::reserve_for``); nothing was stored. The message says until when."""


class HookConflictError(TetherError):
    """``hook_conflict``: the token is held by another run."""


class InvalidPayloadError(TetherError):
    """400 ``invalid_payload``: the payload does not fit the hook's definition."""


class InvalidJsonError(TetherError):
    """400 ``invalid_json``: the request body is not the JSON the endpoint expects."""


class RunNotFoundError(TetherError):
    """404 ``run_not_found``: no run has this id."""


class WorkflowNotFoundError(TetherError):
    """404 ``workflow_not_found``: the server runs no workflow of this name."""


class RunFinishedError(TetherError):
    """409 ``run_finished``: the run has already ended."""


class IdempotencyKeyReusedError(TetherError):
    """409 ``idempotency_key_reused``: the idempotency key was first used with another payload;
    nothing was stored. A retry must send the same payload; a new payload needs a new key."""


class RunExistsError(TetherError):
    """409 ``run_exists``: a run with the chosen ``run_id`` exists, started with another workflow
    or input; nothing was stored. Choose another id, or repeat the first start exactly."""


class UnauthorizedError(TetherError):
    """401 ``unauthorized``: the API token is missing or wrong."""


class PayloadTooLargeError(TetherError):
    """413 ``payload_too_large``: the body is over the server's limit."""


class InvalidInputError(TetherError):
    """400 ``invalid_input``: the run's input does not fit the workflow."""


class HookSelfTargetError(TetherError):
    """400 ``hook_self_target``: a hook thread may not run the run's own workflow."""


class ScheduleNotFoundError(TetherError):
    """404 ``schedule_not_found``: no schedule has this id."""


class ScheduleExistsError(TetherError):
    """409 ``schedule_exists``: a schedule with this id exists with other settings; nothing was
    changed. (Repeating a create exactly is not an error: it returns the schedule.)"""


class InvalidScheduleError(TetherError):
    """400 ``invalid_schedule``: a bad id, cron expression, time zone, ``overlap`` or
    ``catch_up``."""


class InvalidLinkError(TetherError):
    """400 ``invalid_link``: the request cannot make a resume link (an expiry of 0 or past the
    server's idempotency window, a label too long, a bad set name, a webhook's token)."""


class LinkInvalidError(TetherError):
    """403 ``link_invalid``: the link is not valid (altered, cut short, or signed by a key this
    server does not have)."""


class LinkExpiredError(TetherError):
    """410 ``link_expired``: the link has expired; nothing was delivered."""


class LinkUsedError(TetherError):
    """410 ``link_used``: the link (or another of its ``set``) was already used; its answer was
    delivered once and nothing new was."""


class StorageError(TetherError):
    """``storage_unavailable`` (503), ``storage_full`` (507), ``storage_read_only``: the server's
    storage failed and nothing of the request was kept; retry later."""


class NetworkError(TetherError):
    """No answer: connection refused or reset, timeout, ... (``status`` 0, ``code`` ``network``).

    The server may or may not have acted on the request: retry ``resume_hook`` with the same
    idempotency key (the client already did, ``retries`` times).
    """

    def __init__(self, status: int = 0, code: str = "network", message: str = "network error") -> None:
        super().__init__(status, code, message)


class DecodeError(TetherError):
    """The server answered, but not with the JSON this call expects (``code`` ``decode``)."""


_BY_CODE: Dict[str, Type[TetherError]] = {
    "hook_not_found": HookNotFoundError,
    "hook_expired": HookExpiredError,
    "token_reserved": TokenReservedError,
    "hook_conflict": HookConflictError,
    "invalid_payload": InvalidPayloadError,
    "invalid_json": InvalidJsonError,
    "run_not_found": RunNotFoundError,
    "workflow_not_found": WorkflowNotFoundError,
    "run_finished": RunFinishedError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "run_exists": RunExistsError,
    "unauthorized": UnauthorizedError,
    "payload_too_large": PayloadTooLargeError,
    "invalid_input": InvalidInputError,
    "hook_self_target": HookSelfTargetError,
    "schedule_not_found": ScheduleNotFoundError,
    "schedule_exists": ScheduleExistsError,
    "invalid_schedule": InvalidScheduleError,
    "invalid_link": InvalidLinkError,
    "link_invalid": LinkInvalidError,
    "link_expired": LinkExpiredError,
    "link_used": LinkUsedError,
}

_BY_STATUS: Dict[int, Type[TetherError]] = {
    401: UnauthorizedError,
    413: PayloadTooLargeError,
}


def error_for(status: int, code: str, message: str) -> TetherError:
    """The error for an answer with this status, code and message (the class by ``code``; for
    codes this client does not know, by status for 401 and 413, else :class:`TetherError`)."""
    cls: Optional[Type[TetherError]] = _BY_CODE.get(code)
    if cls is None and code.startswith("storage_"):
        cls = StorageError
    if cls is None:
        cls = _BY_STATUS.get(status, TetherError)
    return cls(status, code, message)
