"""Moderation: who may hide, feature, ban and change roles; reasons and the audit log; what a
ban does (sessions, tokens, every write) - on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from paperfeed.community import accounts, comments, moderation, votes
from paperfeed.community.errors import CommunityError, Forbidden, NotFound
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import audit_log, daily_entries

from . import factories as f
from .community_util import community, make_user


def _log(db: Database) -> list[tuple[str, str, str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id))
        return [(r.actor_name, r.action, r.target_id, r.reason) for r in rows]


def test_roles_and_rank_rules(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    admin, mod = make_user(c, "admin", role="admin"), make_user(c, "mod", role="moderator")
    alice, other_mod = make_user(c, "alice"), make_user(c, "mod2", role="moderator")
    with pytest.raises(Forbidden, match="moderator role"):
        moderation.set_banned(c, alice, "mod", True, "nope")
    with pytest.raises(Forbidden, match="higher role"):
        moderation.set_banned(c, mod, "mod2", True, "peer")
    with pytest.raises(Forbidden, match="own account"):
        moderation.set_banned(c, mod, "mod", True, "self")
    with pytest.raises(Forbidden, match="admin role"):
        moderation.set_role(c, mod, "alice", "moderator")
    with pytest.raises(CommunityError, match="reason"):
        moderation.set_banned(c, mod, "alice", True, "  ")
    with pytest.raises(NotFound):
        moderation.set_banned(c, mod, "nobody", True, "x")
    assert moderation.set_banned(c, mod, "alice", True, "spam links")
    assert not moderation.set_banned(c, mod, "alice", True, "again")
    assert moderation.set_role(c, admin, "mod2", "user")
    assert moderation.set_banned(c, mod, "mod2", True, "now a user")
    with pytest.raises(CommunityError, match="Unknown role"):
        moderation.set_role(c, admin, "alice", "root'; --")
    assert _log(any_db) == [
        ("mod", "user.ban", "alice", "spam links"),
        ("admin", "user.role", "mod2", None),
        ("mod", "user.ban", "mod2", "now a user"),
    ]
    after = accounts.user_by_name(c, other_mod.username)
    assert (after.role, after.banned) == ("user", True)  # demoted by the admin, then banned by a moderator


def test_a_banned_user_can_do_nothing(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    p = f.add_paper(any_db)
    mod, alice = make_user(c, "mod", role="moderator"), make_user(c, "alice")
    token, _ = accounts.create_api_token(c, alice, "script")
    cid = comments.add_comment(c, alice, p["id"], "before the ban")
    moderation.set_banned(c, mod, "alice", True, "abuse")
    banned = accounts.user_for_api_token(c, token)
    assert banned is not None and banned.banned  # the token resolves, and every action refuses it
    for action in (
        lambda: votes.set_vote(c, banned, p["id"], True),
        lambda: comments.add_comment(c, banned, p["id"], "after"),
        lambda: comments.edit_comment(c, banned, cid, "edit"),
        lambda: comments.delete_comment(c, banned, cid),
        lambda: accounts.create_api_token(c, banned, "another"),
        lambda: accounts.change_password(c, banned, "correct horse battery", "another pass 1"),
        lambda: moderation.queue(c, banned),
    ):
        with pytest.raises(Forbidden, match="banned"):
            action()
    with pytest.raises(Forbidden, match="banned"):
        accounts.sign_in(c, "alice", "correct horse battery", ip=None)
    moderation.set_banned(c, mod, "alice", False, None)
    assert accounts.sign_in(c, "alice", "correct horse battery", ip=None).banned is False


def test_hide_feature_and_queue(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    admin, mod, alice = make_user(c, "admin", role="admin"), make_user(c, "mod", role="moderator"), make_user(c, "alf")
    p = f.add_paper(any_db)
    f.add_daily(any_db, p["id"], date(2026, 4, 15), submitter="alf", source="local", user_id=alice.id)
    cid = comments.add_comment(c, alice, p["id"], "spam spam")
    with pytest.raises(Forbidden):
        moderation.set_comment_hidden(c, alice, cid, True, "mine")
    with pytest.raises(CommunityError, match="reason"):
        moderation.set_entry_hidden(c, mod, p["id"], True, "")
    assert moderation.set_entry_hidden(c, mod, p["id"], True, "off-topic <b>spam</b>")
    assert moderation.set_comment_hidden(c, mod, cid, True, "spam")
    with pytest.raises(Forbidden, match="admin"):
        moderation.set_entry_featured(c, mod, p["id"], True)
    assert moderation.set_entry_featured(c, admin, p["id"], True)
    with pytest.raises(NotFound):
        moderation.set_entry_featured(c, admin, "2501.99999", True)
    with any_db.read() as conn:
        entry = conn.execute(select(daily_entries)).one()
    assert entry.hidden and entry.featured and entry.hidden_reason == "off-topic <b>spam</b>"
    q = moderation.queue(c, mod)
    assert [r["id"] for r in q["hidden_comments"]] == [cid]
    assert [r["paper_id"] for r in q["hidden_entries"]] == [p["id"]]
    assert [r["paper_id"] for r in q["recent_entries"]] == [p["id"]]
    assert [a["action"] for a in q["audit"]] == ["entry.feature", "comment.hide", "entry.hide"]
    with pytest.raises(Forbidden):
        moderation.queue(c, alice)
