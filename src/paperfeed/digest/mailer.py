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

import os
import re
import smtplib
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from paperfeed.config import Settings


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
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred). The SMTP policy
    rejects CR/LF in header values, so nothing user-supplied can inject headers."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime((date or datetime.now(UTC)).replace(tzinfo=UTC))
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text, cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg


class Transport(Protocol):
    def send(self, msg: EmailMessage, sender: str, to: str) -> None: ...

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

    def send(self, msg: EmailMessage, sender: str, to: str) -> None:
        conn = self._connection()
        data = msg.as_bytes(policy=SMTP_POLICY)
        try:
            conn.sendmail(sender, [to], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, resp = exc.recipients.get(to, (550, b"refused"))
            raise _classify(int(code), _reply_text(resp)) from None
        except smtplib.SMTPSenderRefused as exc:
            # MAIL FROM refused: a problem with our configuration or the server, not the recipient.
            self.close()
            raise TransportDown(f"sender {sender} refused: {exc.smtp_code} {_reply_text(exc.smtp_error)}") from None
        except smtplib.SMTPServerDisconnected as exc:
            self._conn = None
            raise TransportDown(f"connection to {self.config.describe()} lost: {exc}") from None
        except smtplib.SMTPResponseException as exc:  # SMTPDataError and the rest
            err = _classify(exc.smtp_code, _reply_text(exc.smtp_error))
            if isinstance(err, TransportDown):
                self.close()
            raise err from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TransportDown(f"SMTP error with {self.config.describe()}: {exc}") from None
        self._count += 1
        self._last_used = time.monotonic()

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

    def path_for(self, msg: EmailMessage) -> Path:
        mid = str(msg.get("Message-ID", "")).strip("<> ") or f"msg-{time.time_ns()}"
        return self.directory / (_UNSAFE.sub("_", mid)[:200] + ".eml")

    def send(self, msg: EmailMessage, sender: str, to: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path_for(msg)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(msg.as_bytes(policy=SMTP_POLICY))
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
