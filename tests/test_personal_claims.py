"""Authorship claims (issue 14): a signed-in user claims a paper under a name the paper lists, a
moderator confirms or rejects it (audit log), confirmed claims show on the profile and the author
page; the rules (own claims, one account per author slot, unverified accounts) hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from paperfeed.community import accounts
from paperfeed.community.errors import CommunityError, Conflict, Forbidden, NotFound
from paperfeed.config import Settings
from paperfeed.personal import claims
from paperfeed.store.db import Database
from paperfeed.store.schema import audit_log

from . import factories as f
from .community_util import PASSWORD, community, make_user, web


def test_claim_rules_and_moderation(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    p = f.add_paper(any_db, authors=["Zoë Müller", "Alan Turing"])
    alice, bob, mod = make_user(c, "alice"), make_user(c, "bob"), make_user(c, "mod", role="moderator")
    with pytest.raises(CommunityError, match="Pick your name as"):
        claims.claim(c, alice, p["id"], "Grace Hopper")
    with pytest.raises(NotFound):
        claims.claim(c, alice, "2501.99999", "Alan Turing")
    first = claims.claim(c, alice, p["id"], "zoe muller")  # matched case and accents aside
    with pytest.raises(Conflict, match="claimed .* already"):
        claims.claim(c, alice, p["id"], "Zoë Müller")
    rival = claims.claim(c, bob, p["id"], "Zoë Müller")  # both wait; only one can be confirmed
    with pytest.raises(Forbidden):
        claims.decide(c, bob, first, True, None)  # not a moderator
    mine = claims.claim(c, mod, p["id"], "Alan Turing")
    with pytest.raises(Forbidden, match="Another moderator"):
        claims.decide(c, mod, mine, True, None)
    with pytest.raises(CommunityError, match="give a reason"):
        claims.decide(c, mod, rival, False, "  ")

    assert [q["id"] for q in claims.queue(c, mod)] == [first, rival, mine]
    assert claims.decide(c, mod, first, True, None) is True
    assert claims.decide(c, mod, first, True, None) is False  # decided already
    with pytest.raises(Conflict, match="already confirmed"):
        claims.decide(c, mod, rival, True, None)
    assert claims.decide(c, mod, rival, False, "not the same person") is True
    assert claims.claims_on(c, [p["id"]]) == {p["id"]: {"Zoë Müller": "alice"}}
    assert claims.claimants(c, "ZOE MULLER") == ["alice"]
    assert claims.confirmed_paper_ids(c, alice.id) == [p["id"]]
    assert [r["status"] for r in claims.user_claims(c, bob.id)] == ["rejected"]
    with any_db.read() as conn:
        logged = [(r.action, r.actor_name, r.target_id, r.reason) for r in conn.execute(
            select(audit_log).order_by(audit_log.c.id))]  # fmt: skip
    assert logged == [("claim.confirm", "mod", str(first), None),
                      ("claim.reject", "mod", str(rival), "not the same person")]  # fmt: skip
    with pytest.raises(NotFound):
        claims.withdraw(c, bob, first)  # not bob's
    claims.withdraw(c, alice, first)
    assert claims.claimants(c, "Zoë Müller") == []


def test_unconfirmed_accounts_cannot_claim(db: Database, settings: Settings) -> None:
    c = community(settings, db)
    p = f.add_paper(db)
    c.send_mail = lambda m: None
    fresh = accounts.sign_up(c, "fresh", "fresh@example.org", PASSWORD, ip=None).user
    with pytest.raises(Forbidden, match="Confirm your email"):
        claims.claim(c, fresh, p["id"], "Ada Lovelace")


@pytest.mark.slow
def test_claim_pages_profile_and_author_page(db: Database, settings: Settings) -> None:
    w = web(settings, db)
    p = f.add_paper(db, authors=["Ada Lovelace", "Alan Turing"], title="Notes on the analytical engine")
    make_user(w.community, "alice")
    make_user(w.community, "mod", role="moderator")
    w.sign_in("alice")
    page = w.client.get(f"/papers/{p['id']}")
    assert f'action="/papers/{p["id"]}/claim"' in page.text
    r = w.post(f"/papers/{p['id']}/claim", {"author_name": "Ada Lovelace"})
    assert (r.status_code, r.headers["location"]) == (303, "/account?claimed=1#claims")
    assert "Notes on the analytical engine" in w.client.get("/account").text
    w.post("/signout")
    w.sign_in("mod")
    queue = w.client.get("/moderation").text
    assert "claims to be <strong>Ada Lovelace</strong>" in queue
    claim_id = claims.queue(w.community, accounts.user_by_name(w.community, "mod"))[0]["id"]
    r = w.post(f"/moderation/claims/{claim_id}", {"action": "confirm"})
    assert (r.status_code, r.headers["location"]) == (303, "/moderation#claims")
    author = w.client.get("/authors/Ada Lovelace")
    assert 'Claimed by <a href="/users/alice">@alice</a>' in author.text
    profile = w.client.get("/users/alice", headers={"Accept": "application/json"}).json()
    assert profile["papers"] == [{"id": p["id"], "title": "Notes on the analytical engine", "as": "Ada Lovelace"}]
    assert "Papers by alice" in w.client.get("/users/alice").text
