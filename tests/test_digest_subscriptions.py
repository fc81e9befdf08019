"""Digest subscriptions: validation, signed links, double opt-in, re-subscribing, unsubscribing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store
from paperfeed.store.db import Database


@pytest.fixture
def tokens(settings: Settings) -> subs.Tokens:
    return subs.Tokens.from_settings(settings)


def _sub(db: Database, email: str) -> dict:
    with db.read() as conn:
        row = subscription_store.get_subscription_by_email(conn, email)
    assert row is not None
    return row


def _deliveries(db: Database, sub_id: int) -> list[dict]:
    with db.read() as conn:
        return store.deliveries_for(conn, sub_id)


# -- validation ---------------------------------------------------------------------------------


def test_parse_prefs_accepts_and_normalises() -> None:
    p = subs.parse_prefs(
        frequency="Weekly",
        query="  graph   neural\tnetworks ",
        categories=["cs.LG, cs.CL", "cond-mat.mes-hall cs.LG"],
        timezone="Europe/Berlin",
        send_hour="7",
        weekdays_only="0",
    )
    assert p == subs.Prefs(
        "weekly", "graph neural networks", ("cs.LG", "cs.CL", "cond-mat.mes-hall"), "Europe/Berlin", 7, False
    )
    assert subs.parse_prefs() == subs.Prefs()  # defaults: daily, weekdays, 08:00 UTC, no topics


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("frequency", {"frequency": "hourly"}),
        ("timezone", {"timezone": "Mars/Olympus_Mons"}),
        ("timezone", {"timezone": "UTC" * 40}),
        ("send_hour", {"send_hour": "24"}),
        ("send_hour", {"send_hour": "8am"}),
        ("categories", {"categories": "cs.LG%"}),
        ("categories", {"categories": "cs.LG' OR 1=1 --"}),
        ("categories", {"categories": " ".join(f"cs.A{chr(65 + i)}" for i in range(21))}),
        ("categories", {"categories": "x" * 5000}),
        ("query", {"query": "q" * 501}),
        ("query", {"query": "graph\x00networks"}),
    ],
)
def test_parse_prefs_rejects_with_a_field_message(field: str, kwargs: dict) -> None:
    with pytest.raises(subs.SubscriptionError) as err:
        subs.parse_prefs(**kwargs)
    assert field in err.value.errors and err.value.errors[field]


def test_all_errors_reported_at_once() -> None:
    with pytest.raises(subs.SubscriptionError) as err:
        subs.parse_prefs(frequency="x", timezone="Nowhere", send_hour="99")
    assert set(err.value.errors) == {"frequency", "timezone", "send_hour"}


def test_email_normalised() -> None:
    assert subs.normalize_email("  Alice.Smith@Example.ORG ") == "alice.smith@example.org"


INVALID = "That is not a valid email address"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "Enter your email address."),
        ("not-an-email", f"{INVALID}: An email address must have an @-sign."),
        ("a@b.c\r\nBcc: x@y.z", f"{INVALID}."),
        ("a@b.c\nBcc: x@y.z", f"{INVALID}."),
        ("alice@example.org\x00", f"{INVALID}."),
        ("x" * 300 + "@example.org", f"{INVALID}."),
        ("a" * 65 + "@example.org", "That email address is too long."),
        ("bob@localhost", f"{INVALID}: The part after the @-sign is not valid. It should have a period."),
        ("<bob@example.org>", f"{INVALID}: A display name and angle brackets"),
        ("bob@example.org, eve@example.org", f"{INVALID}: The part after the @-sign contains invalid characters"),
        ("José@example.org", f"{INVALID}: Internationalized characters before the @-sign are not supported"),
    ],
)
def test_bad_emails_rejected(bad: str, message: str) -> None:
    with pytest.raises(subs.SubscriptionError) as err:
        subs.normalize_email(bad)
    assert err.value.errors["email"].startswith(message), err.value.errors


# -- tokens -------------------------------------------------------------------------------------


def test_tokens_round_trip_and_reject_tampering(tokens: subs.Tokens) -> None:
    prefs = subs.Prefs(query="diffusion")
    tok = tokens.confirm(7, "n" * 32, prefs)
    assert tokens.read_confirm(tok) == (7, "n" * 32, prefs)
    assert tokens.read_manage(tokens.manage(7, "m")) == (7, "m")
    assert tokens.read_unsubscribe(tokens.unsubscribe(7, "m")) == (7, "m")
    for broken in (tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"), tok + "x", "", "garbage", "a" * 5000):
        with pytest.raises(subs.TokenError):
            tokens.read_confirm(broken)
    # A token of one kind is no good for another (separate salts).
    with pytest.raises(subs.TokenError):
        tokens.read_unsubscribe(tokens.manage(7, "m"))
    with pytest.raises(subs.TokenError):
        subs.Tokens("another-secret").read_manage(tokens.manage(7, "m"))


def test_confirm_tokens_expire(tokens: subs.Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 4 * 86400)
    old = tokens.confirm(1, "n", subs.Prefs())
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(subs.TokenError, match="expired"):
        tokens.read_confirm(old)


# -- the life cycle (both databases) ------------------------------------------------------------


def test_double_opt_in(any_db: Database, tokens: subs.Tokens) -> None:
    prefs = subs.Prefs(frequency="weekly", categories=("cs.CL",))
    delivery = subs.request_subscription(any_db, "New@Example.org", prefs)
    row = _sub(any_db, "new@example.org")
    assert row["status"] == "pending" and row["confirmed_at"] is None
    queued = _deliveries(any_db, row["id"])
    assert [d["id"] for d in queued] == [delivery]
    assert queued[0]["period"].startswith("confirm:") and queued[0]["payload"]["kind"] == "new"

    token = tokens.confirm(row["id"], queued[0]["payload"]["nonce"], prefs)
    pending = subs.check_confirm(any_db, tokens, token)  # what the GET page shows: no change
    assert pending.email == "new@example.org" and not pending.already_active
    assert _sub(any_db, "new@example.org")["status"] == "pending"

    active = subs.confirm(any_db, tokens, token, timezone="Asia/Tokyo", send_hour="6")
    assert active["status"] == "active" and active["confirmed_at"] is not None
    assert (active["frequency"], active["categories"], active["timezone"], active["send_hour"]) == (
        "weekly",
        "cs.CL",
        "Asia/Tokyo",
        6,
    )
    with pytest.raises(subs.TokenError, match="already used"):  # single use
        subs.confirm(any_db, tokens, token)


def test_resubscribing_never_changes_settings_without_the_owner(any_db: Database, tokens: subs.Tokens) -> None:
    sub_id, _ = subs.admin_subscribe(any_db, "owner@example.org", subs.Prefs(query="robotics"), confirmed=True)
    before = _sub(any_db, "owner@example.org")
    stranger_prefs = subs.Prefs(frequency="weekly", query="spam")
    delivery = subs.request_subscription(any_db, "OWNER@example.org", stranger_prefs, now=datetime(2030, 1, 1))
    after = _sub(any_db, "owner@example.org")
    for col in ("status", "frequency", "query", "categories", "timezone", "send_hour", "manage_nonce"):
        assert after[col] == before[col], col
    # Only a mail to the owner went out, asking to confirm the change.
    with any_db.read() as conn:
        d = store.get_delivery(conn, delivery)
    assert d["subscription_id"] == sub_id and d["payload"]["kind"] == "change"
    # The owner clicking it applies exactly what the mail said.
    row = subs.confirm(any_db, tokens, tokens.confirm(sub_id, d["payload"]["nonce"], stranger_prefs))
    assert (row["frequency"], row["query"]) == ("weekly", "spam")


def test_confirmation_mails_are_rate_limited(any_db: Database, tokens: subs.Tokens) -> None:
    t0 = datetime(2030, 1, 1, 12, 0)
    first = subs.request_subscription(any_db, "rate@example.org", subs.Prefs(), now=t0)
    assert first is not None
    assert subs.request_subscription(any_db, "rate@example.org", subs.Prefs(), now=t0 + timedelta(seconds=30)) is None
    second = subs.request_subscription(any_db, "rate@example.org", subs.Prefs(), now=t0 + timedelta(minutes=3))
    assert second is not None and second != first
    # The newer mail replaces the older link.
    row = _sub(any_db, "rate@example.org")
    with any_db.read() as conn:
        old_nonce = store.get_delivery(conn, first)["payload"]["nonce"]
    with pytest.raises(subs.TokenError):
        subs.confirm(any_db, tokens, tokens.confirm(row["id"], old_nonce, subs.Prefs()))
    for i in range(10):
        subs.request_subscription(any_db, "rate@example.org", subs.Prefs(), now=t0 + timedelta(minutes=10 + 3 * i))
    with any_db.read() as conn:
        n = subscription_store.confirmations_since(conn, row["id"], t0 - timedelta(minutes=1))
    assert n == subs.CONFIRM_MAX_PER_DAY


def test_manage_unsubscribe_and_resume(any_db: Database, tokens: subs.Tokens) -> None:
    sub_id, _ = subs.admin_subscribe(any_db, "m@example.org", subs.Prefs(), confirmed=True)
    row = _sub(any_db, "m@example.org")
    manage = tokens.manage(sub_id, row["manage_nonce"])
    unsub = tokens.unsubscribe(sub_id, row["manage_nonce"])
    assert subs.manage_view(any_db, tokens, manage)["email"] == "m@example.org"
    updated = subs.update_settings(any_db, tokens, manage, subs.Prefs(frequency="weekly", categories=("cs.IR",)))
    assert (updated["frequency"], updated["categories"]) == ("weekly", "cs.IR")

    assert subs.unsubscribe_view(any_db, tokens, unsub)["status"] == "active"  # GET: no change
    assert subs.unsubscribe(any_db, tokens, unsub)["status"] == "unsubscribed"
    assert subs.unsubscribe(any_db, tokens, unsub)["status"] == "unsubscribed"  # idempotent
    assert _sub(any_db, "m@example.org")["status"] == "unsubscribed"

    resumed = subs.update_settings(any_db, tokens, manage, subs.Prefs(), resume=True)
    assert resumed["status"] == "active"
    with pytest.raises(subs.TokenError):  # a link for another subscription id
        subs.unsubscribe(any_db, tokens, tokens.unsubscribe(sub_id + 1, row["manage_nonce"]))


def test_unsubscribe_by_mail(db: Database, tokens: subs.Tokens) -> None:
    sub_id, _ = subs.admin_subscribe(db, "mailer@example.org", subs.Prefs(), confirmed=True)
    row = _sub(db, "mailer@example.org")
    raw = (
        "From: mailer@example.org\r\nTo: digest@localhost\r\n"
        f"Subject: unsubscribe {tokens.unsubscribe(sub_id, row['manage_nonce'])}\r\n\r\nbye\r\n"
    ).encode()
    assert subs.unsubscribe_from_mail(db, tokens, raw) == "mailer@example.org"
    assert _sub(db, "mailer@example.org")["status"] == "unsubscribed"
    assert subs.unsubscribe_from_mail(db, tokens, b"Subject: unsubscribe forged.token\r\n\r\n") is None
    assert subs.unsubscribe_from_mail(db, tokens, b"\xff\xfe garbage") is None
