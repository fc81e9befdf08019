"""Email verification at sign-up (issue 10): a new account can read and vote at once, and comments
and submits once its address is confirmed through a signed, single-use, expiring link - mailed
at sign-up, resendable (capped) from /account. Operator-made and pre-existing accounts count as
confirmed. The whole flow runs against the real app and a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from paperfeed.community import accounts, comments, submissions, verification, votes
from paperfeed.community.errors import CommunityError, Forbidden
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comments_table
from paperfeed.store.schema import users

from . import factories as f
from . import smtp
from .community_util import PASSWORD, TOKEN_RE, FakeClock, community, make_user, unlimited, web
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink
LINK_RE = re.compile(r"https?://\S+/verify\?t=[A-Za-z0-9_.\-]+")


@pytest.fixture
def paper(db: Database) -> dict:
    p = f.add_paper(db, title="A paper to discuss")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _body(data: bytes) -> str:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return "\n".join(p.get_content() for p in msg.walk() if p.get_content_maintype() == "text")


def _post(client: TestClient, path: str, data: dict[str, str], page: str = "/signin") -> Any:
    token = TOKEN_RE.search(client.get(page).text)
    assert token is not None
    return client.post(path, data={"csrf_token": token.group(1), **data}, follow_redirects=False)


def test_unverified_accounts_vote_but_do_not_comment_or_submit(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db, FakeClock(), unlimited())
    p = f.add_paper(any_db)
    signed_up = accounts.sign_up(c, "newbie", "newbie@example.org", PASSWORD, ip="10.0.0.1")
    user = signed_up.user
    assert not user.verified and user.email is None and user.pending_email == "newbie@example.org"
    assert votes.toggle_vote(c, user, p["id"]).upvoted
    with pytest.raises(Forbidden, match="Confirm your email address"):
        comments.add_comment(c, user, p["id"], "first!")
    with pytest.raises(Forbidden, match="Confirm your email address"):
        submissions.submit(c, user, p["id"])
    operator_made = make_user(c, "opsmade")
    assert operator_made.verified and operator_made.email == "opsmade@example.org"
    assert comments.add_comment(c, operator_made, p["id"], "fine")


def test_full_flow_over_smtp(db: Database, settings: Settings, smtp_sink: SmtpSink, paper: dict) -> None:
    w = web(settings, db, limits=unlimited(), smtp_url=smtp_sink.url, base_url="http://testserver")
    r = _post(w.client, "/signup", {"username": "newbie", "email": "Newbie@Example.org", "password": PASSWORD,
                                    "password2": PASSWORD})  # fmt: skip
    assert r.status_code == 303
    # Signed in at once; the paper page says why there is no comment form, and so does /submit.
    page = w.client.get(f"/papers/{paper['id']}").text
    assert "Confirm your email address" in page and 'name="body"' not in page
    submit = w.client.get("/submit").text
    assert "Confirm your email address" in submit and 'name="arxiv_id"' not in submit
    account = w.client.get("/account").text
    assert "newbie@example.org" in account and "not confirmed yet" in account
    # The comment route itself refuses too (not only the form).
    r = _post(w.client, f"/papers/{paper['id']}/comments", {"body": "hello"})
    assert r.status_code == 403 and "Confirm your email address" in r.text

    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["newbie@example.org"]
    link = LINK_RE.search(_body(mail.data))
    assert link is not None
    path = link.group(0).split("testserver", 1)[1]
    other_browser = TestClient(w.client.app, raise_server_exceptions=False)  # e.g. the phone's mail app
    shown = other_browser.get(path)
    assert shown.status_code == 200 and "newbie@example.org" in shown.text
    with db.read() as conn:  # GET only shows a button: link scanners confirm nothing
        assert conn.scalar(select(users.c.verified_at).where(users.c.username == "newbie")) is None
    token = path.split("t=", 1)[1]
    r = _post(other_browser, "/verify", {"t": token}, page=path)
    assert r.status_code == 200 and "confirmed" in r.text
    r = _post(other_browser, "/verify", {"t": token}, page="/signin")
    assert r.status_code == 400 and "already used" in r.text  # single use

    r = _post(w.client, f"/papers/{paper['id']}/comments", {"body": "now I can talk"})
    assert r.status_code == 303
    with db.read() as conn:
        assert conn.scalar(select(comments_table.c.body)) == "now I can talk"
        row = conn.execute(select(users.c.email, users.c.pending_email).where(users.c.username == "newbie")).one()
    assert (row.email, row.pending_email) == ("newbie@example.org", None)
    assert accounts.sign_in(w.community, "newbie@example.org", PASSWORD, ip=None).username == "newbie"


def test_resend_replaces_the_link_and_is_capped(db: Database, settings: Settings) -> None:
    sent: list[Any] = []
    w = web(settings, db)  # the site's default limits
    w.community.send_mail = sent.append
    assert _post(w.client, "/signup", {"username": "newbie", "email": "newbie@example.org", "password": PASSWORD,
                                       "password2": PASSWORD}).status_code == 303  # fmt: skip
    statuses = [_post(w.client, "/account/verify", {}, page="/account").status_code for _ in range(4)]
    assert statuses == [303, 303, 303, 429]  # three resends an hour
    assert len(sent) == 4
    links = [LINK_RE.search(_body(m.data)).group(0).split("t=", 1)[1] for m in sent]  # type: ignore[union-attr]
    with pytest.raises(CommunityError, match="already used or replaced"):
        verification.verify_email(w.community, links[0])
    assert verification.verify_email(w.community, links[-1]).verified
    # Once confirmed there is nothing to resend.
    assert _post(w.client, "/account/verify", {}, page="/account").status_code == 400


def test_links_expire_and_cannot_be_forged(db: Database, settings: Settings) -> None:
    sent: list[Any] = []
    clock = FakeClock()
    c = community(settings, db, clock, unlimited(), send_mail=sent.append)
    signed_up = accounts.sign_up(c, "newbie", "newbie@example.org", PASSWORD, ip="10.0.0.1")
    signed_up.send_mail()
    token = LINK_RE.search(_body(sent[0].data)).group(0).split("t=", 1)[1]  # type: ignore[union-attr]
    for bad in ("", "x" * 5000, token[:-2], token + "x", token.replace(".", "", 1)):
        with pytest.raises(CommunityError, match="not valid|incomplete"):
            verification.verify_email(c, bad)
    clock.advance(days=3, seconds=1)
    with pytest.raises(CommunityError, match="expired"):
        verification.verify_email(c, token)


def test_a_link_cannot_take_an_address_confirmed_meanwhile(db: Database, settings: Settings) -> None:
    sent: list[Any] = []
    c = community(settings, db, FakeClock(), unlimited(), send_mail=sent.append)
    first = accounts.sign_up(c, "first", "shared@example.org", PASSWORD, ip="10.0.0.1")
    second = accounts.sign_up(c, "second", "shared@example.org", PASSWORD, ip="10.0.0.2")
    first.send_mail()
    second.send_mail()
    t1, t2 = (LINK_RE.search(_body(m.data)).group(0).split("t=", 1)[1] for m in sent)  # type: ignore[union-attr]
    assert verification.verify_email(c, t2).username == "second"
    with pytest.raises(CommunityError, match="already belongs to another account"):
        verification.verify_email(c, t1)


def test_sign_up_confirmations_are_capped_per_mailbox(db: Database, settings: Settings) -> None:
    sent: list[Any] = []
    c = community(settings, db, FakeClock(), unlimited(), send_mail=sent.append)
    for i in range(12):
        accounts.sign_up(c, f"flood{i}", f"victim+{i}@example.org", PASSWORD, ip=f"198.51.100.{i}").send_mail()
    assert len(sent) == 5


def test_operator_accounts_are_confirmed(db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperfeed.cli import app as cli_app

    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    monkeypatch.setenv("PAPERFEED_DATABASE_URL", settings.db_url)
    result = CliRunner().invoke(cli_app, ["user", "create", "boss", "--email", "boss@example.org", "--admin",
                                          "--password-stdin"], input="an operator password\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    with db.read() as conn:
        row = conn.execute(select(users.c.email, users.c.verified_at).where(users.c.username == "boss")).one()
    assert row.email == "boss@example.org" and row.verified_at is not None


def test_accounts_from_before_the_migration_are_confirmed(settings: Settings, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    script = ScriptDirectory.from_config(db._alembic_config(None))  # type: ignore[arg-type]
    mine = next(r for r in script.walk_revisions() if "email_verification" in (r.path or ""))
    db.migrate(str(mine.down_revision))
    with db.write() as conn:
        conn.execute(text("INSERT INTO users (username, email, password_hash, role, banned, session_version, "
                          "created_at) VALUES ('old', 'old@example.org', NULL, 'user', false, 0, "
                          "'2025-01-01 00:00:00')"))  # fmt: skip
    db.migrate()
    user = accounts.load_user(community(settings, db), 1)
    assert user is not None and user.verified and user.email == "old@example.org"
    db.dispose()


def test_an_unconfirmed_address_does_not_sign_in(db: Database, settings: Settings) -> None:
    """Otherwise signing up with someone's address and signing in with it would tell whether the
    address has a confirmed owner (then the owner's password is asked for)."""
    c = community(settings, db, FakeClock(), unlimited())
    accounts.sign_up(c, "newbie", "newbie@example.org", PASSWORD, ip=None)
    with pytest.raises(CommunityError, match="Wrong username or password"):
        accounts.sign_in(c, "newbie@example.org", PASSWORD, ip=None)
    assert accounts.sign_in(c, "newbie", PASSWORD, ip=None).username == "newbie"  # by username it works
    owner = make_user(c, "owner")
    accounts.sign_up(c, "squatter", "owner@example.org", "squatter password", ip=None)
    with pytest.raises(CommunityError, match="Wrong username or password"):
        accounts.sign_in(c, "owner@example.org", "squatter password", ip=None)
    assert accounts.sign_in(c, "owner@example.org", PASSWORD, ip=None).id == owner.id


def test_the_api_refuses_comments_and_submissions_from_unconfirmed_accounts(
    db: Database, settings: Settings, paper: dict
) -> None:
    w = web(settings, db, limits=unlimited())
    user = accounts.sign_up(w.community, "newbie", "newbie@example.org", PASSWORD, ip=None).user
    token, _ = accounts.create_api_token(w.community, user, "script")
    auth = {"Authorization": f"Bearer {token}"}
    r = w.client.post(f"/api/papers/{paper['id']}/comments", json={"comment": "hi"}, headers=auth)
    assert r.status_code == 403 and "Confirm your email address" in r.json()["detail"]
    r = w.client.post("/api/papers/index", json={"arxivId": paper["id"]}, headers=auth)
    assert r.status_code == 403 and "Confirm your email address" in r.json()["detail"]
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=auth).status_code == 200
    with db.read() as conn:
        assert conn.scalar(select(comments_table.c.id)) is None
