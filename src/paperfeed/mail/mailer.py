"""Mail transport: build RFC 5322 messages and hand them to SMTP, or to the outbox directory.

Configured by ``PAPERFEED_SMTP_URL``:

* ``smtp://[user:pass@]host[:port]`` plain SMTP (port 25), ``?starttls=1`` upgrades with
  STARTTLS (default port 587 then); ``smtps://...`` implicit TLS (port 465).
* Optional query parameters: ``timeout=<seconds>`` (default 30), ``verify=0`` to accept a
  self-signed certificate (local testing only), ``helo=<name>``.
* Unset: every message is written to ``settings.outbox_dir`` as ``<message-id>.eml`` (atomic
  rename) - the demo default. A message written twice lands in the same file.

Failures are mapped to three exceptions the sender acts on: :class:`TemporaryFailure` (4xx for
this recipient: retry later), :class:`PermanentFailure` (5xx: a hard bounce) and
:class:`TransportDown` (cannot talk to the server at all: nothing is the recipient's fault).
One SMTP connection is reused for many messages (``per_connection``), one message per recipient.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from paperfeed.config import Settings

CRLF = "\r\n"


class MailError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(MailError):
    """The server refused this recipient or message for now (4xx)."""


class PermanentFailure(MailError):
    """The server refused this recipient or message for good (5xx)."""


class TransportDown(MailError):
    """No usable connection (refused, timed out, dropped, authentication failed, 421)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    verify: bool = True
    helo: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """``smtp://user:pass@host:port?starttls=1`` -> config; ValueError with a clear message."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"PAPERFEED_SMTP_URL is not a valid URL: {exc}") from None
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError("PAPERFEED_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("PAPERFEED_SMTP_URL has no host name")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "0").lower() in {"1", "true", "yes"}
        implicit = parts.scheme == "smtps"
        if implicit and starttls:
            raise ValueError("PAPERFEED_SMTP_URL: smtps:// already uses TLS; drop starttls=1")
        try:
            timeout = float(query.get("timeout", "30"))
        except ValueError:
            raise ValueError("PAPERFEED_SMTP_URL: timeout must be a number of seconds") from None
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 587 if starttls else 25),
            implicit_tls=implicit,
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            verify=query.get("verify", "1").lower() not in {"0", "false", "no"},
            helo=query.get("helo") or None,
        )

    def describe(self) -> str:
        """For logs: never includes the password."""
        user = f"{self.username}@" if self.username else ""
        tls = " (TLS)" if self.implicit_tls else " (STARTTLS)" if self.starttls else ""
        return f"smtp://{user}{self.host}:{self.port}{tls}"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message ready for the wire: envelope sender and recipient plus the RFC 5322 bytes."""

    sender: str  # envelope MAIL FROM (a bare address)
    to: str
    message_id: str
    data: bytes


_BAD_HEADER_CHARS = re.compile(r"[\r\n\x00]")


def _header(name: str, value: str) -> bytes:
    """``Name: value`` folded to 78 columns; non-ASCII values as RFC 2047 encoded words.
    Line breaks in a value are refused: nothing user-supplied can add a header."""
    if _BAD_HEADER_CHARS.search(value):
        raise ValueError(f"the {name} header must not contain line breaks")
    if not value.isascii():
        return _encoded_header(name, value)
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > 78 and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return (CRLF.join(lines) + CRLF).encode("ascii")


@lru_cache(maxsize=16)
def _parse_sender(sender: str) -> tuple[str, str]:
    return parseaddr(sender)


@lru_cache(maxsize=1024)
def _encoded_header(name: str, value: str) -> bytes:
    # Cached: a run mails the same subject to many subscribers, and RFC 2047 encoding is slow.
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}{CRLF}".encode("ascii")


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(body, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> OutgoingMessage:
    """A multipart/alternative message (plain text first, HTML preferred), quoted-printable.

    Built by hand rather than with ``email.message.EmailMessage``: that class re-parses and
    re-folds every header and costs 10-30 ms per message, which a 10,000-subscriber run cannot
    afford. The rules it enforces are kept: no CR/LF/NUL in any header value (ValueError), and
    every message the tests see is parsed back with the stdlib parser.
    """
    name, address = _parse_sender(sender)
    if not address or _BAD_HEADER_CHARS.search(sender) or _BAD_HEADER_CHARS.search(to) or "@" not in to:
        raise ValueError("sender and recipient must be single valid addresses")
    when = format_datetime((date or datetime.now(UTC)).replace(tzinfo=UTC))
    out = [
        _header("From", formataddr((name, address), charset="utf-8")),
        _header("To", to),
        _header("Subject", subject),
        _header("Date", when),
        _header("Message-ID", message_id),
        b"MIME-Version: 1.0\r\n",
    ]
    out.extend(_header(k, v) for k, v in (headers or {}).items())
    plain = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    if html is None:
        out.append(plain)
        out.append(_qp(text))
    else:
        # "=_" never occurs in quoted-printable output, so the boundary cannot clash with a body.
        boundary = "=_pf_" + hashlib.blake2b(message_id.encode(), digest_size=12).hexdigest()
        out.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode())
        out.append(f"--{boundary}\r\n".encode() + plain + _qp(text))
        out.append(f"\r\n--{boundary}\r\n".encode())
        out.append(b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n')
        out.append(_qp(html))
        out.append(f"\r\n--{boundary}--\r\n".encode())
    return OutgoingMessage(address, to, message_id, b"".join(out))


class Transport(Protocol):
    def send(self, msg: OutgoingMessage) -> None: ...

    def close(self) -> None: ...


def _classify(code: int, text: str) -> MailError:
    if code == 421:  # the server is closing the connection: not about this recipient
        return TransportDown(f"{code} {text}", code)
    if 400 <= code < 500:
        return TemporaryFailure(f"{code} {text}", code)
    if 500 <= code < 600:
        return PermanentFailure(f"{code} {text}", code)
    return TransportDown(f"unexpected SMTP reply {code} {text}", code)


def _reply_text(resp: bytes | str) -> str:
    return (resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp))[:500]


class SMTPTransport:
    """A reused SMTP connection; reconnects every ``per_connection`` messages or after errors."""

    def __init__(self, config: SmtpConfig, *, per_connection: int = 1000) -> None:
        self.config = config
        self.per_connection = per_connection
        self._conn: smtplib.SMTP | None = None
        self._count = 0
        self._last_used = 0.0

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.config.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout, context=self._ssl_context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout)
            conn.ehlo_or_helo_if_needed()
            if cfg.starttls:
                conn.starttls(context=self._ssl_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportDown(f"SMTP login refused by {cfg.describe()}: {exc.smtp_code}", exc.smtp_code) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise TransportDown(f"cannot connect to {cfg.describe()}: {exc}") from None
        self._count = 0
        return conn

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None and (
            self._count >= self.per_connection or time.monotonic() - self._last_used > 20 and not self._alive()
        ):
            self.close()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _alive(self) -> bool:
        # An idle connection may have been closed by the server; check before reusing it.
        try:
            return self._conn is not None and self._conn.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def send(self, msg: OutgoingMessage) -> None:
        """One SMTP transaction (MAIL, RCPT, DATA) for one recipient. Addresses were validated
        when they were stored, so they go out as they are (smtplib's ``sendmail`` would
        re-parse them on every message)."""
        conn = self._connection()
        sender, to = msg.sender, msg.to
        try:
            code, resp = conn.docmd("MAIL", f"FROM:<{sender}>")
            if code != 250:
                # MAIL FROM refused: our configuration or the server, not the recipient's fault.
                self.close()
                raise TransportDown(f"sender {sender} refused: {code} {_reply_text(resp)}", code)
            code, resp = conn.docmd("RCPT", f"TO:<{to}>")
            if code not in (250, 251):
                err = _classify(code, _reply_text(resp))
                self._reset(conn)
                raise err
            code, resp = conn.data(msg.data)
            if code != 250:
                raise _classify(code, _reply_text(resp))
        except TransportDown:
            self.close()
            raise
        except MailError:
            raise
        except smtplib.SMTPServerDisconnected as exc:
            self._conn = None
            raise TransportDown(f"connection to {self.config.describe()} lost: {exc}") from None
        except smtplib.SMTPResponseException as exc:  # DATA refused before the message (no 354)
            err = _classify(exc.smtp_code, _reply_text(exc.smtp_error))
            if isinstance(err, TransportDown):
                self.close()
            else:
                self._reset(conn)
            raise err from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TransportDown(f"SMTP error with {self.config.describe()}: {exc}") from None
        self._count += 1
        self._last_used = time.monotonic()

    def _reset(self, conn: smtplib.SMTP) -> None:
        # After a refused recipient the transaction must be reset before the next MAIL FROM.
        try:
            if conn.rset()[0] != 250:
                self.close()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            try:
                conn.close()
            except OSError:
                pass


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class OutboxTransport:
    """Writes each message to ``directory/<message-id>.eml`` (temp file + fsync + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, msg: OutgoingMessage) -> Path:
        mid = msg.message_id.strip("<> ") or f"msg-{time.time_ns()}"
        return self.directory / (_UNSAFE.sub("_", mid)[:200] + ".eml")

    def send(self, msg: OutgoingMessage) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path_for(msg)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(msg.data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TransportDown(f"cannot write to the outbox {self.directory}: {exc}") from None

    def close(self) -> None:
        return None


def open_transport(settings: Settings, *, per_connection: int = 1000) -> Transport:
    """SMTP when ``settings.smtp_url`` is set, else the outbox directory."""
    if settings.smtp_url:
        return SMTPTransport(SmtpConfig.parse(settings.smtp_url), per_connection=per_connection)
    return OutboxTransport(settings.outbox_dir)


def describe_transport(settings: Settings) -> str:
    if settings.smtp_url:
        try:
            return SmtpConfig.parse(settings.smtp_url).describe()
        except ValueError as exc:
            return f"invalid SMTP URL ({exc})"
    return f"outbox directory {settings.outbox_dir}"
