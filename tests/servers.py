"""Loopback servers for tests: a free port, the app under a real uvicorn in a thread, and
``paperfeed serve`` as a real subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The app under a real uvicorn server on a free loopback port, in a background thread,
    stopped when the ``with`` block ends."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServeProcess:
    """``paperfeed serve`` as its own process (the real CLI, uvicorn and its settings) on a free
    loopback port, stopped (SIGTERM to its process group) when the ``with`` block ends; its output
    goes to ``log``. The pipeline (harvest, embedding, digests) runs only with ``pipeline=True``."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, pipeline: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PAPERFEED_BASE_URL": self.url, **env}
        self.log = log
        quiet = [] if pipeline else ["--no-pipeline"]
        self.args = ["--port", str(self.port), *quiet, "--log-level", "warning", *args]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "paperfeed"), "serve", *self.args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # A start-up deadline, not a timing check: on a busy 2-core machine (load 20-30, several
        # test runs at once) importing the app alone took 45 s per worker.
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/about/ranking", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"paperfeed serve did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
