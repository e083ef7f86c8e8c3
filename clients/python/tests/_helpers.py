"""Small helpers for the tests."""

from __future__ import annotations

import time
import uuid
from typing import Awaitable, Callable, Optional, TypeVar

import anyio
import pytest

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(predicate: Callable[[], Optional[T]], timeout: float = 10.0) -> T:
    """Call `predicate` until it returns something truthy, and return it (fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    last: Optional[T] = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    pytest.fail(f"condition not met within {timeout}s (last value {last!r})")


async def await_until(predicate: Callable[[], Awaitable[Optional[T]]], timeout: float = 10.0) -> T:
    """`wait_until` for a coroutine predicate."""
    deadline = time.monotonic() + timeout
    last: Optional[T] = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await anyio.sleep(0.05)
    pytest.fail(f"condition not met within {timeout}s (last value {last!r})")
