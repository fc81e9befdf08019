"""Accounts: sign-up (web: address confirmed later, see ``verification``; operator: confirmed),
throttled sign-in, password change and reset by mailed link, personal API tokens. Runs on the
account pages, on every Bearer-authenticated API call, and from ``paperfeed user create``.

Passwords are hashed with argon2id (argon2-cffi); hashes are upgraded on sign-in when the
parameters change. Reset links and API tokens are 256-bit random strings stored only as their
sha256 (a fast hash is enough for secrets with that much entropy). A password change or reset
ends every server-side session of the user and revokes every API token. Tokens carry scopes
(``SCOPES``); ``moderate`` is granted only by moderators and admins, explicitly.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email

from paperfeed.community import account_mail, verification
from paperfeed.community.core import ROLES, Community, User, require_active, strip_controls, user_row_by_name
from paperfeed.community.errors import CommunityError, Conflict, Forbidden, NotFound, RateLimited
from paperfeed.community.ratelimit import Backoff, Bucket, bucket, human_wait
from paperfeed.mail.mailbox import take_mail_slot
from paperfeed.store import community_store as store
from paperfeed.store import faults
from paperfeed.store import token_store as tokens

log = logging.getLogger(__name__)
_quiet = faults.QuietLog(60.0)  # the database cannot be written: say so once a minute, not per request

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,29}")
USERNAME_HELP = "3-30 characters: letters, digits, '-' or '_', starting with a letter or digit"
PASSWORD_MIN, PASSWORD_MAX = 8, 256
RESET_TTL = timedelta(hours=1)
TOKEN_PREFIX = "pf_"
_WRONG = "Wrong username or password."


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- validation -------------------------------------------------------------------------------


def validate_username(name: str) -> str:
    name = (name or "").strip()
    if not USERNAME_RE.fullmatch(name):
        raise CommunityError(f"Invalid username: use {USERNAME_HELP}.")
    return name


def normalise_email(address: str) -> str:
    address = (address or "").strip()
    if not address:
        raise CommunityError("An email address is required.")
    if len(address) > 254:
        raise CommunityError("That email address is too long.")
    try:
        info = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise CommunityError(f"Invalid email address: {exc}") from None
    return info.normalized.lower()


def validate_password(password: str, username: str | None = None) -> str:
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise CommunityError(f"The password must be at least {PASSWORD_MIN} characters long.")
    if len(password) > PASSWORD_MAX:
        raise CommunityError(f"The password must be at most {PASSWORD_MAX} characters long.")
    if not password.strip():
        raise CommunityError("The password cannot be only spaces.")
    if username and password.lower() == username.lower():
        raise CommunityError("The password cannot be the username.")
    return password


# -- users ------------------------------------------------------------------------------------


def load_user(c: Community, user_id: int) -> User | None:
    with c.db.read() as conn:
        row = store.get_user(conn, user_id)
    return User.from_row(row) if row else None


def user_by_name(c: Community, username: str) -> User:
    row = user_row_by_name(c, username)
    return User.from_row(row)


@dataclass(frozen=True)
class SignedUp:
    """A new web account, and the job that mails its confirmation link (run it after the response)."""

    user: User
    send_mail: Callable[[], None]


def _new_account(
    c: Community, username: str, email: str | None, password: str, role: str, *, confirmed: bool
) -> int:
    username = validate_username(username)
    address = normalise_email(email) if email is not None else None
    validate_password(password, username)
    if role not in ROLES:
        raise CommunityError(f"Unknown role {role!r}: one of {', '.join(ROLES)}.")
    password_hash = c.passwords.hash(password)
    try:
        with c.db.write() as conn:
            if confirmed:
                return store.create_user(conn, username, address, password_hash, role, c.now())
            return store.create_user(conn, username, None, password_hash, role, c.now(), pending_email=address)
    except store.Taken as exc:
        if exc.field == "email":
            raise Conflict("An account with that email address already exists.") from None
        raise Conflict("That username is taken.") from None


def create_account(c: Community, username: str, email: str | None, password: str, *, role: str = "user") -> User:
    """An account made by the operator (``paperfeed user create``): the address counts as
    confirmed, and a taken one is a plain error (the operator may know who has an account)."""
    user = load_user(c, _new_account(c, username, email, password, role, confirmed=True))
    assert user is not None
    return user


def sign_up(c: Community, username: str, email: str, password: str, *, ip: str | None) -> SignedUp:
    """A web sign-up: the account exists at once (it can read and vote), its address waits for
    confirmation. The answer is the same whether or not the address is registered - the password
    is hashed and the account created either way - and the mail, a link or a notice to the
    address's owner, is left for after the response. A taken username is a plain 409 (usernames
    are public)."""
    c.rate_limiter.hit(bucket("signup:ip", ip, c.limits.signup_ip), what="sign-ups from your address")
    user = load_user(c, _new_account(c, username, email or "", password, "user", confirmed=False))
    assert user is not None
    return SignedUp(user, lambda: verification.mail_confirmation(c, user.id))


def sign_in(c: Community, login: str, password: str, *, ip: str | None) -> User:
    """Check a password, throttled so that guessing is slow without locking the owner out.

    Three keys, checked before the password and stepped by each wrong one (see ``Limits``): the
    name as typed from this address (back-off; a right password clears it), this address over all
    names (back-off), and the account from all addresses together (a generous ceiling). A refused
    attempt checks nothing and counts nothing. Unknown names go through exactly the same steps -
    the account key is then the name as typed, and a dummy hash is verified - so neither the answer
    nor its timing tells whether an account exists.
    """
    limiter = c.rate_limiter
    limiter.hit(bucket("signin:ip", ip, c.limits.signin_ip), what="sign-in attempts from your address")
    login = (login or "").strip()[:320]
    password = (password or "")[: PASSWORD_MAX * 4]
    name = login.lower()
    row = None
    if login and strip_controls(login) == login:  # no name or address has control bytes in it
        with c.db.read() as conn:
            row = store.get_user_by_login(conn, login)
    who = str(row["id"]) if row else "?" + sha256(name)[:32]  # an account, or the unknown name as typed
    account, backoffs = _guess_keys(c, who, ip)
    _wait_for_guess(c, account, backoffs)
    if not c.passwords.verify(row["password_hash"] if row else None, password) or row is None:
        limiter.failed(account, backoffs=backoffs)
        raise CommunityError(_WRONG, status=401)
    if row["banned"]:
        raise Forbidden("This account is banned.")
    limiter.succeeded(backoffs[0][0])
    if c.passwords.needs_rehash(row["password_hash"]):
        with c.db.write() as conn:
            store.rehash_password(conn, row["id"], row["password_hash"], c.passwords.hash(password))
    return User.from_row(row)


def _guess_keys(c: Community, who: str, ip: str | None) -> tuple[Bucket, tuple[tuple[str, Backoff | None], ...]]:
    """The throttle keys of a password guess for account ``who`` (an id, or ``?`` + the unknown
    name's hash) from ``ip``: the account's ceiling, and the (account, address) and address back-offs."""
    account = bucket("signin:account", who, c.limits.signin_account)
    backoffs = (
        (f"pair:{sha256(who + ' ' + (ip or ''))[:40]}", c.limits.signin_pair),
        (f"ip:{ip}"[:200] if ip else "", c.limits.signin_ip_failures),
    )
    return account, backoffs


def _wait_for_guess(c: Community, account: Bucket, backoffs: tuple[tuple[str, Backoff | None], ...]) -> None:
    wait = c.rate_limiter.blocked(account, backoffs=backoffs)
    if wait > 0:
        raise RateLimited(f"Too many password attempts; please wait {human_wait(wait)} and try again.", wait)


def change_password(c: Community, user: User | None, current: str, new: str, *, ip: str | None = None) -> User:
    """Change the password (the current one is required); every other session is signed out.

    Checking the current password is a password guess like a sign-in: it waits on, and counts
    towards, the same throttle keys (whoever holds a session must not get a faster oracle)."""
    user = require_active(user)
    account, backoffs = _guess_keys(c, str(user.id), ip)
    _wait_for_guess(c, account, backoffs)
    with c.db.read() as conn:
        row = store.get_user(conn, user.id)
    if row is None or not c.passwords.verify(row["password_hash"], current or ""):
        c.rate_limiter.failed(account, backoffs=backoffs)
        raise CommunityError("The current password is wrong.", status=403)
    c.rate_limiter.succeeded(backoffs[0][0])
    validate_password(new, user.username)
    with c.db.write() as conn:
        store.set_password_hash(conn, user.id, c.passwords.hash(new), revoke_sessions=True, now=c.now())
    fresh = load_user(c, user.id)
    assert fresh is not None
    return fresh


def set_password(c: Community, user: User, new: str) -> None:
    """Set a password without the old one (``paperfeed user create``/admin use)."""
    validate_password(new, user.username)
    with c.db.write() as conn:
        store.set_password_hash(conn, user.id, c.passwords.hash(new), revoke_sessions=True, now=c.now())


# -- password reset ---------------------------------------------------------------------------


def request_reset(c: Community, email: str, *, ip: str | None) -> Callable[[], None]:
    """Check the form now (address syntax, per-client limit); return the job that mails a
    single-use reset link if a confirmed address of an account matches - run it after the
    response. The request does the same work for every address, so neither the answer nor its
    timing tells who has an account; the per-account and per-mailbox caps act silently."""
    c.rate_limiter.hit(bucket("reset:ip", ip, c.limits.reset_ip), what="reset requests from your address")
    address = normalise_email(email)
    return lambda: _mail_reset(c, address)


def _mail_reset(c: Community, address: str) -> None:
    with c.db.read() as conn:
        row = store.get_user_by_email(conn, address)
    if row is None or row["banned"]:
        return
    try:
        c.rate_limiter.hit(bucket("reset:user", row["id"], c.limits.reset_account))
    except RateLimited:
        return
    token = secrets.token_urlsafe(32)
    now = c.now()
    with c.db.write() as conn:
        if not take_mail_slot(conn, address, now):  # one inbox behind victim+1@, victim+2@, ...
            return
        store.insert_password_reset(conn, row["id"], sha256(token), now, now + RESET_TTL)
    account_mail.send_reset_link(c, row["username"], address, token, int(RESET_TTL.total_seconds() // 60))


def reset_link_usable(c: Community, token: str) -> bool:
    if not token or len(token) > 200:
        return False
    with c.db.read() as conn:
        return store.reset_is_usable(conn, sha256(token), c.now())


def reset_password(c: Community, token: str, new: str) -> User:
    """Use a reset link: set the new password, end all sessions. Works once."""
    if not token or len(token) > 200:
        raise CommunityError("This reset link is invalid, expired or already used.")
    with c.db.write() as conn:
        user_id = store.consume_password_reset(conn, sha256(token), c.now())
        if user_id is None:
            raise CommunityError("This reset link is invalid, expired or already used.")
        row = store.get_user(conn, user_id)
        assert row is not None
        validate_password(new, row["username"])  # raising rolls back: a bad password does not burn the link
        store.set_password_hash(conn, user_id, c.passwords.hash(new), revoke_sessions=True, now=c.now())
    user = load_user(c, user_id)
    assert user is not None
    return user


# -- API tokens -------------------------------------------------------------------------------


SCOPES = ("read", "vote", "comment", "submit", "library", "moderate")
# New tokens get these; tokens from before scopes have "read vote comment submit" (the column default).
DEFAULT_SCOPES = ("read", "vote", "comment", "submit", "library")
SCOPE_HELP = {
    "read": "read the JSON API (GET /api/...)",
    "vote": "upvote and take back upvotes",
    "comment": "post comments and replies",
    "submit": "submit papers to the daily feed",
    "library": "change your library: save papers, collections, notes, imports, not interested / hide",
    "moderate": "hide comments and entries, ban users, change roles (moderators and admins only)",
}


@dataclass(frozen=True)
class ApiToken:
    """A live token as a request presents it: its owner and what it may do."""

    id: int
    user: User
    scopes: frozenset[str]


def parse_scopes(value: str | None) -> frozenset[str]:
    """The scopes stored on a token row (unknown words are ignored, never granted)."""
    return frozenset(w for w in (value or "").split() if w in SCOPES)


def create_api_token(
    c: Community, user: User | None, name: str, scopes: Iterable[str] | None = None
) -> tuple[str, int]:
    """A new personal token with ``scopes`` (default: all but ``moderate``): returned once in
    clear, stored as its hash. Only moderators and admins may grant ``moderate``."""
    user = require_active(user)
    wanted = list(DEFAULT_SCOPES if scopes is None else scopes)
    unknown = sorted({s for s in wanted if s not in SCOPES})
    if unknown:
        raise CommunityError(f"Unknown scope {unknown[0][:40]!r}: use {', '.join(SCOPES)}.")
    if not wanted:
        raise CommunityError("Pick at least one scope for the token.")
    if "moderate" in wanted and not user.is_moderator:
        raise Forbidden("Only moderators and admins can create a token with the moderate scope.")
    name = " ".join(strip_controls(name).split())[:80] or "token"
    c.rate_limiter.hit(bucket("token:user", user.id, c.limits.token_user), what="new tokens")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stored = " ".join(s for s in SCOPES if s in wanted)
    with c.db.write() as conn:
        token_id = tokens.insert_api_token(conn, user.id, name, sha256(token), token[:10], c.now(), stored)
    return token, token_id


def list_api_tokens(c: Community, user: User) -> list[dict[str, Any]]:
    """The user's live tokens, newest first, each with ``scopes`` as a list in canonical order."""
    with c.db.read() as conn:
        rows = tokens.list_api_tokens(conn, user.id)
    return [{**r, "scopes": [s for s in SCOPES if s in parse_scopes(r["scopes"])]} for r in rows]


def revoke_api_token(c: Community, user: User | None, token_id: int) -> None:
    user = require_active(user)
    with c.db.write() as conn:
        if not tokens.revoke_api_token(conn, user.id, token_id, c.now()):
            raise NotFound("No such token.")


def api_token(c: Community, token: str) -> ApiToken | None:
    """The live token behind a Bearer value, with its owner (banned owners included: callers
    refuse them with 403) and scopes; None for anything else."""
    token = (token or "").strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    with c.db.read() as conn:
        row = tokens.user_for_token(conn, sha256(token))
    if row is None:
        return None
    now = c.now()
    used = row.get("token_used_at")
    if used is None or (now - used) > timedelta(minutes=5):  # a write per call would serialise API use
        try:
            with c.db.write() as conn:
                tokens.touch_api_token(conn, row["token_id"], now)
        except Exception as err:  # "last used" is bookkeeping: a full disk must not refuse the token
            if faults.classify(err) is None:
                raise
            _quiet.warn(log, "touch", "token's last use not recorded (%s)", faults.describe(err))
    return ApiToken(int(row["token_id"]), User.from_row(row), parse_scopes(row["token_scopes"]))


def user_for_api_token(c: Community, token: str) -> User | None:
    """The owner of a live token (see :func:`api_token`)."""
    found = api_token(c, token)
    return found.user if found is not None else None
