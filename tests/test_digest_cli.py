"""``paperfeed digest ...`` commands: subscribe, list, status, send (dry run, real, resume),
preview, unsubscribe, inbound; bad arguments give a clear message and exit code 2."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperfeed.cli import app
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store
from paperfeed.store.db import Database

from . import smtp
from .factories import add_daily, add_paper
from .servers import free_port
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink  # the loopback SMTP server fixture


@pytest.fixture
def env(tmp_path: Path, smtp_sink: SmtpSink) -> dict[str, str]:
    return {
        "PAPERFEED_HOME": str(tmp_path / "home"),
        "PAPERFEED_SECRET_KEY": "cli-secret",
        "PAPERFEED_SMTP_URL": smtp_sink.url,
        "PAPERFEED_DATABASE_URL": "",
        "PAPERFEED_BASE_URL": "https://paperfeed.example",
    }


@pytest.fixture
def cli_db(env: dict[str, str]) -> Database:
    s = Settings(home=Path(env["PAPERFEED_HOME"]), secret_key="cli-secret")
    database = Database(s.db_url)
    database.migrate()
    for i in range(5):
        p = add_paper(database, upvotes=i, listed=date(2026, 11, 23), categories="cs.CL")
        add_daily(database, p["id"], date(2026, 11, 23))
    yield database
    database.dispose()


def run(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["digest", *args], env=env, input=input)
    return result.exit_code, result.output


def test_subscribe_list_send_preview_unsubscribe(
    env: dict[str, str], cli_db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    code, out = run(env, "subscribe", "Admin@Example.org", "--confirmed", "--categories", "cs.cl", "--hour", "6")
    assert code == 0 and "active" in out
    code, out = run(env, "subscribe", "pending@example.org")
    assert code == 0 and "confirmation mail" in out and "sent" in out
    assert [m.msg["Subject"] for m in smtp_sink.to("pending@example.org")] == ["Confirm your paperfeed digest"]

    code, out = run(env, "list")
    assert code == 0 and "admin@example.org" in out and "pending@example.org" in out and "cs.CL" in out

    code, out = run(env, "send", "--date", "2026-11-24", "--dry-run")
    assert code == 0 and "admin@example.org" in out and "nothing was recorded" in out
    with cli_db.read() as conn:
        assert store.delivery_status_counts(conn) == {"sent": 1}  # only the confirmation so far

    preview = tmp_path / "preview.html"
    code, out = run(env, "preview", "1", "--date", "2026-11-24", "--out", str(preview))
    assert code == 0 and "5 papers" in out
    assert "<html" in preview.read_text() and preview.with_suffix(".txt").exists()
    assert smtp_sink.count() == 1  # previews send nothing

    code, out = run(env, "send", "--date", "2026-11-24", "--quiet")
    assert code == 0 and "sent 1" in out
    [digest] = smtp_sink.to("admin@example.org")
    assert "List-Unsubscribe" in digest.msg
    code, out = run(env, "send", "--date", "2026-11-24", "--quiet")
    assert code == 0 and "nothing to do" in out  # the ledger: no second digest

    code, out = run(env, "status")
    assert code == 0 and "'active': 1" in out and "'sent': 2" in out

    code, out = run(env, "unsubscribe", "admin@example.org")
    assert code == 0
    with cli_db.read() as conn:
        assert subscription_store.get_subscription_by_email(conn, "admin@example.org")["status"] == "unsubscribed"


def test_inbound_unsubscribe_mail(env: dict[str, str], cli_db: Database) -> None:
    sub_id, _ = subs.admin_subscribe(cli_db, "inbox@example.org", subs.Prefs(), confirmed=True)
    with cli_db.read() as conn:
        nonce = subscription_store.get_subscription(conn, sub_id)["manage_nonce"]
    token = subs.Tokens("cli-secret").unsubscribe(sub_id, nonce)
    code, out = run(env, "inbound", input=f"From: inbox@example.org\nSubject: unsubscribe {token}\n\n")
    assert code == 0 and "unsubscribed inbox@example.org" in out
    code, out = run(env, "inbound", input="Subject: hello\n\nhi\n")
    assert code == 0 and "ignored" in out


def test_server_down_exits_2_and_keeps_the_queue(env: dict[str, str], cli_db: Database) -> None:
    subs.admin_subscribe(cli_db, "later@example.org", subs.Prefs(), confirmed=True)
    down = {**env, "PAPERFEED_SMTP_URL": f"smtp://127.0.0.1:{free_port()}?timeout=2"}
    code, out = run(down, "send", "--date", "2026-11-24", "--quiet")
    assert code == 2 and "stay queued" in out
    with cli_db.read() as conn:
        assert store.delivery_status_counts(conn) == {"retry": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "--date", "2026-02-30"], "is not a date"),
        (["send", "--period", "hourly"], "daily or weekly"),
        (["send", "--to", "a@b.c\r\nBcc: x@y.z"], "not a valid email"),
        (["subscribe", "not-an-email"], "not a valid email"),
        (["subscribe", "ok@example.org", "--timezone", "Mars/Base"], "Unknown time zone"),
        (["subscribe", "ok@example.org", "--hour", "25"], "0 to 23"),
        (["preview", "999"], "no subscription"),
        (["unsubscribe", "nobody@example.org"], "has no subscription"),
    ],
)
def test_bad_arguments(env: dict[str, str], cli_db: Database, args: list[str], message: str) -> None:
    code, out = run(env, *args)
    assert code == 2, out
    assert message in re.sub(r"\s+", " ", out)


def test_bad_smtp_url(env: dict[str, str], cli_db: Database) -> None:
    code, out = run({**env, "PAPERFEED_SMTP_URL": "http://mail.example.org"}, "send")
    assert code == 2 and "smtp://" in out
