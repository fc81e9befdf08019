"""``paperfeed digest ...``: send due digests (cron or by hand), preview one, manage subscribers.

``send`` is safe to run at any time and any number of times: the delivery ledger makes it
resume where a previous run stopped (Ctrl-C, crash, mail server down) without sending anyone a
second digest for the same period; while another process (the ``serve`` scheduler) is sending,
it says so and exits.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from paperfeed.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNUSABLE, console, database, fail, out, settings
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.compose import Composer, Topic
from paperfeed.digest.periods import FREQUENCIES, period_for
from paperfeed.digest.send import SendOptions, SendReport, preview_due, send_due, send_now
from paperfeed.mail import mailer
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store

digest_app = typer.Typer(help="Email digests: send, preview, subscribers.", no_args_is_help=True)


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"--date {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-24") from None


def _check_frequency(value: str | None) -> str | None:
    if value is not None and value not in FREQUENCIES:
        raise fail(f"--period must be daily or weekly, not {value!r}")
    return value


def _print_report(report: SendReport) -> None:
    out.print(f"digest: {report.summary()}")
    if report.transport_error:
        console.print(f"[yellow]mail server unavailable:[/yellow] {escape(str(report.transport_error))}")
        console.print("the unsent digests stay queued; the next run sends them")


@digest_app.command("send")
def send_cmd(
    period: str | None = typer.Option(None, "--period", help="Only daily or weekly digests (default: both)."),
    date_: str | None = typer.Option(
        None, "--date", help="Send the period of this day (YYYY-MM-DD) to every subscriber, whatever their send hour."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show who would get what; send and record nothing."),
    to: str | None = typer.Option(None, "--to", help="Only this subscriber's address."),
    max_bounces: int = typer.Option(3, "--max-bounces", min=1, help="Hard bounces before an address is suppressed."),
    batch_size: int = typer.Option(200, "--batch-size", min=1, max=5000, help="Rows composed per transaction."),
    connections: int = typer.Option(
        2,
        "--connections",
        min=1,
        max=16,
        help="Parallel SMTP connections (each may leave one message in doubt on a crash).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Send the digests that are due (default: each subscriber's local send time has passed today)."""
    frequency = _check_frequency(period)
    day = _parse_date(date_)
    email = None
    if to is not None:
        try:
            email = subs.normalize_email(to)
        except subs.SubscriptionError as exc:
            raise fail(f"--to: {exc.errors['email']}") from None
    s = settings()
    if s.smtp_url:
        try:
            mailer.SmtpConfig.parse(s.smtp_url)
        except ValueError as exc:
            raise fail(str(exc)) from None
    db = database(s)
    if dry_run:
        report = preview_due(s, db, day=day, frequency=frequency, email=email)
        table = Table("address", "period", "papers")
        for row in report.preview:
            table.add_row(row["email"], row["period"], str(row["papers"]) if row["papers"] else "[dim]none: skipped")
        out.print(table)
        out.print(f"dry run: {report.planned} would be sent, {report.empty} have nothing new (nothing was recorded)")
        raise typer.Exit(EXIT_OK)
    options = SendOptions(max_hard_bounces=max_bounces, batch_size=batch_size, connections=connections)
    console.print(f"sending through {mailer.describe_transport(s)}")
    progress = Progress(
        TextColumn("[bold]digests"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet,
    )  # fmt: skip
    task = progress.add_task("send", total=None)
    try:
        with progress:
            report = send_due(
                s,
                db,
                day=day,
                frequency=frequency,
                email=email,
                options=options,
                progress=lambda n: progress.advance(task, n),
                on_start=lambda total: progress.update(task, total=total),
            )
    except KeyboardInterrupt:
        console.print("interrupted: what was not sent stays queued; run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if report.lease_busy:
        out.print("another process is sending digests right now (the serve scheduler?); nothing to do here")
        raise typer.Exit(EXIT_OK)
    _print_report(report)
    if report.transport_error:
        raise typer.Exit(EXIT_UNUSABLE)


@digest_app.command("preview")
def preview_cmd(
    subscription_id: int = typer.Argument(..., help="The subscription id (see `paperfeed digest list`)."),
    out_file: Path | None = typer.Option(None, "--out", help="HTML file to write (default digest-preview-ID.html)."),
    date_: str | None = typer.Option(None, "--date", help="The send day (default: today in the subscriber's zone)."),
) -> None:
    """Compose one subscriber's digest and write it as HTML (plus .txt); sends and records nothing."""
    s = settings()
    db = database(s)
    with db.read() as conn:
        row = subscription_store.get_subscription(conn, subscription_id)
        if row is None:
            raise fail(f"no subscription with id {subscription_id}")
        already = set(store.papers_sent_to(conn, subscription_id))
    prefs = subs.Prefs.from_row(row)
    day = _parse_date(date_) or datetime.now(UTC).astimezone(ZoneInfo(prefs.timezone)).date()
    period = period_for(prefs.frequency, day, prefs.weekdays_only)
    composer = Composer(s, db)
    sections = composer.choose(period, Topic.of(prefs), already)
    if not sections:
        out.print(f"nothing new for {row['email']} in {period.key} ({period.label}): no digest would be sent")
        raise typer.Exit(EXIT_OK)
    tokens = subs.Tokens.from_settings(s)
    links = subs.links_for(s, tokens, row["id"], row["manage_nonce"] or "preview")
    rendered = composer.render_digest(email=row["email"], prefs=prefs, period=period, sections=sections, links=links)
    target = out_file or Path(f"digest-preview-{subscription_id}.html")
    target.write_text(rendered.html, encoding="utf-8")
    target.with_suffix(".txt").write_text(rendered.text, encoding="utf-8")
    out.print(f"{period.key}: {sum(len(x.ids) for x in sections)} papers · subject: {rendered.subject}")
    out.print(f"wrote {target} and {target.with_suffix('.txt')}")


@digest_app.command("subscribe")
def subscribe_cmd(
    email: str = typer.Argument(..., help="The address."),
    frequency: str = typer.Option("daily", "--frequency", help="daily or weekly."),
    query: str | None = typer.Option(None, "--query", help="Only papers matching this search."),
    categories: str | None = typer.Option(None, "--categories", help="Only these categories, e.g. 'cs.LG cs.CL'."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone, e.g. Europe/Berlin."),
    hour: int = typer.Option(8, "--hour", help="Local hour to send at (0-23)."),
    weekends: bool = typer.Option(False, "--weekends", help="Daily digests on Saturday and Sunday too."),
    confirmed: bool = typer.Option(
        False, "--confirmed", help="Activate at once (you vouch for the address); default: send a confirmation mail."
    ),
) -> None:
    """Add a subscriber (admin convenience)."""
    s = settings()
    try:
        prefs = subs.parse_prefs(
            frequency=frequency,
            query=query,
            categories=categories,
            timezone=timezone,
            send_hour=hour,
            weekdays_only=not weekends,
        )
        address = subs.normalize_email(email)
    except subs.SubscriptionError as exc:
        raise fail("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    db = database(s)
    sub_id, delivery = subs.admin_subscribe(db, address, prefs, confirmed=confirmed)
    if confirmed:
        out.print(f"subscription {sub_id}: {address} is active ({'; '.join(prefs.describe())})")
        return
    if delivery is None:
        out.print(f"{address}: a confirmation mail was sent moments ago; not sending another one yet")
        return
    report = send_now(s, db, delivery)
    state = "sent" if report.sent else "queued (mail server unavailable; the scheduler retries)"
    out.print(f"subscription {sub_id}: confirmation mail to {address} {state}")


@digest_app.command("unsubscribe")
def unsubscribe_cmd(email: str = typer.Argument(..., help="The address.")) -> None:
    """Stop all digests to an address."""
    s = settings()
    db = database(s)
    try:
        address = subs.normalize_email(email)
    except subs.SubscriptionError as exc:
        raise fail(exc.errors["email"]) from None
    with db.write() as conn:
        row = subscription_store.get_subscription_by_email(conn, address)
        if row is None:
            raise fail(f"{address} has no subscription")
        subscription_store.update_subscription(conn, row["id"], status="unsubscribed")
    out.print(f"{address}: unsubscribed")


@digest_app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="pending, active, unsubscribed or suppressed."),
    limit: int = typer.Option(50, "--limit", min=1, max=100_000),
) -> None:
    """List subscriptions."""
    db = database()
    with db.read() as conn:
        rows = subscription_store.list_subscriptions(conn, status=status, limit=limit)
    table = Table("id", "email", "status", "frequency", "topics", "when")
    for r in rows:
        topics = " · ".join(x for x in (r["query"], r["categories"]) if x) or "-"
        table.add_row(
            str(r["id"]), r["email"], r["status"], r["frequency"], topics, f"{r['send_hour']:02d}h {r['timezone']}"
        )
    out.print(table)


@digest_app.command("status")
def status_cmd(period: str | None = typer.Option(None, "--period-key", help="e.g. daily:2026-11-24")) -> None:
    """Subscribers by status and the delivery ledger by status."""
    s = settings()
    db = database(s)
    with db.read() as conn:
        out.print({"subscriptions": subscription_store.subscription_status_counts(conn)})
        out.print({"deliveries": store.delivery_status_counts(conn, period)})
    out.print(f"mail goes through {mailer.describe_transport(s)}")


@digest_app.command("inbound")
def inbound_cmd() -> None:
    """Read one mail on stdin (the List-Unsubscribe mailto address piped here by the MTA) and
    unsubscribe the address whose token its subject carries."""
    s = settings()
    db = database(s)
    raw = sys.stdin.buffer.read(2_000_000)
    email = subs.unsubscribe_from_mail(db, subs.Tokens.from_settings(s), raw)
    out.print(f"unsubscribed {email}" if email else "no valid unsubscribe token in this message; ignored")


def register(app: typer.Typer) -> None:
    app.add_typer(digest_app, name="digest")
