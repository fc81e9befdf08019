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
    gate: threading.Event | None = None  # when set up: the answer waits until the test opens it

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
                if reply.gate is not None:
                    reply.gate.wait(120)
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

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client died waiting (a drill kills it): nothing to answer

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


# -- a synthetic listing: many records over many pages ----------------------------------------

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
    "<responseDate>2026-12-01T22:00:00Z</responseDate>\n<request>http://127.0.0.1/oai</request>\n<ListRecords>\n"
)
_TOPICS = ("graph neural networks", "diffusion models", "protein folding", "speech recognition", "robot grasping")


def synthetic_id(i: int) -> str:
    return f"2611.{10000 + i:05d}"


def _record(i: int, stamp: str) -> str:
    topic = _TOPICS[i % len(_TOPICS)]
    return (
        f"<record><header><identifier>oai:arXiv.org:{synthetic_id(i)}</identifier><datestamp>{stamp}</datestamp>"
        "<setSpec>cs</setSpec></header><metadata>"
        '<arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
        f"<id>{synthetic_id(i)}</id><created>2026-11-2{i % 8 + 1}</created>"
        f"<authors><author><keyname>Author{i}</keyname><forenames>Ada</forenames></author></authors>"
        f"<title>Synthetic study {i} of {topic}</title><categories>cs.LG</categories>"
        f"<abstract>We study {topic} in setting {i}, with results on benchmark {i % 7}.</abstract>"
        "</arXiv></metadata></record>\n"
    )


def synthetic_listing(
    server: OAIReplayServer, *, pages: int, per_page: int, set_spec: str = "cs", stamp: str = "2026-11-30"
) -> list[str]:
    """Route a ListRecords of ``pages`` pages of ``per_page`` records for ``set_spec`` (whatever
    ``from`` is asked) and return the arXiv ids it holds, in order."""
    total = pages * per_page
    for page in range(pages):
        body = _HEAD + "".join(_record(i, stamp) for i in range(page * per_page, (page + 1) * per_page))
        token = f"syn|{page + 1}" if page + 1 < pages else ""  # an empty token ends the list
        body += f'<resumptionToken cursor="{page * per_page}" completeListSize="{total}">{token}</resumptionToken>\n'
        body += "</ListRecords>\n</OAI-PMH>\n"
        match = {"verb": "ListRecords", "set": set_spec} if page == 0 else {"resumptionToken": f"syn|{page}"}
        server.route(match, Reply(body=body.encode()))
    return [synthetic_id(i) for i in range(total)]
