"""Account mail reveals nothing (issue 10, item 5): sign-up answers the same whether or not the
address is registered (its owner gets a notice instead of a confirmation link), and sign-up and
reset requests do the same work inside the request for known and unknown addresses - every mail
goes out after the response. Timing figures are in bench/README.md, not asserted here."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import users

from .community_util import PASSWORD, TOKEN_RE, make_user, unlimited, web


class Recorder:
    """Wraps the app: records, in order, each SQL statement, the end of the response and each mail."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.events.append("RESPONSE")

        await self.app(scope, receive, recording_send)

    def before_response(self) -> list[str]:
        return self.events[: self.events.index("RESPONSE")]

    def after_response(self) -> list[str]:
        return self.events[self.events.index("RESPONSE") + 1 :]


@contextmanager
def recording(w: Any) -> Iterator[tuple[Recorder, TestClient]]:
    rec = Recorder(w.client.app)
    mails: list[Any] = []

    def log_sql(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        rec.events.append("SQL " + " ".join(statement.split())[:120])

    def send_mail(msg: Any) -> None:
        mails.append(msg)
        rec.events.append("MAIL")

    w.community.send_mail = send_mail
    event.listen(w.community.db.engine, "before_cursor_execute", log_sql)
    try:
        yield rec, TestClient(rec, raise_server_exceptions=False)
    finally:
        event.remove(w.community.db.engine, "before_cursor_execute", log_sql)


def _form(client: TestClient, path: str, data: dict[str, str]) -> Any:
    token = TOKEN_RE.search(client.get(path).text)
    assert token is not None
    return client.post(path, data={"csrf_token": token.group(1), **data}, follow_redirects=False)


def _signup(client: TestClient, username: str, address: str) -> Any:
    return _form(client, "/signup", {"username": username, "email": address, "password": PASSWORD,
                                     "password2": PASSWORD, "next": "/papers/new"})  # fmt: skip


def _text(msg: Any) -> str:
    """The decoded text of an outgoing message (every part)."""
    parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
    return "\n".join(part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text")


def test_sign_up_with_a_registered_address_answers_like_any_other(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    sent: list[Any] = []
    w.community.send_mail = sent.append
    taken = _signup(TestClient(w.client.app, raise_server_exceptions=False), "bob", "ALICE@example.org")
    fresh = _signup(TestClient(w.client.app, raise_server_exceptions=False), "carol", "carol@example.org")
    assert (taken.status_code, taken.headers["location"]) == (fresh.status_code, fresh.headers["location"])
    assert taken.status_code == 303 and taken.headers["location"] == "/papers/new"
    assert taken.text == fresh.text and "set-cookie" in taken.headers and "set-cookie" in fresh.headers
    with db.read() as conn:
        rows = {r.username: r for r in conn.execute(select(users.c.username, users.c.email, users.c.pending_email))}
    assert rows["alice"].email == "alice@example.org"  # the owner's account is untouched
    assert (rows["bob"].email, rows["bob"].pending_email) == (None, "alice@example.org")
    # The owner hears about it (no link that would tie the address to bob); carol gets her link.
    by_rcpt = {m.to: m for m in sent}
    notice = _text(by_rcpt["alice@example.org"])
    assert "already" in notice and "/verify" not in notice and "/reset" in notice
    assert "/verify?t=" in _text(by_rcpt["carol@example.org"])
    # The username is public anyway: a taken one stays a clear 409.
    r = _signup(TestClient(w.client.app, raise_server_exceptions=False), "Carol", "other@example.org")
    assert r.status_code == 409 and "username is taken" in r.text


def test_sign_up_does_the_same_work_in_the_request_and_mails_after_it(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    runs = []
    for name, address in (("bob", "alice@example.org"), ("carol", "carol@example.org")):
        with recording(w) as (rec, client):
            token = TOKEN_RE.search(client.get("/signup").text)
            assert token is not None
            rec.events.clear()
            data = {"csrf_token": token.group(1), "username": name, "email": address, "password": PASSWORD,
                    "password2": PASSWORD}  # fmt: skip
            r = client.post("/signup", data=data, follow_redirects=False)
            assert r.status_code == 303
            runs.append(rec)
    shape = [[re.sub(r"'[^']*'", "?", e) for e in rec.before_response()] for rec in runs]
    assert shape[0] == shape[1] and not any(e == "MAIL" for e in shape[0])
    assert all("MAIL" in rec.after_response() for rec in runs)


def test_reset_does_the_same_work_in_the_request_and_mails_after_it(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    runs = []
    for address in ("alice@example.org", "nobody@example.org"):
        with recording(w) as (rec, client):
            token = TOKEN_RE.search(client.get("/reset").text)
            assert token is not None
            rec.events.clear()
            r = client.post("/reset", data={"csrf_token": token.group(1), "email": address})
            assert r.status_code == 200 and "If an account" in r.text
            page = re.sub(r'name="csrf_token" value="[^"]*"', "", r.text.replace(address, "ADDRESS"))
            runs.append((rec, page))
    (known, known_page), (unknown, unknown_page) = runs
    assert known_page == unknown_page
    assert known.before_response() == unknown.before_response()
    assert known.after_response().count("MAIL") == 1 and "MAIL" not in unknown.after_response()


def test_reset_mail_failure_does_not_change_the_answer(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")

    def broken(msg: Any) -> None:
        raise OSError("connection refused")

    w.community.send_mail = broken
    r = _form(w.client, "/reset", {"email": "alice@example.org"})
    assert r.status_code == 200 and "If an account" in r.text
    assert accounts.reset_link_usable(w.community, "no-such-token") is False
