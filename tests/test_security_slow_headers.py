"""Issue 10: slow-header connections used to stay open for ever. Against the real ``paperfeed
serve`` on loopback: a connection that never finishes its request headers, or sends nothing, is
closed by the server (408 when part of a request came), also on a kept-alive connection after a
first request; oversized headers get a 431; complete requests are unaffected. The waits below are
generous upper bounds for a loaded machine, not measurements."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from paperfeed.config import Settings

from .servers import ServeProcess

pytestmark = pytest.mark.slow

GENEROUS = 60.0  # seconds a test waits for the server to hang up (the deadline is 2 s here)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("slow-headers")
    env = {"PAPERFEED_HOME": str(tmp / "home"), "PAPERFEED_HEADER_TIMEOUT": "2"}
    with ServeProcess(env, tmp / "serve.log") as s:
        yield s
    log = (tmp / "serve.log").read_text()
    assert "Traceback" not in log, log


def _connect(server: ServeProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS)
    sock.settimeout(GENEROUS)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {GENEROUS:.0f} s")
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response on a kept-alive connection: (status line + headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data[:200]!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head, body


def test_a_partial_header_is_cut_off(server: ServeProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /about/ranking HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_a_silent_connection_is_closed(server: ServeProcess) -> None:
    with _connect(server) as sock:
        assert _read_until_closed(sock) == b""


def test_a_kept_alive_connection_cannot_stall_its_next_request(server: ServeProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /about/ranking HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ") and body.rstrip().endswith(b"</html>")
        sock.sendall(b"GET /about/ranking HTTP/1.1\r\nHo")
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_oversized_headers_get_431(server: ServeProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for i in range(40):  # 80 KB of headers, never finished
                sock.sendall(b"X-Filler-%d: %s\r\n" % (i, b"a" * 2000))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and hung up while we were still sending
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_complete_requests_still_work(server: ServeProcess) -> None:
    with _connect(server) as sock:
        for _ in range(3):  # several requests on one kept-alive connection
            sock.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ") and body.startswith(b"{"), head[:200]


def test_timeouts_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().header_timeout, Settings().keep_alive_timeout) == (10.0, 5.0)
    monkeypatch.setenv("PAPERFEED_HEADER_TIMEOUT", "3.5")
    monkeypatch.setenv("PAPERFEED_KEEP_ALIVE_TIMEOUT", "20")
    s = Settings.from_env()
    assert (s.header_timeout, s.keep_alive_timeout) == (3.5, 20.0)
    monkeypatch.setenv("PAPERFEED_HEADER_TIMEOUT", "0")
    with pytest.raises(ValueError, match="PAPERFEED_HEADER_TIMEOUT"):
        Settings.from_env()
