"""A real SMTP server on loopback for tests: aiosmtpd on 127.0.0.1:<free port>, capturing every
accepted message, and able to answer chosen recipients with a 4xx/5xx reply (greylisting,
bounces). Import the ``smtp_sink`` fixture into a test module, or use :class:`SmtpSink` directly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from .servers import free_port


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def msg(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.msg["Message-ID"])


class SmtpSink:
    """The aiosmtpd handler plus its controller."""

    def __init__(self) -> None:
        self.messages: list[Captured] = []
        self.rcpt_attempts: dict[str, int] = defaultdict(int)
        self._rules: dict[str, list[Any]] = {}  # address -> [reply, remaining times or None]
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller: Controller | None = None
        self.delay = 0.0  # seconds to wait before accepting each message (a slower server)

    # -- configuration ------------------------------------------------------------------------
    def refuse(self, address: str, reply: str, times: int | None = 1) -> None:
        """Answer RCPT TO:<address> with ``reply`` (e.g. ``451 4.7.1 try later``) ``times`` times
        (None: always)."""
        with self._lock:
            self._rules[address.lower()] = [reply, times]

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    # -- aiosmtpd hooks -----------------------------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        key = address.lower()
        with self._lock:
            self.rcpt_attempts[key] += 1
            rule = self._rules.get(key)
            if rule is not None:
                reply, times = rule
                if times is None or times > 0:
                    if times is not None:
                        rule[1] = times - 1
                    return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 Message accepted"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    # -- reading ------------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def to(self, address: str) -> list[Captured]:
        with self._lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def by_recipient(self) -> dict[str, list[Captured]]:
        out: dict[str, list[Captured]] = defaultdict(list)
        with self._lock:
            for m in self.messages:
                for r in m.rcpt_tos:
                    out[r.lower()].append(m)
        return out

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.01)
        return self.count() >= n


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
