"""Database faults as prompt, plain answers: 503 while the database is unreachable, 507 on a full disk.

An ASGI middleware around the whole app (sessions, CSRF and token checks included, since they
read the database too). When a request fails because the database is down, restarting or out of
connections (``store.faults.Fault.UNAVAILABLE``) the visitor gets ``503`` with ``Retry-After`` and
a page or ``{"detail", "error"}`` that says so; when a write fails because the disk is full
(``Fault.FULL``) the answer is ``507`` (reads keep working: they write nothing). Nothing was
committed in either case (the transaction failed), so a client may safely retry. The operator's
log gets one warning line per fault kind every ``LOG_EVERY_S`` seconds (with the count of
requests refused meanwhile), not a traceback per request. Any other error, and a fault after the
response has started, goes on to the generic 500 handler as before.

Recovery needs nothing here: the engine's pre-ping replaces dead pooled connections on their next
checkout (``store/db.py``), so the first request after the database returns is served normally.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperfeed.store.faults import Fault, QuietLog, classify, describe
from paperfeed.web.respond import error_response

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0

ANSWERS: dict[Fault, tuple[int, int, str, str]] = {
    # fault: (status, Retry-After seconds, JSON error code, message)
    Fault.UNAVAILABLE: (
        503,
        5,
        "database_unavailable",
        "The database is not reachable right now (it may be restarting). Nothing was saved; "
        "please try again in a few seconds.",
    ),
    Fault.FULL: (
        507,
        60,
        "storage_full",
        "The server's disk is full, so nothing can be saved right now (nothing was saved). "
        "Reading works as usual; please try again later.",
    ),
}


class Availability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.quiet = QuietLog(LOG_EVERY_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as err:
            fault = classify(err)
            if fault is None or started:
                raise
            status, retry_after, code, message = ANSWERS[fault]
            what = "database unavailable" if fault is Fault.UNAVAILABLE else "storage full"
            self.quiet.warn(log, code, "%s: %s %s answered %d: %s", what, scope["method"], scope["path"], status,
                            describe(err))  # fmt: skip
            request = Request(scope)
            response = error_response(request, status, message, visitor=False, error=code)
            response.headers["Retry-After"] = str(retry_after)
            response.headers["Cache-Control"] = "no-store"
            await response(scope, receive, send)
