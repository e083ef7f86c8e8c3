"""Fixtures: a real `tether dev` server per test module (binary from env TETHER_BIN)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator, NamedTuple, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
API_TOKEN = "T"
LISTENING = re.compile(r"tether listening on (http://\S+)")
START_TIMEOUT = 30.0


def under_ci() -> bool:
    """Whether this runs under CI: `CI` set to anything but empty, `0` or `false` (the rule of
    every suite of the repository, crates/tether-test-env)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def tether_bin() -> str:
    """The `tether` binary: env TETHER_BIN, else the workspace's target/debug/tether."""
    env = os.environ.get("TETHER_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(f"TETHER_BIN={env!r} is not an executable file")
        return env
    fallback = REPO / "target" / "debug" / "tether"
    if os.access(fallback, os.X_OK):
        return str(fallback)
    reason = "no tether binary: set TETHER_BIN (e.g. target/debug/tether after `cargo build -p tether-cli`)"
    if under_ci():
        pytest.fail(reason)
    pytest.skip(reason)


class Server(NamedTuple):
    url: str
    api_token: Optional[str]


class _Running:
    """One `tether dev` process on a fresh SQLite file, on a free port."""

    def __init__(self, api_token: Optional[str] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="tether-py-")
        self.api_token = api_token
        args = [tether_bin(), "dev", "--addr", "127.0.0.1:0", "--db", f"sqlite://{self.dir}/t.db"]
        if api_token is not None:
            args += ["--api-token", api_token]
        # The server reads TETHER_* settings from the environment: keep the caller's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
        env.setdefault("RUST_LOG", "warn")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def drain() -> None:
            # Read every line (so the pipe never fills); the first one says where it listens.
            for raw in iter(stdout.readline, b""):
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            first = None
        match = LISTENING.search(first or "")
        if match is None:
            self.stop()
            pytest.fail(f"tether dev did not start (first stdout line {first!r}); stderr:\n{self.stderr_tail()}")
        return match.group(1).rstrip("/")

    def stderr_tail(self, n: int = 40) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A fresh `tether dev` for the test module, without an API token."""
    running = _Running()
    try:
        yield Server(running.url, None)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def auth_server() -> Iterator[Server]:
    """A fresh `tether dev --api-token T` for the test module."""
    running = _Running(API_TOKEN)
    try:
        yield Server(running.url, API_TOKEN)
    finally:
        running.stop()


@pytest.fixture
def anyio_backend() -> str:
    # Async tests run on asyncio (anyio's pytest plugin comes with httpx's anyio dependency).
    return "asyncio"
