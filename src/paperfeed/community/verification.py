"""Email verification: a web sign-up's address is confirmed by a signed, single-use, expiring
link before the account may comment or submit (reading and voting need no confirmation).

Runs at sign-up (the first mail, after the response), from the "send the link again" button on
/account (capped per account, and per mailbox like all account mail), and on /verify (GET shows
what the link does and a button, so mail scanners that follow links confirm nothing; POST
confirms). The link carries the account id, the address and a nonce stored on the account
(``users.verify_nonce``): a newer link replaces older ones, using one clears it, and it expires
after :data:`VERIFY_TTL` by the injectable clock. An address that already belongs to another
account gets a notice instead of a link, so sign-up answers the same for every address.
Accounts made by the operator (``paperfeed user create``) are confirmed from the start.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadData, URLSafeSerializer

from paperfeed.community import account_mail
from paperfeed.community.core import Community, User, require_active
from paperfeed.community.errors import CommunityError, Conflict
from paperfeed.community.ratelimit import bucket, epoch_seconds
from paperfeed.mail.mailbox import take_mail_slot
from paperfeed.store import community_store as store

VERIFY_PATH = "/verify"
VERIFY_TTL = timedelta(days=3)
MAX_TOKEN = 1000
_INVALID = "This confirmation link is incomplete or not valid. Copy the whole link from the email."
_STALE = "This confirmation link was already used or replaced by a newer one."

Job = Callable[[], None]


@dataclass(frozen=True)
class LinkInfo:
    """What a confirmation link would do (shown on the GET page)."""

    username: str
    address: str


def _serializer(c: Community) -> URLSafeSerializer:
    return URLSafeSerializer(c.settings.secret(), salt="paperfeed.account.verify")


def mail_confirmation(c: Community, user_id: int) -> None:
    """Send an unconfirmed account its confirmation link - or, when another account already
    owns the address, a notice to that owner. Meant to run after the response; capped per mailbox."""
    now = c.now()
    nonce = secrets.token_hex(16)
    with c.db.write() as conn:
        row = store.get_user(conn, user_id)
        if row is None or row["verified_at"] is not None or not row["pending_email"] or row["banned"]:
            return
        address = row["pending_email"]
        if not take_mail_slot(conn, address, now):
            return
        owner = store.get_user_by_email(conn, address)
        if owner is None and store.set_verify_nonce(conn, user_id, nonce) is None:
            return
    if owner is not None:
        account_mail.send_address_in_use(c, owner["username"], address)
        return
    expires = int(epoch_seconds(now + VERIFY_TTL))
    token = _serializer(c).dumps({"u": user_id, "n": nonce, "e": address, "x": expires})
    link = f"{c.settings.base_url.rstrip('/')}{VERIFY_PATH}?t={token}"
    account_mail.send_confirm_link(c, row["username"], address, link, VERIFY_TTL.days)


def _read(c: Community, token: str) -> tuple[int, str, str]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise CommunityError(_INVALID)
    try:
        data = _serializer(c).loads(token)
        user_id, nonce, address, expires = int(data["u"]), str(data["n"]), str(data["e"]), float(data["x"])
    except (BadData, KeyError, TypeError, ValueError, UnicodeError):
        raise CommunityError(_INVALID) from None
    if epoch_seconds(c.now()) > expires:
        raise CommunityError("This confirmation link has expired: send a new one from your account page.")
    return user_id, nonce, address


def check_link(c: Community, token: str) -> LinkInfo:
    """What the link would confirm, or a CommunityError saying why it cannot (changes nothing)."""
    user_id, nonce, address = _read(c, token)
    with c.db.read() as conn:
        row = store.get_user(conn, user_id)
        current = store.get_verify_nonce(conn, user_id) if row else None
    if row is None or not current or not secrets.compare_digest(current, nonce) or row["pending_email"] != address:
        raise CommunityError(_STALE)
    return LinkInfo(row["username"], address)


def verify_email(c: Community, token: str) -> User:
    """Use a confirmation link: the address becomes the account's (sign-in, resets) and the
    account may comment and submit. Works once."""
    user_id, nonce, address = _read(c, token)
    with c.db.write() as conn:
        outcome = store.confirm_email(conn, user_id, nonce, address, c.now())
    if outcome == "taken":
        raise Conflict("That address already belongs to another account, so this one cannot use it.")
    if outcome != "ok":
        raise CommunityError(_STALE)
    with c.db.read() as conn:
        row = store.get_user(conn, user_id)
    assert row is not None
    return User.from_row(row)


def resend(c: Community, user: User | None) -> Job:
    """The "send the link again" button: checks and counts now, returns the mail job for after
    the response (a newer link replaces the older ones)."""
    user = require_active(user)
    if user.verified:
        raise CommunityError("Your email address is already confirmed.")
    if not user.pending_email:
        raise CommunityError("This account has no address to confirm.")
    c.rate_limiter.hit(bucket("verify:user", user.id, c.limits.verify_user), what="confirmation mails")
    return lambda: mail_confirmation(c, user.id)
