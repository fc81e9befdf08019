"""Digest pages through the real app (TestClient) with a real SMTP server on loopback: the
confirmation and the digest arrive, their links resolve against the app and do what they say;
GET never changes anything; one-click unsubscribe; bad input is refused and nothing is stored."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.send import send_due
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store
from paperfeed.store.db import Database
from paperfeed.web.app import create_app

from . import smtp
from .factories import add_daily, add_paper
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink  # the loopback SMTP server fixture

BASE = "https://paperfeed.example"
DAY = date(2026, 11, 24)


@pytest.fixture
def web_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return replace(settings, smtp_url=smtp_sink.url, base_url=BASE)


@pytest.fixture
def client(web_settings: Settings, db: Database) -> TestClient:
    return TestClient(create_app(web_settings, db), base_url=BASE, raise_server_exceptions=False)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def hrefs(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


def csrf(client: TestClient) -> str:
    """Like a browser: load a page (session cookie + the token the site puts in its forms)."""
    page = client.get("/digest/subscribe")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post(client: TestClient, url: str, data: dict | None = None, **kw: object) -> object:
    return client.post(url, data={**(data or {}), "csrf_token": csrf(client)}, **kw)


def sub_row(db: Database, email: str) -> dict | None:
    with db.read() as conn:
        return subscription_store.get_subscription_by_email(conn, email)


def counts(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        subscribers = sum(subscription_store.subscription_status_counts(conn).values())
        return subscribers, sum(store.delivery_status_counts(conn).values())


def seed_feed(db: Database, day: date, n: int = 4) -> list[dict]:
    out = []
    for i in range(n):
        p = add_paper(db, upvotes=i, listed=day, published=day)
        add_daily(db, p["id"], day)
        out.append(p)
    return out


def test_subscribe_confirm_receive_and_unsubscribe(
    client: TestClient, db: Database, web_settings: Settings, smtp_sink: SmtpSink
) -> None:
    home = client.get("/")
    assert home.status_code == 200 and 'action="/digest/subscribe"' in home.text  # the footer form

    r = post(
        client,
        "/digest/subscribe",
        {"email": "Reader@Example.org", "frequency": "daily", "timezone": "Europe/Berlin", "send_hour": "7"},
    )
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert sub_row(db, "reader@example.org")["status"] == "pending"

    # The confirmation mail arrived (sent right after the response).
    [mail] = smtp_sink.to("reader@example.org")
    msg = mail.msg
    assert msg["Subject"] == "Confirm your paperfeed digest" and msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    link = re.search(r"https://paperfeed\.example/digest/confirm\?t=[\w.\-]+", text).group(0)
    assert link in msg.get_body(("html",)).get_content()
    assert "List-Unsubscribe" not in msg  # not a digest: nothing is subscribed yet

    # GET shows a button and changes nothing (mail scanners prefetch links).
    page = client.get(link)
    assert page.status_code == 200 and 'action="/digest/confirm"' in page.text and 'method="post"' in page.text
    assert 'name="send_hour"' in page.text and 'name="timezone"' in page.text  # time fields to adjust
    assert sub_row(db, "reader@example.org")["status"] == "pending"
    token = link.split("t=", 1)[1]
    done = post(client, "/digest/confirm", {"t": token, "timezone": "Europe/Berlin", "send_hour": "7"})
    assert done.status_code == 200 and "subscribed" in done.text
    row = sub_row(db, "reader@example.org")
    assert (row["status"], row["timezone"], row["send_hour"]) == ("active", "Europe/Berlin", 7)
    again = post(client, "/digest/confirm", {"t": token})
    assert again.status_code == 400 and "already used" in again.text

    # The first digest.
    papers = seed_feed(db, DAY - timedelta(days=1))
    clock = lambda: datetime(2026, 11, 24, 9, 0)  # noqa: E731
    assert send_due(web_settings, db, day=DAY, clock=clock).sent == 1
    digest = smtp_sink.to("reader@example.org")[-1].msg
    html = digest.get_body(("html",)).get_content()
    links = [h for h in hrefs(html) if h.startswith(BASE)]
    assert {f"{BASE}/papers/{p['id']}" for p in papers} <= set(links)
    for href in links:  # every link into the app resolves (and GETs change nothing)
        assert client.get(href).status_code == 200, href
    assert sub_row(db, "reader@example.org")["status"] == "active"

    manage = next(h for h in links if "/digest/manage?t=" in h)
    page = client.get(manage)
    assert "Your digest settings" in page.text and "Europe/Berlin" in page.text
    unsub_page = client.get(next(h for h in links if "/digest/unsubscribe?t=" in h))
    assert 'action="/digest/unsubscribe"' in unsub_page.text

    # RFC 8058 one-click: the mail client POSTs to the List-Unsubscribe URL.
    one_click = re.search(r"<(https://[^>]+)>", str(digest["List-Unsubscribe"])).group(1)
    r = client.post(
        one_click,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert sub_row(db, "reader@example.org")["status"] == "unsubscribed"
    # ... and stops the next digest.
    seed_feed(db, DAY)
    before = len(smtp_sink.to("reader@example.org"))
    send_due(web_settings, db, day=DAY + timedelta(days=1), clock=clock)
    assert len(smtp_sink.to("reader@example.org")) == before

    # The manage link still works, to come back.
    back = post(
        client,
        "/digest/manage",
        {"t": manage.split("t=", 1)[1], "action": "resume", "frequency": "weekly", "timezone": "UTC"},
    )
    assert back.status_code == 200 and "Saved" in back.text
    assert sub_row(db, "reader@example.org")["status"] == "active"


def test_multipart_one_click_also_works(client: TestClient, db: Database, web_settings: Settings) -> None:
    sub_id, _ = subs.admin_subscribe(db, "mp@example.org", subs.Prefs(), confirmed=True)
    tokens = subs.Tokens.from_settings(web_settings)
    link = subs.links_for(web_settings, tokens, sub_id, sub_row(db, "mp@example.org")["manage_nonce"]).unsubscribe_url
    r = client.post(link, files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200 and sub_row(db, "mp@example.org")["status"] == "unsubscribed"


def test_resubscribing_reveals_nothing_and_changes_nothing(
    client: TestClient, db: Database, smtp_sink: SmtpSink
) -> None:
    subs.admin_subscribe(db, "known@example.org", subs.Prefs(query="robotics"), confirmed=True)
    new = post(client, "/digest/subscribe", {"email": "unknown@example.org", "q": "spam"})
    known = post(client, "/digest/subscribe", {"email": "known@example.org", "q": "spam"})
    assert new.status_code == known.status_code == 200
    assert new.text.replace("unknown@example.org", "X") == known.text.replace("known@example.org", "X")
    assert sub_row(db, "known@example.org")["query"] == "robotics"  # unchanged until the owner confirms
    [mail] = smtp_sink.to("known@example.org")
    assert mail.msg["Subject"] == "Confirm the changes to your paperfeed digest"
    # Hammering the form does not mail-bomb the address (and still looks the same).
    for _ in range(5):
        again = post(client, "/digest/subscribe", {"email": "known@example.org", "q": "spam"})
        assert again.text == known.text
    assert len(smtp_sink.to("known@example.org")) == 1


@pytest.mark.parametrize(
    ("data", "status", "needle"),
    [
        ({"email": "not-an-email"}, 422, "not a valid email"),
        ({"email": "a@b.c\r\nBcc: x@y.z"}, 422, "not a valid email"),
        ({"email": "victim@example.org\nBcc: everyone@example.org"}, 422, "not a valid email"),
        ({"email": ""}, 422, "Enter your email"),
        ({}, 422, "Enter your email"),
        ({"email": "ok@example.org", "q": "x" * 600}, 422, "too long"),
        ({"email": "ok@example.org", "categories": "cs.LG\r\nBcc: x"}, 422, "not an arXiv category"),
        ({"email": "ok@example.org", "timezone": "Europe/Atlantis"}, 422, "Unknown time zone"),
        ({"email": "ok@example.org", "send_hour": "-1"}, 422, "0 to 23"),
        ({"email": "ok@example.org", "frequency": "hourly"}, 422, "daily or weekly"),
        ({"email": "ok@example.org", "q": "y" * 20_000}, 422, "q: String should have at most 2000 characters"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(
    client: TestClient, db: Database, smtp_sink: SmtpSink, data: dict, status: int, needle: str
) -> None:
    r = post(client, "/digest/subscribe", data)
    assert r.status_code == status and needle in r.text
    assert "Traceback" not in r.text
    assert counts(db) == (0, 0) and smtp_sink.count() == 0


def test_form_echo_is_escaped(client: TestClient) -> None:
    r = post(client, "/digest/subscribe", {"email": '"><script>alert(1)</script>', "q": "<b>x</b>"})
    assert r.status_code == 422
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text


def test_other_encodings_and_methods(client: TestClient, db: Database) -> None:
    token = {"X-CSRF-Token": csrf(client)}
    # A JSON body is not a form: no field arrives, so the form says what is missing.
    r = client.post("/digest/subscribe", json={"email": "j@example.org"}, headers=token)
    assert r.status_code == 422 and "Enter your email" in r.text
    assert client.post("/digest/subscribe", data={"email": "j@example.org"}).status_code == 403  # no CSRF token
    assert client.put("/digest/subscribe", headers=token).status_code == 405
    assert counts(db) == (0, 0)


@pytest.mark.parametrize("path", ["/digest/confirm", "/digest/manage", "/digest/unsubscribe"])
@pytest.mark.parametrize("token", ["", "garbage", "a" * 5000, "eyJzIjoxfQ.forged", "../../etc/passwd"])
def test_bad_links_get_a_clear_400(client: TestClient, db: Database, path: str, token: str) -> None:
    got = client.get(path, params={"t": token})
    posted = post(client, path, {"t": token})
    for r in (got, posted):
        assert r.status_code == 400, (path, token, r.status_code)
        assert "link" in r.text and "Traceback" not in r.text
    assert counts(db) == (0, 0)


def test_manage_validates(client: TestClient, db: Database, web_settings: Settings) -> None:
    sub_id, _ = subs.admin_subscribe(db, "v@example.org", subs.Prefs(), confirmed=True)
    tok = subs.Tokens.from_settings(web_settings).manage(sub_id, sub_row(db, "v@example.org")["manage_nonce"])
    bad = post(client, "/digest/manage", {"t": tok, "timezone": "Nowhere", "q": "ok"})
    assert bad.status_code == 422 and "Unknown time zone" in bad.text
    assert sub_row(db, "v@example.org")["query"] is None
    good = post(client, "/digest/manage", {"t": tok, "categories": "cs.lg eess.sp", "frequency": "weekly"})
    assert good.status_code == 200
    row = sub_row(db, "v@example.org")
    assert (row["categories"], row["frequency"]) == ("cs.LG eess.SP", "weekly")


def test_pages_follow_the_site_rules(client: TestClient) -> None:
    for path in ("/digest/subscribe?q=graph%20neural%20networks&category=cs.LG", "/digest/tz.js", "/digest/digest.css"):
        r = client.get(path)
        assert r.status_code == 200
        assert "content-security-policy" in r.headers
    page = client.get("/digest/subscribe?q=graph%20neural%20networks&category=cs.LG")
    assert 'value="graph neural networks"' in page.text and 'value="cs.LG"' in page.text
    assert re.search(r"no-store|private", page.headers["cache-control"])  # never in a shared cache
    assert page.headers["referrer-policy"] == "no-referrer"  # the URL may carry a token
    assert " style=" not in page.text  # the CSP allows no inline styles
    assert "<script>" not in page.text  # ... nor inline scripts


def test_search_results_offer_a_digest(client: TestClient, db: Database, web_settings: Settings) -> None:
    from paperfeed.search.lexical import LexicalIndex

    add_paper(db, title="Graph neural networks for traffic", categories="cs.LG")
    LexicalIndex(web_settings).update(db, progress=False)
    page = client.get("/papers/search", params={"q": "graph neural networks", "category": "cs.LG"})
    assert page.status_code == 200
    link = re.search(r'href="(/digest/subscribe\?[^"]+)"', page.text).group(1).replace("&amp;", "&")
    form = client.get(link)
    assert 'value="graph neural networks"' in form.text and 'value="cs.LG"' in form.text


def test_sign_ups_are_rate_limited_per_ip(client: TestClient, db: Database, smtp_sink: SmtpSink) -> None:
    codes = [post(client, "/digest/subscribe", {"email": f"flood{i}@example.org"}).status_code for i in range(12)]
    assert codes[:10] == [200] * 10 and codes[-1] == 429  # a burst of 10, then 20 an hour
    r = post(client, "/digest/subscribe", {"email": "one-more@example.org"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "wait" in r.text
    assert sub_row(db, "one-more@example.org") is None
