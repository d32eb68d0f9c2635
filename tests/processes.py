"""Waiting on a `renown` subprocess in a test: the one loop every process test needs."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_for(
    what: str,
    check: Callable[[], bool],
    proc: subprocess.Popen[str] | None,
    *,
    timeout: float = 60,
    every: float = 0.1,
) -> None:
    """Poll ``check`` until true; fail with the process's stderr if it exits first, or
    with ``what`` after ``timeout`` seconds (generous: CI machines are loaded)."""
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"exited ({proc.returncode}) waiting for {what}: {err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
