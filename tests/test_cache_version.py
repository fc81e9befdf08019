"""The page cache's data version moves with everything a cached page shows: a Hugging Face
re-import that changes only the Hub's source object, and this process's search indexes catching
up (a search cached empty before the index had the paper must not be served after it has)."""

from __future__ import annotations

from pathlib import Path

import orjson

from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.lexical import LexicalIndex

from . import factories as f
from .ingest_helpers import HF_DIR
from .webutil import client


def test_a_source_only_hf_reimport_moves_the_cached_pages(settings, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    day = orjson.loads((HF_DIR / "2026-04-10.json").read_bytes())
    entry = day[0]
    pid = entry["paper"]["id"]
    path = tmp_path / "2026-04-10.json"
    entry["numComments"] = 3
    path.write_bytes(orjson.dumps(day))
    import_hf_daily(db, path, progress=False)
    c = client(settings, db)
    assert c.get(f"/papers/{pid}.json").json()["paper"]["hub_comments"] == 3
    entry["numComments"] = 7  # only the Hub's comment count moved: no paper column changes
    path.write_bytes(orjson.dumps(day))
    report = import_hf_daily(db, path, progress=False)
    assert report.updated == 1
    c.app.state.pf.version.invalidate()  # no waiting out the re-read interval
    assert c.get(f"/papers/{pid}.json").json()["paper"]["hub_comments"] == 7


def test_a_search_cached_empty_is_not_served_once_the_index_has_the_paper(settings, db) -> None:  # type: ignore[no-untyped-def]
    f.add_paper(db, title="Graph networks for weather", abstract="Forecasts.")
    index = LexicalIndex(settings)
    index.update(db, progress=False)
    c = client(settings, db)
    params = {"q": "zeppelin", "mode": "keyword"}
    assert c.get("/papers/search.json", params=params).json()["total"] == 0
    assert c.get("/api/papers/search", params=params).json() == []
    new = f.add_paper(db, title="Zeppelin routing with reinforcement learning", abstract="Airships.")
    c.app.state.pf.version.invalidate()
    # The database moved but the index has not caught up yet: still nothing (and cached so).
    assert c.get("/papers/search.json", params=params).json()["total"] == 0
    index.update(db, progress=False)  # the index catches up (this process's follower, or another)
    c.app.state.pf.version.invalidate()
    assert [h["id"] for h in c.get("/papers/search.json", params=params).json()["hits"]] == [new["id"]]
    assert [h["paper"]["id"] for h in c.get("/api/papers/search", params=params).json()] == [new["id"]]
    feed = c.get("/feeds/search.atom", params={"q": "zeppelin", "mode": "keyword"})
    assert feed.status_code == 200 and "Zeppelin routing" in feed.text
