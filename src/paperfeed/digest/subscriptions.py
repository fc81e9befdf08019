"""Digest subscriptions: input validation, signed links, and the double opt-in life cycle.

Runs when someone submits a subscribe form, clicks a link from a digest mail, or an admin uses
``paperfeed digest subscribe``. The rules:

* Nothing but a confirmation mail is sent to an address until its confirmation link is used,
  and those are capped per address (2 minutes apart, 5 a day) and per mailbox however it is
  spelled (``victim+1@``, ``victim+2@``: ``mail.mailbox``).
* The requested settings travel *inside* the signed confirmation token, so a stranger who
  re-submits somebody's address can neither change their settings (the owner must click) nor
  learn whether the address is subscribed (the web answer is the same in every case).
* Confirmation tokens expire (3 days) and are single use: confirming rotates ``token_nonce``,
  and so does queueing a newer confirmation mail.
* Manage links (every digest carries a fresh one) expire after 90 days; unsubscribe links never
  expire (unsubscribing must keep working from old mails). Both are bound to ``manage_nonce``.

Forms go through ``GET`` pages that only *show* a button; only ``POST`` changes anything.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from paperfeed.config import Settings
from paperfeed.digest.periods import FREQUENCIES
from paperfeed.mail.mailbox import take_mail_slot
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store
from paperfeed.store.db import Database, utcnow

# Public paths of the web pages the links point at (web/digest_routes.py serves them).
SUBSCRIBE_PATH = "/digest/subscribe"
CONFIRM_PATH = "/digest/confirm"
MANAGE_PATH = "/digest/manage"
UNSUBSCRIBE_PATH = "/digest/unsubscribe"

MAX_EMAIL = 254  # RFC 5321 path limit
MAX_QUERY = 500  # same limit the search box documents
MAX_CATEGORIES = 20
MAX_CATEGORY_LEN = 32
MAX_TOKEN = 4096
CONFIRM_MAX_AGE = timedelta(days=3)
MANAGE_MAX_AGE = timedelta(days=90)
# Anyone can type any address into the form: cap how often one address gets confirmation mail.
CONFIRM_MIN_INTERVAL = timedelta(minutes=2)
CONFIRM_MAX_PER_DAY = 5

_CATEGORY_RE = re.compile(r"^[A-Za-z][A-Za-z-]*(\.[A-Za-z][A-Za-z-]*)?$")  # cs.LG, hep-th, cond-mat.mes-hall
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPLIT_RE = re.compile(r"[\s,;]+")


class SubscriptionError(ValueError):
    """Bad input for a subscription: ``errors`` maps a form field to a message for people."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class TokenError(ValueError):
    """A link that is malformed, tampered with, expired, already used or no longer valid."""


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@dataclass(frozen=True)
class Prefs:
    """What a subscriber gets: how often, about what, and when (local time)."""

    frequency: str = "daily"
    query: str = ""
    categories: tuple[str, ...] = ()
    timezone: str = "UTC"
    send_hour: int = 8
    weekdays_only: bool = True

    @property
    def has_topics(self) -> bool:
        return bool(self.query or self.categories)

    def columns(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency,
            "query": self.query or None,
            "categories": " ".join(self.categories) or None,
            "timezone": self.timezone,
            "send_hour": self.send_hour,
            "weekdays_only": self.weekdays_only,
        }

    def payload(self) -> dict[str, Any]:
        return {
            "f": self.frequency,
            "q": self.query,
            "c": list(self.categories),
            "z": self.timezone,
            "h": self.send_hour,
            "w": self.weekdays_only,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Prefs:
        # Re-validate: a payload was signed by us, but the rules may have tightened since.
        return parse_prefs(
            frequency=data.get("f"),
            query=data.get("q"),
            categories=data.get("c"),
            timezone=data.get("z"),
            send_hour=data.get("h"),
            weekdays_only=data.get("w"),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Prefs:
        return cls(
            frequency=row["frequency"],
            query=row.get("query") or "",
            categories=tuple((row.get("categories") or "").split()),
            timezone=row["timezone"],
            send_hour=int(row["send_hour"]),
            weekdays_only=bool(row.get("weekdays_only", True)),
        )

    def describe(self) -> list[str]:
        """Human-readable lines for pages and mails."""
        when = f"at {self.send_hour:02d}:00 ({self.timezone})"
        if self.frequency == "weekly":
            lines = [f"Weekly, on Mondays {when}"]
        else:
            lines = [f"Daily{', Monday to Friday' if self.weekdays_only else ', every day'} {when}"]
        if self.query:
            lines.append(f"Papers matching: {self.query}")
        if self.categories:
            lines.append(f"Categories: {', '.join(self.categories)}")
        if not self.has_topics:
            lines.append("The most upvoted and trending papers")
        return lines


def _clean_text(value: Any) -> str:
    text = "" if value is None else str(value)
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def parse_prefs(
    *,
    frequency: Any = None,
    query: Any = None,
    categories: Any = None,
    timezone: Any = None,
    send_hour: Any = None,
    weekdays_only: Any = None,
) -> Prefs:
    """Validate raw form/JSON/CLI values into :class:`Prefs`; all problems reported at once."""
    errors: dict[str, str] = {}
    freq = _clean_text(frequency).lower() or "daily"
    if freq not in FREQUENCIES:
        errors["frequency"] = "Choose daily or weekly."
    raw_query = "" if query is None else str(query)
    if _CONTROL_RE.search(raw_query):
        errors["query"] = "The search query contains control characters."
    q = _clean_text(raw_query)
    if len(q) > MAX_QUERY:
        errors["query"] = f"The search query is too long ({len(q)} characters; at most {MAX_QUERY})."
    cats = _parse_categories(categories, errors)
    tz = _clean_text(timezone) or "UTC"
    if len(tz) > 64 or tz not in timezones():
        errors["timezone"] = "Unknown time zone: use a name like Europe/Berlin or America/New_York."
    hour = 8
    if send_hour is not None and str(send_hour).strip() != "":
        try:
            hour = int(str(send_hour).strip())
        except ValueError:
            hour = -1
        if not 0 <= hour <= 23:
            errors["send_hour"] = "The send hour must be a whole number from 0 to 23."
    weekdays = _parse_bool(weekdays_only, default=True)
    if errors:
        raise SubscriptionError(errors)
    return Prefs(freq, q, cats, tz, hour, weekdays)


def _parse_categories(value: Any, errors: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
    raw = " ".join("" if v is None else str(v) for v in items)
    if len(raw) > MAX_CATEGORIES * (MAX_CATEGORY_LEN + 1):
        errors["categories"] = f"Too many categories (at most {MAX_CATEGORIES})."
        return ()
    cats: list[str] = []
    for part in _SPLIT_RE.split(raw.strip()):
        if not part:
            continue
        if len(part) > MAX_CATEGORY_LEN or not _CATEGORY_RE.match(part):
            errors["categories"] = f"{part[:40]!r} is not an arXiv category (like cs.LG or hep-th)."
            return ()
        part = canonical_category(part)
        if part not in cats:
            cats.append(part)
    if len(cats) > MAX_CATEGORIES:
        errors["categories"] = f"Too many categories (at most {MAX_CATEGORIES})."
        return ()
    return tuple(cats)


def canonical_category(name: str) -> str:
    """arXiv's spelling: archive lower case, two-letter subject classes upper case (cs.LG,
    q-bio.NC), longer ones lower case (cond-mat.mes-hall, physics.optics)."""
    archive, _, subject = name.partition(".")
    if not subject:
        return archive.lower()
    return f"{archive.lower()}.{subject.upper() if len(subject) == 2 else subject.lower()}"


def _parse_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def normalize_email(value: Any) -> str:
    """A syntactically valid address, normalised (domain lower-cased, whole address lower-cased
    so Foo@x and foo@x are one subscription). No DNS lookups."""
    raw = "" if value is None else str(value)
    if not raw.strip():
        raise SubscriptionError({"email": "Enter your email address."})
    if len(raw) > MAX_EMAIL or any(c in raw for c in "\r\n\x00"):
        raise SubscriptionError({"email": "That is not a valid email address."})
    try:
        info = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriptionError({"email": f"That is not a valid email address: {exc}"}) from None
    email = info.normalized.lower()
    if len(email) > MAX_EMAIL or len(info.local_part) > 64:  # RFC 5321 limits; servers enforce them
        raise SubscriptionError({"email": "That email address is too long."})
    return email


def new_nonce() -> str:
    return secrets.token_hex(16)


# -- signed links -----------------------------------------------------------------------------


class Tokens:
    """Signed, URL-safe link tokens (itsdangerous), one salt per purpose."""

    def __init__(self, secret: str) -> None:
        self._confirm = URLSafeTimedSerializer(secret, salt="paperfeed.digest.confirm")
        self._manage = URLSafeTimedSerializer(secret, salt="paperfeed.digest.manage")
        self._unsub = URLSafeSerializer(secret, salt="paperfeed.digest.unsubscribe")

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        return cls(settings.secret())

    def confirm(self, sub_id: int, nonce: str, prefs: Prefs) -> str:
        return self._confirm.dumps({"s": sub_id, "n": nonce, "p": prefs.payload()})

    def manage(self, sub_id: int, manage_nonce: str) -> str:
        return self._manage.dumps({"s": sub_id, "m": manage_nonce})

    def unsubscribe(self, sub_id: int, manage_nonce: str) -> str:
        return self._unsub.dumps({"s": sub_id, "m": manage_nonce})

    def read_confirm(self, token: str) -> tuple[int, str, Prefs]:
        data = self._load(self._confirm, token, CONFIRM_MAX_AGE, "confirmation")
        try:
            return int(data["s"]), str(data["n"]), Prefs.from_payload(data["p"])
        except (KeyError, TypeError, ValueError):
            raise TokenError("This confirmation link is not valid.") from None

    def read_manage(self, token: str) -> tuple[int, str]:
        return self._ids(self._load(self._manage, token, MANAGE_MAX_AGE, "settings"))

    def read_unsubscribe(self, token: str) -> tuple[int, str]:
        return self._ids(self._load(self._unsub, token, None, "unsubscribe"))

    @staticmethod
    def _ids(data: Any) -> tuple[int, str]:
        try:
            return int(data["s"]), str(data["m"])
        except (KeyError, TypeError, ValueError):
            raise TokenError("This link is not valid.") from None

    @staticmethod
    def _load(serializer: Any, token: Any, max_age: timedelta | None, what: str) -> Any:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            raise TokenError(f"This {what} link is incomplete or not valid. Copy the whole link from the email.")
        try:
            if max_age is None:
                return serializer.loads(token)
            return serializer.loads(token, max_age=int(max_age.total_seconds()))
        except SignatureExpired:
            raise TokenError(f"This {what} link has expired. Request a new one from the subscribe form.") from None
        except (BadData, UnicodeError, ValueError):
            raise TokenError(
                f"This {what} link is incomplete or not valid. Copy the whole link from the email."
            ) from None


@dataclass
class Links:
    manage_url: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    extra: dict[str, str] = field(default_factory=dict)


def mailbox_of(mail_from: str) -> str:
    from email.utils import parseaddr

    return parseaddr(mail_from)[1] or "digest@localhost"


def links_for(settings: Settings, tokens: Tokens, sub_id: int, manage_nonce: str) -> Links:
    base = settings.base_url.rstrip("/")
    unsub = tokens.unsubscribe(sub_id, manage_nonce)
    return Links(
        manage_url=f"{base}{MANAGE_PATH}?t={tokens.manage(sub_id, manage_nonce)}",
        unsubscribe_url=f"{base}{UNSUBSCRIBE_PATH}?t={unsub}",
        unsubscribe_mailto=f"mailto:{mailbox_of(settings.mail_from)}?subject={quote('unsubscribe ' + unsub)}",
    )


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}{CONFIRM_PATH}?t={token}"


# -- the life cycle ---------------------------------------------------------------------------


def request_subscription(db: Database, email: Any, prefs: Prefs, *, now: datetime | None = None) -> int | None:
    """Queue a confirmation mail for ``email`` asking to apply ``prefs``; creates a ``pending``
    subscription for a new address. Existing subscriptions are never changed here.

    Returns the queued delivery id (send it right away with ``send.send_now``), or None when
    the address (or its mailbox, ``+tags`` aside) already got enough confirmation mail. Callers
    must answer the same way in both cases so the response says nothing about the address.
    """
    email = normalize_email(email)
    now = now or utcnow()
    for attempt in range(3):
        try:
            with db.write() as conn:
                return _request(conn, email, prefs, now)
        except IntegrityError:
            # Two requests for a new address raced: the other inserted it first; go again.
            if attempt == 2:
                raise
    return None  # pragma: no cover


def _request(conn: Any, email: str, prefs: Prefs, now: datetime) -> int | None:
    row = subscription_store.get_subscription_by_email(conn, email)
    nonce = new_nonce()
    if row is None:
        if not take_mail_slot(conn, email, now):
            return None
        sub_id = subscription_store.insert_subscription(
            conn,
            {
                "email": email,
                **prefs.columns(),
                "status": "pending",
                "token_nonce": nonce,
                "manage_nonce": new_nonce(),
                "hard_bounces": 0,
                "created_at": now,
                "confirm_sent_at": now,
            },
        )
        kind = "new"
    else:
        sub_id = int(row["id"])
        recent = row.get("confirm_sent_at")
        if recent is not None and now - recent < CONFIRM_MIN_INTERVAL:
            return None
        if subscription_store.confirmations_since(conn, sub_id, now - timedelta(days=1)) >= CONFIRM_MAX_PER_DAY:
            return None
        if not take_mail_slot(conn, email, now):
            return None
        subscription_store.update_subscription(conn, sub_id, token_nonce=nonce, confirm_sent_at=now)
        kind = "change" if row["status"] == "active" else "new"
    payload = {"kind": kind, "nonce": nonce, "prefs": prefs.payload()}
    return store.insert_delivery(conn, sub_id, f"confirm:{nonce[:16]}", now, payload)


@dataclass
class Pending:
    """What a confirmation link would do (shown on the GET page before the POST)."""

    sub_id: int
    email: str
    prefs: Prefs
    already_active: bool


def check_confirm(db: Database, tokens: Tokens, token: Any) -> Pending:
    sub_id, nonce, prefs = tokens.read_confirm(token)
    with db.read() as conn:
        row = subscription_store.get_subscription(conn, sub_id)
    if row is None or not secrets.compare_digest(row["token_nonce"], nonce):
        raise TokenError("This confirmation link was already used or replaced by a newer one.")
    return Pending(sub_id, row["email"], prefs, row["status"] == "active")


def confirm(
    db: Database,
    tokens: Tokens,
    token: Any,
    *,
    timezone: Any = None,
    send_hour: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply a confirmation link: activate the subscription with the settings it carries.
    The confirm page may adjust the time zone and hour (the link proves the mailbox is theirs)."""
    sub_id, nonce, prefs = tokens.read_confirm(token)
    if timezone is not None or send_hour is not None:
        prefs = parse_prefs(
            frequency=prefs.frequency,
            query=prefs.query,
            categories=list(prefs.categories),
            timezone=prefs.timezone if timezone is None else timezone,
            send_hour=prefs.send_hour if send_hour is None else send_hour,
            weekdays_only=prefs.weekdays_only,
        )
    now = now or utcnow()
    with db.write() as conn:
        row = subscription_store.get_subscription(conn, sub_id)
        if row is None or not secrets.compare_digest(row["token_nonce"], nonce):
            raise TokenError("This confirmation link was already used or replaced by a newer one.")
        confirmed_at = row["confirmed_at"] if row["status"] == "active" and row["confirmed_at"] else now
        subscription_store.update_subscription(
            conn,
            sub_id,
            **prefs.columns(),
            status="active",
            confirmed_at=confirmed_at,
            token_nonce=new_nonce(),  # single use
            manage_nonce=row.get("manage_nonce") or new_nonce(),
            hard_bounces=0,
        )
        return subscription_store.get_subscription(conn, sub_id) or {}


def _by_manage_token(conn: Any, sub_id: int, nonce: str) -> dict[str, Any]:
    row = subscription_store.get_subscription(conn, sub_id)
    stored = (row or {}).get("manage_nonce") or ""
    if row is None or not stored or not secrets.compare_digest(stored, nonce):
        raise TokenError("This link is no longer valid.")
    return row


def manage_view(db: Database, tokens: Tokens, token: Any) -> dict[str, Any]:
    sub_id, nonce = tokens.read_manage(token)
    with db.read() as conn:
        return _by_manage_token(conn, sub_id, nonce)


def update_settings(db: Database, tokens: Tokens, token: Any, prefs: Prefs, *, resume: bool = False) -> dict[str, Any]:
    """Save new settings from the manage page. ``resume`` re-activates an unsubscribed or
    suppressed address: the manage link itself proves the mailbox works and is theirs."""
    sub_id, nonce = tokens.read_manage(token)
    with db.write() as conn:
        row = _by_manage_token(conn, sub_id, nonce)
        values: dict[str, Any] = dict(prefs.columns())
        if resume and row["status"] != "active":
            values.update(status="active", hard_bounces=0, confirmed_at=row["confirmed_at"] or utcnow())
        subscription_store.update_subscription(conn, sub_id, **values)
        return subscription_store.get_subscription(conn, sub_id) or {}


def unsubscribe_view(db: Database, tokens: Tokens, token: Any) -> dict[str, Any]:
    sub_id, nonce = tokens.read_unsubscribe(token)
    with db.read() as conn:
        return _by_manage_token(conn, sub_id, nonce)


def unsubscribe(db: Database, tokens: Tokens, token: Any) -> dict[str, Any]:
    """Stop all digests for the link's address (idempotent)."""
    sub_id, nonce = tokens.read_unsubscribe(token)
    with db.write() as conn:
        row = _by_manage_token(conn, sub_id, nonce)
        if row["status"] != "unsubscribed":
            subscription_store.update_subscription(conn, sub_id, status="unsubscribed")
            row["status"] = "unsubscribed"
        return row


def unsubscribe_from_mail(db: Database, tokens: Tokens, raw: bytes) -> str | None:
    """Handle a message sent to the ``List-Unsubscribe`` mailto address (the MTA pipes it to
    ``paperfeed digest inbound``): a subject ``unsubscribe <token>``. Returns the address
    unsubscribed, or None when the message carries no valid token."""
    msg = message_from_bytes(raw[:1_000_000], policy=policy.default)
    subject = str(msg.get("Subject", ""))
    m = re.search(r"unsubscribe\s+([A-Za-z0-9_.\-]+)", subject, re.IGNORECASE)
    if not m:
        return None
    try:
        return str(unsubscribe(db, tokens, m.group(1))["email"])
    except TokenError:
        return None


def admin_subscribe(db: Database, email: Any, prefs: Prefs, *, confirmed: bool) -> tuple[int, int | None]:
    """``paperfeed digest subscribe``: with ``confirmed`` the admin vouches for the address and
    it becomes active at once; otherwise the normal confirmation mail is queued.
    Returns (subscription id, queued confirmation delivery id or None)."""
    email = normalize_email(email)
    if not confirmed:
        delivery = request_subscription(db, email, prefs)
        with db.read() as conn:
            row = subscription_store.get_subscription_by_email(conn, email)
        return int(row["id"]) if row else 0, delivery
    now = utcnow()
    with db.write() as conn:
        row = subscription_store.get_subscription_by_email(conn, email)
        values = {**prefs.columns(), "status": "active", "hard_bounces": 0}
        if row is None:
            sub_id = subscription_store.insert_subscription(
                conn,
                {
                    "email": email,
                    **values,
                    "token_nonce": new_nonce(),
                    "manage_nonce": new_nonce(),
                    "created_at": now,
                    "confirmed_at": now,
                },
            )
        else:
            sub_id = int(row["id"])
            subscription_store.update_subscription(conn, sub_id, **values, confirmed_at=row["confirmed_at"] or now)
    return sub_id, None


def bulk_activate(db: Database, items: Iterable[tuple[str, Prefs]], *, now: datetime | None = None) -> int:
    """Add many already-confirmed subscribers at once (an admin importing a vetted list, or a
    benchmark). Addresses are validated; raises SubscriptionError naming the first bad one."""
    now = now or utcnow()
    rows = []
    for email, prefs in items:
        rows.append(
            {
                "email": normalize_email(email),
                **prefs.columns(),
                "status": "active",
                "token_nonce": new_nonce(),
                "manage_nonce": new_nonce(),
                "hard_bounces": 0,
                "created_at": now,
                "confirmed_at": now,
            }
        )
    with db.write() as conn:
        for i in range(0, len(rows), 1000):
            subscription_store.insert_subscriptions(conn, rows[i : i + 1000])
    return len(rows)
