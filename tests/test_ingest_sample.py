"""The bundled sample (data/sample) imports cleanly and gives a lively feed: several weeks of daily
entries with upvotes. Runs from the repository alone."""

from __future__ import annotations

from datetime import date

import orjson
from sqlalchemy import func, select

from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import daily_entries, papers

from .conftest import SAMPLE
from .ingest_helpers import cli


def test_sample_imports_cleanly(db: Database, settings: Settings) -> None:
    res = cli(settings, db, "import", "arxiv", str(SAMPLE / "arxiv_cs_listings.sample.jsonl.gz"), "--quiet")
    assert res.exit_code == 0 and "read 4,827, inserted 4,827, updated 0, unchanged 0, rejected 0" in res.stdout
    res = cli(settings, db, "import", "hf-daily", str(SAMPLE / "hf_daily_papers.sample.jsonl.gz"), "--quiet")
    assert res.exit_code == 0 and "read 459, inserted 154, updated 305, unchanged 0, rejected 0" in res.stdout
    stats = orjson.loads(cli(settings, db, "stats", "--json").stdout)
    assert (stats["papers"], stats["daily_entries"]) == (4_981, 458)
    text = cli(settings, db, "stats").stdout  # the human form shows the ranges too (not eaten as Rich markup)
    assert f"daily_range: {stats['daily_range'][0]} → {stats['daily_range'][1]}" in text
    assert "papers: 4981" in text
    with db.read() as conn:
        days = conn.execute(select(func.count(func.distinct(daily_entries.c.feed_date)))).scalar()
        fd = daily_entries.c.feed_date
        first, last = conn.execute(select(func.min(fd), func.max(fd))).one()
        voted = conn.scalar(select(func.count()).select_from(papers).where(papers.c.imported_upvotes >= 10))
    assert days == 17 and (last - first).days >= 21
    assert (first, last) == (date(2026, 6, 9), date(2026, 7, 1))
    assert voted and voted > 100
