"""Each web process keeps its own search indexes current (search/follower.py): a paper committed by
another process is found by search within 10 s (also where the same search was cached empty just
before), two workers on one home share the lexical index with one writer, and the follower
outlives the database going away."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.search.follower import IndexFollower
from paperfeed.search.hybrid import SearchRequest, SearchService
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database

from . import factories as f
from .community_util import community, make_user, web
from .oai_server import OAIReplayServer, Reply
from .pgserver import PgServer
from .servers import ServeProcess

DEADLINE_S = 10.0  # the promise: committed anywhere, searchable everywhere within this


def _found(service: SearchService, q: str) -> list[str]:
    return [h.paper["id"] for h in service.search(SearchRequest(q=q, mode="keyword")).hits]


def _within(seconds: float, check: Callable[[], bool]) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass (a bound, not a timing measurement)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_follower_catches_up_and_says_where_it_stands(settings: Settings, db: Database) -> None:
    f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
    service = SearchService(settings, db)
    follower = IndexFollower(settings, db, service)
    assert follower.run_once() == 1  # no index yet: built from the database
    assert follower.run_once() == 0  # nothing moved: one probe, no catch-up
    before = follower.state()
    new = f.add_paper(db, title="Zeppelin routing with reinforcement learning", abstract="Airships.")
    assert _found(service, "zeppelin") == []
    assert follower.run_once() == 1
    assert _found(service, "zeppelin") == [new["id"]]
    after = follower.state()
    assert (before.lexical_docs, after.lexical_docs, after.catch_ups - before.catch_ups) == (1, 2, 1)
    assert before.lexical_watermark is not None and after.lexical_watermark == new["modified_at"]
    assert (after.errors, after.failing_since, after.following) == (0, None, False)
    assert after.vector_mode == "not loaded" and after.last_catch_up_at is not None
    shown = after.as_dict()
    assert json.loads(json.dumps(shown))["lexical_watermark"] == new["modified_at"].isoformat()


def test_two_workers_on_one_home_share_one_writer(settings: Settings, db: Database) -> None:
    f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
    one, two = SearchService(settings, db), SearchService(settings, db)
    first, second = IndexFollower(settings, db, one), IndexFollower(settings, db, two)
    assert first.run_once() == 1
    new = f.add_paper(db, title="Zeppelin routing with reinforcement learning", abstract="Airships.")
    with LexicalIndex(settings)._update_lock():  # the other worker is writing right now
        assert second.run_once() == 0  # busy: it skips instead of waiting (or failing)
    assert _found(two, "zeppelin") == []
    assert first.run_once() == 1
    assert _found(two, "zeppelin") == [new["id"]]  # the second worker's reader reloaded the commit
    assert second.run_once() == 0 and second.state().docs_written == 0  # nothing left to write
    assert first.state().docs_written == 2


def test_status_api_shows_this_processs_follower(settings: Settings, db: Database) -> None:
    f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
    w = web(settings, db)
    make_user(w.community, "root", role="admin")
    w.sign_in("root")
    assert w.client.get("/api/v1/status").json()["follower"] is None  # not started (no lifespan here)
    state = w.client.app.state.pf
    state.start_follower()
    try:
        assert _within(DEADLINE_S, lambda: state.follower.state().catch_ups > 0)
        shown = w.client.get("/api/v1/status").json()["follower"]
    finally:
        state.stop_follower()
    assert shown["following"] is True and shown["lexical_docs"] == 1 and shown["errors"] == 0
    assert shown["lexical_watermark"] is not None and shown["vector_mode"] == "not loaded"


@pytest.fixture
def oai() -> Iterator[OAIReplayServer]:
    server = OAIReplayServer().start()
    server.route({"verb": "GetRecord", "identifier": "oai:arXiv.org:2604.07429"}, Reply(fixture="get_record.xml"))
    yield server
    server.stop()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_a_paper_submitted_through_the_web_is_found_by_both_workers(
    settings: Settings, db: Database, tmp_path: Path, oai: OAIReplayServer
) -> None:
    f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
    token, _ = accounts.create_api_token(community(settings, db), make_user(community(settings, db), "alice"), "cli")
    env = {
        "PAPERFEED_HOME": str(settings.home),
        "PAPERFEED_OAI_URL": oai.url,
        "PAPERFEED_SUBMISSION_WINDOW_DAYS": "100000",  # the replayed record is from April 2026
    }
    search = "/api/papers/search?" + urllib.parse.urlencode({"q": "GameWorld"})
    with ServeProcess(env, tmp_path / "serve.log", "--workers", "2") as server:
        for _ in range(12):  # both workers answer (and cache) the empty search before the paper exists
            assert _get(server.url + search) == []
        req = urllib.request.Request(
            f"{server.url}/api/papers/index",
            data=json.dumps({"arxivId": "2604.07429"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 201 and json.loads(r.read())["paperId"] == "2604.07429"

        def everywhere() -> bool:  # a dozen answers in a row, from both workers, have it
            return all([e["paper"]["id"] for e in _get(server.url + search)] == ["2604.07429"] for _ in range(12))

        assert _within(DEADLINE_S, everywhere)
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "ERROR" not in log, log


@pytest.mark.slow
@pytest.mark.postgres
def test_the_follower_outlives_the_database_going_away(settings: Settings, own_pg: PgServer) -> None:
    db = Database(own_pg.create_database("follow"))
    db.migrate()
    try:
        f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
        service = SearchService(settings, db)
        follower = IndexFollower(replace(settings, index_poll=0.2), db, service)
        follower.start()
        assert _within(DEADLINE_S, lambda: _found(service, "graph") != [])
        own_pg.pause()
        try:
            assert _within(30, lambda: follower.errors > 0)
            down = follower.state()  # readable while the database is away
            assert down.following and down.failing_since is not None and down.last_error
        finally:
            own_pg.resume()
        new = f.add_paper(db, title="Zeppelin routing with reinforcement learning", abstract="Airships.")
        assert _within(DEADLINE_S, lambda: _found(service, "zeppelin") == [new["id"]])
        state = follower.state()
        assert state.following and state.errors > 0 and state.failing_since is None
        follower.stop()
        assert not follower.running
    finally:
        db.dispose()


@pytest.mark.slow
def test_hybrid_finds_a_paper_before_its_vector_and_by_meaning_after(settings: Settings, db: Database) -> None:
    from paperfeed.search.indexer import run_index

    f.add_paper(db, title="Graph networks for weather", abstract="Message passing forecasts rain.")
    run_index(settings, db, progress=False)  # keyword index, vectors, as `paperfeed index` leaves them
    service = SearchService(settings, db)
    follower = IndexFollower(settings, db, service)
    assert service.search(SearchRequest(q="weather forecasting")).mode == "hybrid"  # vectors loaded
    new = f.add_paper(db, title="Zeppelin routing with reinforcement learning", abstract="Airships learn routes.")
    follower.run_once()
    res = service.search(SearchRequest(q="zeppelin routing"))
    assert res.mode == "hybrid" and res.hits[0].paper["id"] == new["id"]  # by keyword, no vector yet
    assert res.hits[0].semantic_similarity is None and follower.state().vectors == 1
    run_index(settings, db, progress=False)  # whoever embeds (the pipeline leader) writes its vector
    follower.run_once()
    res = service.search(SearchRequest(q="zeppelin routing"))
    assert res.hits[0].paper["id"] == new["id"] and res.hits[0].semantic_similarity is not None
    assert follower.state().vectors == 2
