"""The server's own processes (ingress, worker, sink) as managed child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """One child in its own process group, stopped with SIGTERM (then SIGKILL)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str],
        log_file: Path | None = None,
    ) -> None:
        self.name = name
        self._args = args
        self._env = {**os.environ, **env}
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process.pid

    def start(self, ready: Callable[[], bool] | None = None, timeout: float = 30) -> None:
        if self.log_file is not None:
            self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            self._args,
            cwd=REPO_ROOT,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        if ready is None:
            return
        deadline = time.monotonic() + timeout
        while not ready():
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._process.returncode} at start-up"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} not ready after {timeout} s")
            time.sleep(0.1)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up at all."""
        if self.is_running():
            os.killpg(self.pid, signal.SIGKILL)
            if self._process is not None:
                self._process.wait()

    def stop(self, timeout: float = 15) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def python_script(script: str, *args: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / script), *args]


def http_answers(url: str) -> Callable[[], bool]:
    """Readiness probe: the URL answers HTTP at all (any status)."""

    def probe() -> bool:
        try:
            # Long enough for a health check that waits on an unreachable backend.
            httpx.get(url, timeout=5.0)
        except httpx.HTTPError:
            return False
        return True

    return probe


def log_contains(path: Path, text: str) -> Callable[[], bool]:
    """Readiness probe: the child has written ``text`` to its log."""

    def probe() -> bool:
        try:
            return text in path.read_text(errors="replace")
        except FileNotFoundError:
            return False

    return probe
