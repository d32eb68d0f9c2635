"""`renown demo --serve`: the demo leaves the API running on its database, over real HTTP,
and the URLs and keys it prints work."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serve_prints_working_urls_and_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "renown.cli", "demo", "--preset", "small", "--serve",
         "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any(x.startswith("  moderator-b.demo: ") for x in seen):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)[-3000:]
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        out = "".join(seen)
        standing = re.search(r"standing of the top account: (http://\S+)", out)
        moderation = re.search(r"moderator queue: +(http://\S+)", out)
        keys = dict(re.findall(r"^  (moderator-[ab]\.demo): (rk_\S+)$", out, re.MULTILINE))
        assert standing and moderation and len(keys) == 2, out[-3000:]
        top = standing.group(1).rsplit("/", 1)[1]
        base = f"http://127.0.0.1:{port}"
        assert standing.group(1).startswith(base)

        deadline = time.monotonic() + 30
        while True:  # uvicorn starts after the keys are printed
            try:
                r = httpx.get(standing.group(1), timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and top in r.text
        assert httpx.get(f"{base}/v1/scores/{top}").json()["scores"][0]["rank"] == 1
        assert httpx.get(moderation.group(1)).status_code == 200
        # The detectors raised flags in the demo's epoch; the printed key reads the queue.
        auth = {"Authorization": f"Bearer {keys['moderator-a.demo']}"}
        flags = httpx.get(f"{base}/v1/flags", headers=auth)
        assert flags.status_code == 200 and flags.json()["total"] > 0
        assert httpx.get(f"{base}/v1/flags").status_code == 401  # and without it: refused

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        reader.join(5)
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert "API stopped." in "".join(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
