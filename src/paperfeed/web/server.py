"""uvicorn's HTTP protocol with a deadline and a size cap for request headers.

uvicorn (0.54) closes idle keep-alive connections (``timeout_keep_alive``) but has no timeout for
reading a request: a client that opens a connection and sends nothing, or trickles a header a
byte at a time, holds its connection (and a slot of the worker's file descriptors) for ever, and
httptools puts no bound on the size of the headers either. ``paperfeed serve`` runs uvicorn with
:class:`HeaderDeadlineProtocol` (``http=...``), which closes a connection whose request headers
are not complete ``header_timeout`` seconds after the connection opened or after the first byte
of a later request on it (with a 408 when part of a request came), and answers 431 once the
headers of one request pass :data:`MAX_HEADER_BYTES`. Request *bodies* are not timed here (the
app reads them at its own pace, and the body size is capped by the app); a reverse proxy bounds
slow bodies (see the README's deployment section).

The deadline is read from the settings (``PAPERFEED_HEADER_TIMEOUT``) once per worker process:
uvicorn builds protocols itself and hands them only its own ``Config``.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from paperfeed.config import Settings

MAX_HEADER_BYTES = 64 * 1024  # request line + headers of one request; browsers send < 8 KB


@cache
def _configured_timeout() -> float:
    return Settings.from_env().header_timeout


def _reply(transport: asyncio.Transport, status: bytes, message: bytes) -> None:
    """A last, minimal answer and the end of the connection."""
    if not transport.is_closing():
        transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message
        )
    transport.close()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus the header deadline and size cap (see the module docstring).

    "Waiting for headers" means: no request on this connection yet, or the last one is answered
    and bytes of the next have come. The parser creates a new ``cycle`` when it has read a
    request's headers, so ``cycle`` changing is the sign that the headers are complete; the
    protocol needs no parser-specific hook.
    """

    header_timeout: float | None = None  # None: from the settings (PAPERFEED_HEADER_TIMEOUT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since_cycle: Any = None  # the cycle that was current when the wait began
        self._header_bytes = 0

    def _timeout(self) -> float:
        return self.header_timeout if self.header_timeout is not None else _configured_timeout()

    def _start_wait(self) -> None:
        self._cancel_wait()
        self._waiting_since_cycle = self.cycle
        self._header_bytes = 0
        self._deadline = self.loop.call_later(self._timeout(), self._deadline_passed)

    def _cancel_wait(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows BaseTransport the same way
        super().connection_made(transport)
        self._start_wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_wait()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.cycle is not None and self.cycle.response_complete:
            self._start_wait()  # the first bytes of the next request on a kept-alive connection
        waiting = self._deadline is not None
        super().data_received(data)
        if not waiting:
            return
        if self.cycle is not self._waiting_since_cycle:
            self._cancel_wait()  # the parser has the whole header: a request is under way
            return
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES and self.transport is not None:
            self._cancel_wait()
            _reply(self.transport, b"431 Request Header Fields Too Large", b"Request headers too large.")

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing() or self.cycle is not self._waiting_since_cycle:
            return
        if self._header_bytes:
            _reply(self.transport, b"408 Request Timeout", b"The request headers did not arrive in time.")
        else:
            self.transport.close()  # nothing was asked: just hang up, like an idle keep-alive
