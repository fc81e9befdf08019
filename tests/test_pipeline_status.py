"""``paperfeed status`` and ``/api/v1/status``: the leader, the last harvest, the embedding backlog,
index lag per node, the digest scheduler; the API answers admins only."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import datetime, timedelta

from paperfeed.config import Settings
from paperfeed.pipeline.harvest_job import HarvestJob
from paperfeed.pipeline.runner import Pipeline
from paperfeed.pipeline.status import collect
from paperfeed.store import pipeline_state
from paperfeed.store.db import Database

from .community_util import make_user, second_browser, web
from .ingest_helpers import cli
from .oai_server import OAIReplayServer, synthetic_listing


def _harvested(db: Database, settings: Settings) -> Settings:
    """Three papers harvested by the pipeline's job from a local OAI-PMH server."""
    server = OAIReplayServer().start()
    try:
        synthetic_listing(server, pages=1, per_page=3)
        s = replace(settings, oai_url=server.url, harvest_sets=("cs",))
        job = HarvestJob(s, db, holder="elsewhere:7:x", sleep=lambda _s: None, clock=lambda: datetime(2026, 12, 1, 23))
        assert job.run(lambda: True, lambda _c: True)["result"] == "ok"
    finally:
        server.stop()
    return s


def test_status_data(db: Database, settings: Settings) -> None:
    s = _harvested(db, settings)
    with db.read() as conn:
        newest = pipeline_state.papers_changed_at(conn)
    assert newest is not None
    node = Pipeline(s, db, index_state=lambda: {"lexical": None, "vectors": None})
    node.beat()
    data = collect(s, db, {"lexical": newest - timedelta(hours=1)})
    assert data["leader"] is not None
    assert (data["leader"]["holder"], data["leader"]["host"], data["leader"]["live"]) == (
        node.holder,
        socket.gethostname(),
        True,
    )
    h = data["harvest"]
    assert (h["result"], h["added"], h["sets"], h["holder"]) == ("ok", 3, ["cs"], "elsewhere:7:x")
    assert h["next_attempt"] == "2026-12-02T01:30:00" and h["error"] is None
    assert data["embedding"]["backlog"] == 3 and data["embedding"]["vectors"] == 0
    # This process's index is an hour behind the newest paper, missing all three.
    assert data["indexes"] == [
        {
            "name": "lexical",
            "watermark": (newest - timedelta(hours=1)).isoformat(),
            "database": newest.isoformat(),
            "lag_seconds": 3600.0,
            "behind": 3,
        }
    ]
    [n] = data["nodes"]
    assert n["holder"] == node.holder and n["leader"] is True
    lags = [(i["name"], i["behind"], i["lag_seconds"]) for i in n["indexes"]]
    assert lags == [("lexical", 3, None), ("vectors", 0, 0.0)]
    assert data["digest"]["open"] == {} and data["digest"]["sender"] is None
    node.stop()
    assert collect(s, db, {})["nodes"] == []


def test_status_command(db: Database, settings: Settings) -> None:
    _harvested(db, settings)
    node = Pipeline(settings, db, index_state=lambda: {"lexical": None})
    node.beat()
    text = cli(settings, db, "status")
    assert text.exit_code == 0, text.output
    assert "leader" in text.stdout and f"{socket.gethostname()} pid" in text.stdout
    assert "ok - 3 new, 0 updated" in text.stdout and "3 papers waiting" in text.stdout
    assert "lexical: not loaded, 3 rows" in text.stdout  # the node's index, and this home's (none built)
    as_json = cli(settings, db, "status", "--json")
    data = json.loads(as_json.stdout)
    assert data["leader"]["holder"] == node.holder and data["harvest"]["added"] == 3
    node.stop()


def test_status_api_is_for_admins(db: Database, settings: Settings) -> None:
    w = web(settings, db)
    make_user(w.community, "reader")
    make_user(w.community, "mod", role="moderator")
    make_user(w.community, "root", role="admin")
    anonymous = w.client.get("/api/v1/status")
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Please sign in first."
    for name in ("reader", "mod"):
        b = second_browser(w)
        b.sign_in(name)
        r = b.client.get("/api/v1/status")
        assert r.status_code == 403 and r.json()["detail"] == "This needs the admin role."
    admin = second_browser(w)
    admin.sign_in("root")
    r = admin.client.get("/api/v1/status")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    data = r.json()
    assert data["leader"] is None and data["pipeline"] is False and data["harvest"] == {}
    assert {i["name"] for i in data["indexes"]} == {"lexical"}  # search not loaded yet: this home's file
