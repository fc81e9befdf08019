"""Imports of the full shared data (../shared/data, optional): exact counts in ``paperfeed stats``."""

from __future__ import annotations

import gzip

import orjson
import pytest

from paperfeed.config import Settings
from paperfeed.store.db import Database

from .conftest import shared_path
from .ingest_helpers import cli


@pytest.mark.slow
def test_both_shared_files_give_exact_stats(db: Database, settings: Settings) -> None:
    listings = shared_path("arxiv_daily", "arxiv_cs_listings.jsonl.gz")
    hf = shared_path("hf_daily_papers", "hf_daily_papers_by_day.jsonl.gz")
    listing_ids = {orjson.loads(line)["id"] for line in gzip.open(listings)}
    hf_ids = {e["paper"]["id"] for line in gzip.open(hf) for e in orjson.loads(line)["papers"]}
    assert len(listing_ids) == 74_728

    res = cli(settings, db, "import", "arxiv", str(listings), "--quiet")
    assert res.exit_code == 0, res.output
    assert "read 74,728, inserted 74,728, updated 0, unchanged 0, rejected 0" in res.stdout
    res = cli(settings, db, "import", "hf-daily", str(hf), "--quiet")
    assert res.exit_code == 0, res.output

    res = cli(settings, db, "stats", "--json")
    stats = orjson.loads(res.stdout)
    assert stats["papers"] == 74_728 + len(hf_ids - listing_ids)
    assert stats["daily_entries"] == len(hf_ids) == 9_877
    assert stats["daily_range"] == ["2024-05-27", "2026-08-21"]

    # Both again, in the other order: nothing changes.
    for kind, path in (("hf-daily", hf), ("arxiv", listings)):
        res = cli(settings, db, "import", kind, str(path), "--quiet")
        assert res.exit_code == 0 and ", inserted 0, updated 0," in res.stdout, res.stdout


def test_kaggle_head200_and_raw_hf_days(db: Database, settings: Settings) -> None:
    kaggle = shared_path("arxiv_kaggle_format", "arxiv-metadata-oai-snapshot.head200.jsonl")
    days = shared_path("hf_daily_papers", "sample_days")
    res = cli(settings, db, "import", "arxiv", str(kaggle), "--quiet")
    assert res.exit_code == 0 and "read 200, inserted 200, updated 0, unchanged 0, rejected 0" in res.stdout
    res = cli(settings, db, "import", "hf-daily", str(days), "--quiet")
    assert res.exit_code == 0 and "read 42, inserted 42, updated 0, unchanged 0, rejected 0" in res.stdout
