"""Fault drills with real ``paperfeed serve`` processes (issue 13).

- ``kill -9`` of the pipeline's leader in the middle of a harvest: another process takes over
  within the lease TTL and the harvest ends with the same papers as an uninterrupted one.
- Two nodes, one PostgreSQL: each its own ``PAPERFEED_HOME``, the database URL and secret key
  shared; votes split across both count exactly; both run the pipeline and exactly one harvests;
  each digest is sent once; a paper submitted on one node is found by search on the other.

The OAI-PMH server and the SMTP server are local (tests/oai_server.py, tests/smtp.py); waits poll
with a deadline.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.pipeline import harvest_job
from paperfeed.pipeline.harvest_job import HarvestJob
from paperfeed.pipeline.runner import LEADER
from paperfeed.store import leases, pipeline_state
from paperfeed.store.db import Database
from paperfeed.store.schema import deliveries, papers, votes

from . import smtp
from .community_util import community, make_user, unlimited
from .factories import add_daily, add_paper
from .oai_server import OAIReplayServer, Reply, synthetic_listing
from .pgserver import PgServer
from .servers import ServeProcess
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink
pytestmark = pytest.mark.slow
SECRET = "drill-secret-key-shared-by-every-node"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The encoder's ONNX file, built once and linked into each node's home (a build takes ~10 s)."""
    from paperfeed.search.encoder import get_encoder

    return Path(get_encoder(Settings(home=tmp_path_factory.mktemp("model-home"), secret_key="x")).path)


def node_env(home: Path, db_url: str, model: Path, **extra: str) -> dict[str, str]:
    (home / "models").mkdir(parents=True, exist_ok=True)
    os.link(model, home / "models" / model.name)
    return {
        "PAPERFEED_HOME": str(home),
        "PAPERFEED_DATABASE_URL": db_url,
        "PAPERFEED_SECRET_KEY": SECRET,
        "PAPERFEED_HARVEST_SETS": "cs",
        "PAPERFEED_LEADER_TTL": "10",  # a dead leader on this machine is replaced at once anyway
        **extra,
    }


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def leader_pid(db: Database) -> int | None:
    with db.read() as conn:
        row = leases.get(conn, LEADER)
        return row.pid if row is not None and row.live(leases.database_now(conn)) else None


def paper_rows(db: Database) -> set[tuple[str, str | None, str]]:
    with db.read() as conn:
        return set(conn.execute(select(papers.c.id, papers.c.arxiv_hash, papers.c.content_hash)).tuples())


def node_pids(db: Database) -> set[str]:
    """The pids of the processes whose pipeline heartbeat is in the database."""
    with db.read() as conn:
        return {n["holder"].split(":")[1] for n in pipeline_state.nodes(conn, datetime(2000, 1, 1))}


def harvest_record(db: Database) -> dict[str, Any]:
    return dict(harvest_job.load(db))


# -- kill -9 of the leader mid-harvest --------------------------------------------------------


def test_kill_9_of_the_leader_mid_harvest(tmp_path: Path, settings: Settings, model_file: Path) -> None:
    oai = OAIReplayServer().start()
    try:
        ids = synthetic_listing(oai, pages=8, per_page=5)
        # The same listing harvested without interruption, into its own database.
        reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
        reference.migrate()
        job = HarvestJob(replace(settings, oai_url=oai.url), reference, holder="ref:1:x", sleep=lambda _s: None)
        assert job.run(lambda: True, lambda _c: True)["result"] == "ok"
        expected = paper_rows(reference)
        assert {row[0] for row in expected} == set(ids)
        # Page 5 (token syn|4) hangs until the test opens it: the leader is mid-harvest, for sure.
        gate = threading.Event()
        oai.route({"resumptionToken": "syn|4"}, Reply(body=_page_body(oai, "syn|4"), gate=gate))
        oai.routes.insert(0, oai.routes.pop())  # ahead of the listing's own route for that token
        oai.requests.clear()

        url = f"sqlite:///{tmp_path / 'shared.db'}"
        db = Database(url)
        db.migrate()
        extra = {"PAPERFEED_OAI_URL": oai.url, "PAPERFEED_HARVEST_DELAY": "0.2"}
        env_a = node_env(tmp_path / "a", url, model_file, **extra)
        env_b = node_env(tmp_path / "b", url, model_file, **extra)
        with ServeProcess(env_a, tmp_path / "a.log", pipeline=True) as a:
            assert a.proc is not None
            wait_for(lambda: leader_pid(db) == a.proc.pid, 60, "node a to lead")
            wait_for(lambda: any(r.params.get("resumptionToken") == "syn|4" for r in oai.requests), 60,
                     "the leader to ask for page 5")  # fmt: skip
            assert len(paper_rows(db)) == 20 and harvest_record(db)["result"] == "running"
            with ServeProcess(env_b, tmp_path / "b.log", pipeline=True) as b:
                assert b.proc is not None and leader_pid(db) == a.proc.pid
                os.killpg(a.proc.pid, signal.SIGKILL)  # the leader dies, its request in flight
                a.proc.wait(30)
                killed_at = len(oai.requests)
                gate.set()
                wait_for(lambda: leader_pid(db) == b.proc.pid, 60, "node b to take over")
                record = wait_for(lambda: harvest_record(db).get("result") == "ok" and harvest_record(db), 120,
                                  "the harvest to finish")  # fmt: skip
                assert paper_rows(db) == expected
                assert record["holder"].split(":")[1] == str(b.proc.pid)
                # b resumed at the page a never got, from the resume point a committed.
                resumed = [r.params for r in oai.requests[killed_at:] if r.params.get("verb") == "ListRecords"]
                assert resumed[0] == {"verb": "ListRecords", "resumptionToken": "syn|4"}
                assert not any("set" in p for p in resumed)  # not started over
                assert str(b.proc.pid) in node_pids(db)
        reference.dispose()
        db.dispose()
    finally:
        oai.stop()


def _page_body(oai: OAIReplayServer, token: str) -> bytes:
    for match, replies in oai.routes:
        if match.get("resumptionToken") == token:
            return replies[0].content()
    raise AssertionError(f"no page for {token}")


# -- two nodes on one PostgreSQL -----------------------------------------------------------------


def _get_record(pid: str, title: str, day: date) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        "<responseDate>2026-12-01T22:00:00Z</responseDate><request>http://127.0.0.1/oai</request><GetRecord>"
        f"<record><header><identifier>oai:arXiv.org:{pid}</identifier><datestamp>{day}</datestamp></header>"
        '<metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
        f"<id>{pid}</id><created>{day}</created>"
        "<authors><author><keyname>Lovelace</keyname><forenames>Ada</forenames></author></authors>"
        f"<title>{title}</title><categories>cs.LG</categories>"
        "<abstract>Marsupial locomotion modelled with hopping dynamics.</abstract>"
        "</arXiv></metadata></record></GetRecord></OAI-PMH>"
    ).encode()


@pytest.fixture
def pg_url(pg_server: PgServer | str) -> str:
    name = f"twonode_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    if isinstance(pg_server, str):
        return PgServer.create_database_at(pg_server, name)
    return pg_server.create_database(name)


@pytest.mark.postgres
def test_two_nodes_on_one_postgresql(
    tmp_path: Path, settings: Settings, model_file: Path, pg_url: str, smtp_sink: SmtpSink
) -> None:
    db = Database(pg_url)
    db.migrate()
    today = datetime.now(UTC).date()
    # Yesterday's daily feed, and four subscribers whose daily digest is due now (00:00 UTC, every day).
    feed = [add_paper(db, listed=today - timedelta(days=1), published=today - timedelta(days=3)) for _ in range(3)]
    for p in feed:
        add_daily(db, p["id"], today - timedelta(days=1))
    prefs = subs.Prefs(send_hour=0, weekdays_only=False)
    readers = [f"reader{i}@example.org" for i in range(4)]
    subs.bulk_activate(db, [(r, prefs) for r in readers], now=datetime(2026, 1, 1))
    # 50 voters with vote tokens, and a confirmed member who submits through the API.
    c = community(replace(settings, database_url=pg_url), db, limits=unlimited())
    tokens = [accounts.create_api_token(c, make_user(c, f"voter{i}"), "drill", ["vote"])[0] for i in range(50)]
    submit_token = accounts.create_api_token(c, make_user(c, "submitter"), "drill", ["submit"])[0]

    oai = OAIReplayServer().start()
    try:
        synthetic_listing(oai, pages=2, per_page=5)
        new_id, title = "2611.99999", "Quokka hopping dynamics for marsupial robots"
        oai.route({"verb": "GetRecord"}, Reply(body=_get_record(new_id, title, today - timedelta(days=1))))
        extra = {"PAPERFEED_OAI_URL": oai.url, "PAPERFEED_HARVEST_DELAY": "0", "PAPERFEED_SMTP_URL": smtp_sink.url}
        env_a = node_env(tmp_path / "a", pg_url, model_file, **extra)
        env_b = node_env(tmp_path / "b", pg_url, model_file, **extra)
        with ServeProcess(env_a, tmp_path / "a.log", pipeline=True) as a, \
                ServeProcess(env_b, tmp_path / "b.log", pipeline=True) as b:  # fmt: skip
            assert a.proc is not None and b.proc is not None
            pids = {str(a.proc.pid), str(b.proc.pid)}
            # Both run the pipeline (two heartbeats); one leads; exactly one harvest ran.
            wait_for(lambda: node_pids(db) == pids, 60, "both nodes' heartbeats")
            record = wait_for(lambda: harvest_record(db).get("result") == "ok" and harvest_record(db), 60, "harvest")
            assert record["added"] == 10 and record["holder"].split(":")[1] in pids
            assert [r.params.get("set") for r in oai.requests if "set" in r.params] == ["cs"]  # one harvest
            # Each digest is sent once, by whichever node leads.
            assert smtp_sink.wait_for(4, timeout=60)
            time.sleep(2)
            assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == readers
            with db.read() as conn:
                sent = conn.scalar(select(func.count()).select_from(deliveries).where(deliveries.c.status == "sent"))
            assert sent == 4

            # 50 concurrent votes, half on each node, count exactly 50.
            target = feed[0]["id"]
            nodes = [a.url, b.url]

            def vote(i: int) -> int:
                r = httpx.post(f"{nodes[i % 2]}/api/papers/{target}/upvote",
                               headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60)  # fmt: skip
                return r.status_code

            results: list[int] = []
            threads = [threading.Thread(target=lambda i=i: results.append(vote(i))) for i in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(90)
            assert results == [200] * 50
            with db.read() as conn:
                assert conn.scalar(select(func.count()).select_from(votes).where(votes.c.paper_id == target)) == 50
                assert conn.scalar(select(papers.c.upvotes).where(papers.c.id == target)) == 50

            # A paper submitted on node a is found by search on node b within 10 s.
            r = httpx.post(f"{a.url}/api/papers/index", json={"arxivId": new_id},
                           headers={"Authorization": f"Bearer {submit_token}"}, timeout=60)  # fmt: skip
            assert r.status_code == 201, r.text
            search_b = f"{b.url}/api/papers/search?q=quokka+hopping"
            wait_for(lambda: new_id in httpx.get(search_b, timeout=30).text, 10, "node b to find the new paper")
    finally:
        oai.stop()
        db.dispose()


def test_a_search_and_the_embedding_step_loading_the_encoder_at_once_share_one(
    tmp_path: Path, model_file: Path
) -> None:
    """The leader's embedding thread and a search thread may both load the encoder first thing:
    one load, one encoder (two at once used to build or open it twice, and a race on the model's
    temporary file made one of them fail)."""
    from paperfeed.search.encoder import get_encoder

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    os.link(model_file, home / "models" / model_file.name)
    barrier = threading.Barrier(3)
    got: list[object] = []

    def load() -> None:
        barrier.wait(10)
        got.append(get_encoder(Settings(home=home, secret_key="x")))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 3 and got[0] is got[1] is got[2]
