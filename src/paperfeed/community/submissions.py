"""Paper submissions: a signed-in user puts an arXiv paper on today's daily feed.

Accepts any form :func:`paperfeed.records.parse_arxiv_id` knows (``2405.15738``,
``2405.15738v2``, ``arXiv:2405.15738``, abs/pdf URLs, old-style ids). A paper the database does
not have yet is fetched with OAI-PMH ``GetRecord`` (``ingest.oai.fetch_record``, outside any
transaction) and stored by the importer's own upsert. Rules: one daily entry per paper, only
papers first published within ``settings.submission_window_days``, at most
``settings.submissions_per_day`` submissions per user per (UTC) day; admins are exempt from the
window and the quota. Runs from the submit page and ``POST /api/papers/index``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.exc import IntegrityError

from paperfeed.community.core import Community, User, require_verified
from paperfeed.community.errors import CommunityError, Conflict, NotFound, RateLimited
from paperfeed.community.ratelimit import bucket, human_wait
from paperfeed.config import Settings
from paperfeed.records import PaperRecord, RecordError, parse_arxiv_id
from paperfeed.store import community_store as store
from paperfeed.store import papers as paper_store

Fetcher = Callable[[Settings, str], PaperRecord]


@dataclass(frozen=True)
class Submission:
    paper_id: str
    title: str
    feed_date: str  # ISO date of the daily feed it entered
    fetched: bool  # True when the metadata was fetched from arXiv just now

    def as_json(self) -> dict[str, object]:
        return {"paperId": self.paper_id, "title": self.title, "feedDate": self.feed_date, "fetched": self.fetched}


def _default_fetch(settings: Settings, arxiv_id: str) -> PaperRecord:
    from paperfeed.ingest.oai import fetch_record

    return fetch_record(settings, arxiv_id)


def _fetch(c: Community, fetch: Fetcher, pid: str) -> PaperRecord:
    from paperfeed.ingest.oai import HarvestError, RecordNotFound

    try:
        return fetch(c.settings, pid)
    except RecordNotFound:
        raise NotFound(f"arXiv has no paper {pid} (or it was withdrawn).") from None
    except RecordError as exc:
        raise CommunityError(f"arXiv's record for {pid} could not be used: {exc}", status=502) from None
    except (HarvestError, OSError) as exc:
        raise CommunityError(
            f"arXiv could not be reached just now ({exc}); please try again later.", status=502
        ) from None


def submit(
    c: Community, user: User | None, text: str, *, ip: str | None = None, fetch: Fetcher | None = None
) -> Submission:
    """Add the paper named by ``text`` to today's daily feed, credited to ``user``."""
    user = require_verified(user)
    try:
        pid, _version = parse_arxiv_id((text or "")[:300])
    except ValueError as exc:
        raise CommunityError(str(exc)) from None
    c.rate_limiter.hit(
        bucket("submit:user", user.id, c.limits.submit_user),
        bucket("submit:ip", ip, c.limits.submit_ip),
        what="submissions",
    )
    now = c.now()
    today = now.date()
    day_start = datetime.combine(today, time.min)
    quota = c.settings.submissions_per_day

    def check_quota(count: int) -> None:
        if not user.is_admin and count >= quota:
            wait = (day_start + timedelta(days=1) - now).total_seconds()
            raise RateLimited(
                f"You have used today's {quota} submissions; the quota resets in {human_wait(wait)}.", wait
            )

    with c.db.read() as conn:
        _check_entry(store.get_entry(conn, pid), pid)
        check_quota(store.count_submissions_since(conn, user.id, day_start))
        paper = paper_store.get_paper(conn, pid)
    record = None
    if paper is None:
        record = _fetch(c, fetch or _default_fetch, pid)
        published, title = record.published, record.title
    else:
        published, title = paper["published"], paper["title"]
    window = c.settings.submission_window_days
    if not user.is_admin and published is not None and published < today - timedelta(days=window):
        raise CommunityError(
            f"Only papers first published in the last {window} days can be submitted; "
            f"{pid} appeared on {published.isoformat()}."
        )
    for attempt in range(2):
        try:
            with c.db.write() as conn:
                store.lock_user_row(conn, user.id)  # the quota check and the insert are one step
                check_quota(store.count_submissions_since(conn, user.id, day_start))
                if record is not None:
                    paper_store.upsert_arxiv(conn, [record], now)
                if not store.insert_entry(conn, pid, today, user.id, user.username, now):
                    _check_entry(store.get_entry(conn, pid), pid)
                    raise Conflict(f"{pid} is already on the daily feed.")
            break
        except IntegrityError:
            # Someone else stored the same new paper a moment ago (PostgreSQL lets both fetch and
            # insert it); once more, the upsert sees it and the entry decides who was first.
            if attempt:
                raise Conflict(f"{pid} was just submitted by someone else.") from None
    return Submission(pid, title, today.isoformat(), record is not None)


def _check_entry(entry: dict[str, object] | None, pid: str) -> None:
    if entry is None:
        return
    if entry.get("hidden"):
        raise Conflict(f"{pid} was removed from the daily feed by a moderator.")
    raise Conflict(f"{pid} is already on the daily feed (since {entry['feed_date']}).")
