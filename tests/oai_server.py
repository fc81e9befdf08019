"""A local OAI-PMH endpoint for the harvester tests: a threaded ``http.server`` on 127.0.0.1 that
replays recorded-style responses from ``tests/fixtures/oai`` according to a per-test script.

A route matches on query parameters; it answers with its responses in order and repeats the last
one. Every request is logged with its time so tests can check retries, waits and resume points.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "oai"


@dataclass
class Reply:
    status: int = 200
    fixture: str | None = None  # file in tests/fixtures/oai
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return (FIXTURES / self.fixture).read_bytes() if self.fixture else self.body


@dataclass
class Request:
    at: float
    params: dict[str, str]


class OAIReplayServer:
    def __init__(self) -> None:
        self.routes: list[tuple[dict[str, str], list[Reply]]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                params = dict(parse_qsl(urlsplit(self.path).query))
                reply = server._answer(params)
                body = reply.content()
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/oai"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, match: dict[str, str], *replies: Reply) -> None:
        """Answer requests whose query contains ``match`` with ``replies`` (in order, last repeated)."""
        self.routes.append((match, list(replies)))

    def _answer(self, params: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Request(time.monotonic(), params))
            for match, replies in self.routes:
                if all(params.get(k) == v for k, v in match.items()):
                    return replies.pop(0) if len(replies) > 1 else replies[0]
        return Reply(404, body=b"no route for this request in the test script")

    def start(self) -> OAIReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
