"""Accounts: sign-up validation, sign-in (throttling: test_security_signin.py), password change and single-use
reset links, API tokens, and the ``paperfeed user`` commands - on SQLite and PostgreSQL."""

from __future__ import annotations

import email
from dataclasses import replace

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from paperfeed.community import accounts
from paperfeed.community.errors import CommunityError, Conflict, Forbidden, RateLimited
from paperfeed.community.ratelimit import Limits, Rate
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import api_tokens, audit_log, password_resets, users

from .community_util import PASSWORD, FakeClock, community, make_user


def test_sign_up_validates_and_hashes(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    user = make_user(c, "Alice")
    assert (user.username, user.role, user.banned) == ("Alice", "user", False)
    with any_db.read() as conn:
        stored = conn.execute(select(users.c.password_hash, users.c.email)).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert stored.email == "alice@example.org"
    with pytest.raises(Conflict, match="username is taken"):
        accounts.sign_up(c, "alice", "other@example.org", PASSWORD, ip=None)  # case-insensitive
    # The operator may be told an address is taken; the web sign-up never is (test_security_signup).
    with pytest.raises(Conflict, match="email address already exists"):
        accounts.create_account(c, "alice2", "ALICE@example.org", PASSWORD)
    for bad in ("ab", "a" * 31, "<script>", "bob smith", "-bob", "bob\x00", "robert'); DROP TABLE users;--"):
        with pytest.raises(CommunityError, match="Invalid username"):
            accounts.sign_up(c, bad, "x@example.org", PASSWORD, ip=None)
    with pytest.raises(CommunityError, match="at least 8"):
        accounts.sign_up(c, "carol", "carol@example.org", "short", ip=None)
    with pytest.raises(CommunityError, match="cannot be the username"):
        accounts.sign_up(c, "carolyn1", "carol@example.org", "CAROLYN1", ip=None)
    with pytest.raises(CommunityError, match="Invalid email"):
        accounts.sign_up(c, "carol", "not-an-email\r\nBcc: x@y.z", PASSWORD, ip=None)
    with any_db.read() as conn:
        assert [r.username for r in conn.execute(select(users.c.username))] == ["Alice"]


def test_unknown_user_and_banned_user(db: Database, settings: Settings) -> None:
    c = community(settings, db)
    make_user(c, "alice")
    with pytest.raises(CommunityError, match="Wrong username or password"):
        accounts.sign_in(c, "nobody", PASSWORD, ip=None)
    with pytest.raises(CommunityError, match="Wrong username or password"):
        accounts.sign_in(c, "alice\x00", PASSWORD, ip=None)
    assert accounts.sign_in(c, "ALICE@example.org", PASSWORD, ip=None).username == "alice"  # by email too
    with db.write() as conn:
        conn.execute(users.update().values(banned=True))
    with pytest.raises(Forbidden, match="banned"):
        accounts.sign_in(c, "alice", PASSWORD, ip=None)


def test_sign_in_attempts_are_rate_limited_per_address(db: Database, settings: Settings) -> None:
    clock = FakeClock()
    c = community(settings, db, clock, Limits(signin_ip=Rate(3, 60)))
    make_user(c, "alice")
    for _ in range(3):
        with pytest.raises(CommunityError):
            accounts.sign_in(c, "alice", "wrong one!", ip="10.0.0.9")
    with pytest.raises(RateLimited, match="sign-in attempts") as exc:
        accounts.sign_in(c, "alice", PASSWORD, ip="10.0.0.9")
    assert exc.value.retry_after == 20
    assert accounts.sign_in(c, "alice", PASSWORD, ip="10.0.0.10").username == "alice"  # another address


def test_password_change_needs_the_current_password(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    user = make_user(c, "alice")
    with pytest.raises(CommunityError, match="current password is wrong"):
        accounts.change_password(c, user, "not it at all", "new password 1")
    assert accounts.sign_in(c, "alice", PASSWORD, ip=None).id == user.id  # the wrong try changed nothing
    assert accounts.change_password(c, user, PASSWORD, "new password 1").id == user.id
    assert accounts.sign_in(c, "alice", "new password 1", ip=None).id == user.id
    with pytest.raises(CommunityError):
        accounts.sign_in(c, "alice", PASSWORD, ip=None)


def _reset_link(settings: Settings) -> str:
    """The link in the newest mail in the outbox (the default transport without SMTP)."""
    files = sorted(settings.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    msg = email.message_from_bytes(files[-1].read_bytes())
    body = msg.get_payload(decode=True).decode()
    link = next(line.strip() for line in body.splitlines() if "/reset/" in line)
    return link.rsplit("/reset/", 1)[1]


def test_reset_link_works_once_and_expires(any_db: Database, settings: Settings) -> None:
    clock = FakeClock()
    c = community(settings, any_db, clock)
    user = make_user(c, "alice")
    accounts.request_reset(c, "nobody@example.org", ip="10.0.0.1")()  # no account: no mail (same answer)
    assert not settings.outbox_dir.exists() or not list(settings.outbox_dir.glob("*.eml"))
    accounts.request_reset(c, "Alice@Example.org", ip="10.0.0.1")()
    token = _reset_link(settings)
    with any_db.read() as conn:
        stored = conn.execute(select(password_resets.c.token_hash)).scalar_one()
    assert token not in stored and stored == accounts.sha256(token)  # only the hash is kept
    assert accounts.reset_link_usable(c, token)
    with pytest.raises(CommunityError, match="at least 8"):
        accounts.reset_password(c, token, "short")
    assert accounts.reset_link_usable(c, token)  # a rejected password does not burn the link
    assert accounts.reset_password(c, token, "brand new pass").id == user.id
    with pytest.raises(CommunityError, match="invalid, expired or already used"):
        accounts.reset_password(c, token, "second try pass")
    assert accounts.sign_in(c, "alice", "brand new pass", ip=None).id == user.id
    accounts.request_reset(c, "alice@example.org", ip="10.0.0.1")()
    late = _reset_link(settings)
    clock.advance(hours=1, seconds=1)
    assert not accounts.reset_link_usable(c, late)
    with pytest.raises(CommunityError, match="invalid, expired or already used"):
        accounts.reset_password(c, late, "too late pass")


def test_reset_mail_goes_through_real_smtp(db: Database, settings: Settings) -> None:
    from .smtp import SmtpSink  # the digest helper's aiosmtpd sink

    sink = SmtpSink().start()
    try:
        s = replace(settings, smtp_url=sink.url)
        c = community(s, db)
        make_user(c, "alice")
        accounts.request_reset(c, "alice@example.org", ip=None)()
        assert sink.wait_for(1)
    finally:
        sink.stop()
    msg = sink.messages[0].msg
    assert sink.messages[0].rcpt_tos == ["alice@example.org"] and msg["Subject"] == "Reset your paperfeed password"
    token = msg.get_content().split("/reset/", 1)[1].split()[0]
    assert accounts.reset_link_usable(c, token)


def test_api_tokens_are_hashed_and_revocable(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    alice, bob = make_user(c, "alice"), make_user(c, "bob")
    token, token_id = accounts.create_api_token(c, alice, "laptop")
    assert token.startswith("pf_") and len(token) > 40
    with any_db.read() as conn:
        row = conn.execute(select(api_tokens)).one()
    assert row.token_hash == accounts.sha256(token) and token not in (row.token_hash, row.prefix)
    assert accounts.user_for_api_token(c, token).id == alice.id
    assert accounts.user_for_api_token(c, token[:-1] + "x") is None
    assert accounts.user_for_api_token(c, "' OR 1=1 --") is None
    with pytest.raises(CommunityError, match="No such token"):
        accounts.revoke_api_token(c, bob, token_id)  # not bob's to revoke
    assert accounts.user_for_api_token(c, token) is not None
    accounts.revoke_api_token(c, alice, token_id)
    assert accounts.user_for_api_token(c, token) is None
    assert accounts.list_api_tokens(c, alice) == []


def test_cli_creates_the_first_admin_and_manages_users(db: Database, settings: Settings, monkeypatch) -> None:
    from paperfeed.cli import app

    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    monkeypatch.setenv("PAPERFEED_DATABASE_URL", settings.db_url)
    runner = CliRunner()
    res = runner.invoke(app, ["user", "create", "root", "--email", "root@example.org", "--admin", "--password-stdin"],
                        input="root password 1\n")  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["user", "create", "bob", "--password-stdin"], input="short\n")
    assert res.exit_code == 2 and "at least 8" in res.output
    res = runner.invoke(app, ["user", "create", "bob"], input="bob password 1\nbob password 1\n")
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["user", "role", "bob", "moderator"]).exit_code == 0
    assert runner.invoke(app, ["user", "role", "bob", "emperor"]).exit_code == 2
    assert runner.invoke(app, ["user", "ban", "bob", "--reason", "spam"]).exit_code == 0
    assert runner.invoke(app, ["user", "ban", "nobody"]).exit_code == 2
    with db.read() as conn:
        rows = {r.username: r for r in conn.execute(select(users))}
        log = [(r.actor_name, r.action, r.target_id) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert rows["root"].role == "admin" and rows["bob"].role == "moderator" and rows["bob"].banned
    assert log == [("cli", "user.role", "bob"), ("cli", "user.ban", "bob")]
    c = community(settings, db)
    assert accounts.sign_in(c, "root", "root password 1", ip=None).is_admin
