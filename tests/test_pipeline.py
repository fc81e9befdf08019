"""The self-running pipeline in one process: arXiv's announcement schedule, the scheduled harvest
(then waiting for the next announcement; back-off with one warning per attempt when arXiv cannot
be reached), leader election and takeover, embedding of new papers, digests sent by the leader
only, and the app starting and stopping it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.pipeline import announce, harvest_job
from paperfeed.pipeline.harvest_job import HarvestJob, backoff
from paperfeed.pipeline.runner import LEADER, Intervals, Pipeline
from paperfeed.search.encoder import MODEL_NAME
from paperfeed.store import embeddings as embedding_store
from paperfeed.store import leases, pipeline_state
from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings, papers
from paperfeed.web.app import create_app

from . import smtp
from .factories import add_daily, add_paper
from .oai_server import OAIReplayServer, synthetic_listing
from .servers import free_port
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink
NO_WAIT: Callable[[float], None] = lambda _s: None  # noqa: E731 - the harvest's sleeps, skipped


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def oai() -> Iterator[OAIReplayServer]:
    server = OAIReplayServer().start()
    yield server
    server.stop()


def paper_ids(db: Database) -> set[str]:
    with db.read() as conn:
        return {r[0] for r in conn.execute(select(papers.c.id))}


def always(_conn: object = None) -> bool:
    return True


# -- the schedule -------------------------------------------------------------------------------


def test_announcement_schedule() -> None:
    # Tuesday 1 December 2026, 23:00 UTC = 18:00 in New York (EST, UTC-5).
    now = datetime(2026, 12, 1, 23, 0)
    assert announce.last_announcement(now) == datetime(2026, 12, 1, 1, 0)  # Monday 20:00 EST
    assert announce.next_announcement(now) == datetime(2026, 12, 2, 1, 0)  # Tuesday 20:00 EST
    assert announce.next_harvest_slot(now) == datetime(2026, 12, 2, 1, 30)
    assert announce.last_harvest_slot(datetime(2026, 12, 2, 1, 29)) == datetime(2026, 12, 1, 1, 30)
    # No mailing on Friday and Saturday evenings: after Thursday's comes Sunday's.
    assert announce.next_announcement(datetime(2026, 12, 4, 2, 0)) == datetime(2026, 12, 7, 1, 0)
    assert announce.last_announcement(datetime(2026, 12, 6, 12, 0)) == datetime(2026, 12, 4, 1, 0)
    # Summer time: 20:00 EDT is midnight UTC.
    assert announce.next_announcement(datetime(2026, 7, 1, 12, 0)) == datetime(2026, 7, 2, 0, 0)


# -- the harvest job --------------------------------------------------------------------------


def test_harvest_runs_then_waits_for_the_next_announcement(
    db: Database, settings: Settings, oai: OAIReplayServer
) -> None:
    ids = synthetic_listing(oai, pages=3, per_page=4)
    s = replace(settings, oai_url=oai.url, harvest_sets=("cs",), harvest_start_days=7)
    clock = Clock(datetime(2026, 12, 1, 23, 0))
    job = HarvestJob(s, db, holder="here:1:x", sleep=NO_WAIT, clock=clock)
    record = job.run_if_due(lambda: True, always)
    assert record is not None
    assert (record["result"], record["added"], record["updated"], record["failures"]) == ("ok", 12, 0, 0)
    assert paper_ids(db) == set(ids)
    # A set never harvested starts a week back, not at the beginning of arXiv.
    assert oai.requests[0].params["from"] == "2026-11-24"
    assert record["last_success"] == "2026-12-01T23:00:00"
    assert record["next_attempt"] == "2026-12-02T01:30:00"  # 30 min after Tuesday's announcement
    assert job.run_if_due(lambda: True, always) is None  # nothing new before then
    clock.now = datetime(2026, 12, 2, 1, 31)
    asked = len(oai.requests)
    again = job.run_if_due(lambda: True, always)
    assert again is not None and (again["result"], again["added"]) == ("ok", 0)
    assert oai.requests[asked].params["from"] == "2026-11-30"  # the cursor: the last datestamp seen
    assert harvest_job.load(db)["next_attempt"] == "2026-12-02T07:31:00"  # the periodic check (6 h)


def test_unreachable_arxiv_one_warning_per_attempt_and_back_off(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/oai"  # nothing listens there
    s = replace(settings, oai_url=closed, harvest_sets=("cs",))
    clock = Clock(datetime(2026, 12, 1, 23, 0))
    job = HarvestJob(s, db, holder="here:1:x", sleep=NO_WAIT, clock=clock)
    for attempt, wait in ((1, "1 min"), (2, "2 min"), (3, "4 min")):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="paperfeed"):
            record = job.run_if_due(lambda: True, always)
        assert record is not None and record["result"] == "failed" and record["failures"] == attempt
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert f"arXiv harvest failed (attempt {attempt}): set cs: {closed}: cannot reach" in warnings[0]
        assert warnings[0].endswith(f"next attempt in {wait}")
        assert record["next_attempt"] == (clock() + backoff(attempt)).isoformat()
        assert job.run_if_due(lambda: True, always) is None  # backing off: no request, no warning
        clock.now = datetime.fromisoformat(str(record["next_attempt"]))
    assert backoff(4) == timedelta(minutes=8) and backoff(30) == timedelta(hours=1)  # capped
    assert paper_ids(db) == set()


def test_a_harvest_stopped_mid_way_is_resumed_by_the_next_run(
    db: Database, settings: Settings, oai: OAIReplayServer
) -> None:
    ids = synthetic_listing(oai, pages=4, per_page=3)
    s = replace(settings, oai_url=oai.url, harvest_sets=("cs",))
    job = HarvestJob(s, db, holder="first:1:x", sleep=NO_WAIT, clock=Clock(datetime(2026, 12, 1, 23, 0)))
    pages = iter([True, True, False])  # the lease is lost before the third page
    record = job.run(lambda: next(pages), always)
    assert record["result"] == "interrupted" and record["added"] == 6
    assert len(paper_ids(db)) == 6
    # A leader whose lease ran out cannot commit a page it fetched (the fencing check rolls it back).
    fenced = HarvestJob(s, db, holder="stale:2:y", sleep=NO_WAIT, clock=Clock(datetime(2026, 12, 1, 23, 5)))
    assert fenced.run(lambda: True, lambda _conn: False)["result"] == "interrupted"
    assert len(paper_ids(db)) == 6
    nxt = HarvestJob(s, db, holder="next:3:z", sleep=NO_WAIT, clock=Clock(datetime(2026, 12, 1, 23, 10)))
    assert harvest_job.is_due(harvest_job.load(db), ["cs"], datetime(2026, 12, 1, 23, 10))
    done = nxt.run_if_due(lambda: True, always)
    assert done is not None and done["result"] == "ok"
    assert paper_ids(db) == set(ids)
    assert oai.requests[-1].params == {"verb": "ListRecords", "resumptionToken": "syn|3"}  # resumed, not restarted


# -- leadership -------------------------------------------------------------------------------


def test_one_leader_and_takeover(any_db: Database, settings: Settings) -> None:
    s = replace(settings, harvest_sets=(), leader_ttl=0.6)
    a, b = Pipeline(s, any_db), Pipeline(s, any_db)
    a.beat()
    b.beat()
    assert a.leading() and not b.leading()
    with any_db.read() as conn:
        row = leases.get(conn, LEADER)
        nodes = {n["holder"]: n["info"]["leader"] for n in pipeline_state.nodes(conn, datetime(2000, 1, 1))}
    assert row is not None and row.holder == a.holder
    assert nodes == {a.holder: True, b.holder: False}
    time.sleep(0.7)  # a stops renewing (hung, or its machine is gone): its lease runs out
    assert not a.leading()  # ... and by its own clock it no longer acts as leader either
    b.beat()
    assert b.leading()
    a.beat()
    assert not a.leading()
    b.stop()  # a clean stop gives the lease up at once
    a.beat()
    assert a.leading()
    with any_db.read() as conn:
        assert b.holder not in {n["holder"] for n in pipeline_state.nodes(conn, datetime(2000, 1, 1))}
    a.stop()


# -- embedding --------------------------------------------------------------------------------


class CountingEncoder:
    """A deterministic stand-in for MiniLM: the real one is tested in test_indexer.py; this test
    is about when the pipeline embeds, not about vectors."""

    model_name = "test-encoder"

    def __init__(self) -> None:
        self.texts = 0

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        self.texts += len(texts)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def test_the_leader_embeds_new_and_changed_papers(db: Database, settings: Settings) -> None:
    encoder = CountingEncoder()
    p = Pipeline(replace(settings, harvest_sets=()), db, encoder=lambda: encoder)
    add_paper(db, title="First")
    assert p.embed.run_if_changed(lambda: True) == 1
    assert p.embed.run_if_changed(lambda: True) == 0 and encoder.texts == 1  # nothing changed: no scan
    add_paper(db, title="Second")
    add_paper(db, title="Third")
    assert p.embed.run_if_changed(lambda: True) == 2
    with db.read() as conn:
        assert conn.execute(select(embeddings.c.model).distinct()).scalars().all() == ["test-encoder"]
    add_paper(db, title="Fourth")
    assert p.embed.run_if_changed(lambda: False) == 0  # not leading any more: leaves it for the next
    assert p.embed.run_if_changed(lambda: True) == 1


# -- the app runs it ----------------------------------------------------------------------------


def _pipeline_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("paperfeed-") and t.is_alive()}


def test_the_app_runs_the_pipeline_and_keeps_serving_when_arxiv_is_unreachable(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harvest_job, "RETRY_BACKOFF", 0.01)
    s = replace(settings, pipeline=True, oai_url=f"http://127.0.0.1:{free_port()}/oai", leader_ttl=3.0)
    paper = add_paper(db, title="Served while arXiv is away")
    add_daily(db, paper["id"], date(2026, 11, 30))
    # Its vector exists already: the leader sees no embedding work and never loads the encoder.
    embedding_store.upsert_vectors(db, MODEL_NAME, [(paper["id"], paper["content_hash"])], np.ones((1, 8), np.float32))
    with TestClient(create_app(s, db)) as client:
        assert {"paperfeed-pipeline", "paperfeed-harvest", "paperfeed-embed", "paperfeed-digest"} <= _pipeline_threads()
        record = wait_for(lambda: harvest_job.load(db).get("result") == "failed" and harvest_job.load(db), 30)
        assert record["failures"] == 1 and "cannot reach" in record["error"]
        page = client.get("/papers/date/2026-11-30")
        assert page.status_code == 200 and "Served while arXiv is away" in page.text
    assert not {"paperfeed-pipeline", "paperfeed-harvest"} & _pipeline_threads()
    with db.read() as conn:
        row = leases.get(conn, LEADER)
        assert row is not None and not row.live(leases.database_now(conn))  # given up on shutdown
    with TestClient(create_app(replace(s, pipeline=False), db)):
        assert not _pipeline_threads()


def test_only_the_leader_sends_digests(db: Database, settings: Settings, smtp_sink: SmtpSink) -> None:
    day = date(2026, 11, 23)
    for i in range(3):
        p = add_paper(db, upvotes=i, listed=day, published=day - timedelta(days=2))
        add_daily(db, p["id"], day)
    subs.bulk_activate(db, [(f"r{i}@example.org", subs.Prefs()) for i in range(4)], now=datetime(2026, 1, 1))
    s = replace(settings, harvest_sets=(), smtp_url=smtp_sink.url, leader_ttl=30.0)
    fast = Intervals(embed=60.0, digest=0.2)
    pipelines = [Pipeline(s, db, intervals=fast, encoder=CountingEncoder) for _ in range(3)]
    for p in pipelines:
        p.digest.clock = lambda: datetime(2026, 11, 24, 12, 0)  # Tuesday noon: Monday's digest is due
        p.start()
    try:
        assert smtp_sink.wait_for(4, timeout=30)
        time.sleep(0.6)  # a few more passes by every pipeline
    finally:
        for p in pipelines:
            p.stop()
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [f"r{i}@example.org" for i in range(4)]
    assert sum(p.digest._topics is not None for p in pipelines) == 1  # one process ran digest passes


def test_an_unreachable_database_is_one_warning_and_the_pipeline_stands_by(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/paperfeed?connect_timeout=2")
    p = Pipeline(replace(settings, harvest_sets=()), down)
    with caplog.at_level(logging.INFO, logger="paperfeed"):
        for _ in range(3):
            p.beat()
        assert not p.leading()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].startswith("pipeline: the database cannot be reached (")
        assert "Traceback" not in caplog.text
        p.db = p.lease.db = db  # the database is back
        p.beat()
    assert p.leading() and "pipeline: the database is back" in caplog.text
    p.stop()
    down.dispose()
