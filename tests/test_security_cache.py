"""Issue 10 item 6: pages that show a secret or personal data are ``Cache-Control: no-store``.

The CSRF middleware adds the form token to every page with a POST form and used to rewrite the
header to ``private, no-cache`` on all of them - including the page that shows a new API token,
``/account``, reset links and the digest pages reached by mailed links. ``no-cache`` still lets
the browser keep the page on disk (and show it again from history); ``no-store`` does not.
Public pages with a form stay ``private, no-cache`` (revalidated, never in a shared cache).
"""

from __future__ import annotations

import email
import re

from sqlalchemy import select

from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.store.db import Database
from paperfeed.store.schema import subscriptions

from .community_util import make_user, unlimited, web


def _no_store(r, what: str) -> None:  # type: ignore[no-untyped-def]
    cc = r.headers.get("cache-control", "")
    assert "no-store" in cc and "public" not in cc, (what, r.status_code, cc)
    assert 'name="csrf_token"' in r.text, what  # the page really has a form (the case that used to break)


def _reset_path(settings: Settings) -> str:
    (mail,) = settings.outbox_dir.glob("*.eml")
    body = email.message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()
    return "/reset/" + body.split("/reset/", 1)[1].split()[0]


def test_pages_with_secrets_are_no_store(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    assert w.post("/reset", {"email": "alice@example.org"}).status_code == 200
    reset = _reset_path(settings)
    r = w.client.get(reset)
    assert r.status_code == 200
    _no_store(r, "reset form")
    w.sign_in("alice")
    _no_store(w.client.get("/account"), "/account")
    r = w.post("/account/tokens", {"name": "script"})
    assert r.status_code == 201 and re.search(r"pf_[A-Za-z0-9_-]{20,}", r.text)
    _no_store(r, "new token page")
    r = w.post("/account/password", {"current": "wrong", "new": "x" * 12, "new2": "x" * 12})
    _no_store(r, "account with an error")


def test_digest_pages_behind_mailed_links_are_no_store(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    tokens = subs.Tokens.from_settings(settings)
    prefs = subs.parse_prefs(frequency="daily")
    assert subs.request_subscription(db, "reader@example.org", prefs) is not None
    with db.read() as conn:
        row = conn.execute(select(subscriptions).where(subscriptions.c.email == "reader@example.org")).one()
    r = w.client.get("/digest/confirm", params={"t": tokens.confirm(row.id, row.token_nonce, prefs)})
    assert r.status_code == 200, r.text
    _no_store(r, "digest confirm")
    with db.read() as conn:
        nonce = conn.scalar(select(subscriptions.c.manage_nonce).where(subscriptions.c.id == row.id))
    r = w.client.get("/digest/manage", params={"t": tokens.manage(row.id, nonce)})
    assert r.status_code == 200, r.text
    _no_store(r, "digest manage")


def test_public_pages_with_a_form_stay_revalidatable(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    for path in ("/", "/signin"):
        r = w.client.get(path)
        assert 'name="csrf_token"' in r.text
        cc = r.headers["cache-control"]
        assert "private" in cc and "public" not in cc, (path, cc)
    assert w.client.get("/").headers["cache-control"] == "private, no-cache"
