"""Authors hidden on Hugging Face stay hidden here, whatever is stored for API fidelity.

HF lets an author be hidden from a paper page (``"hidden": true`` in ``paper.authors``). What a
reader can see must respect that: the hidden name is on no paper page, no feed card, no author
page and in no ``author:`` search, while the visible co-authors are on all of them -
the controls that keep this test able to fail.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from paperfeed.config import Settings
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database

from .webutil import client

PID = "2604.09999"
DAY = "2026-04-10"
HIDDEN = "Quiet Hiddenauthor"
VISIBLE = "Visible Writer"


@pytest.fixture
def site(tmp_path: Path, settings: Settings, db: Database) -> TestClient:
    entry = {
        "paper": {
            "id": PID,
            "title": "Graph transformers with a hidden co-author",
            "summary": "We study graph transformers.",
            "publishedAt": "2026-04-09T00:00:00.000Z",
            "submittedOnDailyAt": "2026-04-10T00:35:04.063Z",
            "upvotes": 7,
            "authors": [
                {"_id": "a1", "name": VISIBLE, "hidden": False},
                {"_id": "a2", "name": HIDDEN, "hidden": True},
                {"_id": "a3", "name": "Second Visible"},
            ],
        },
        "publishedAt": "2026-04-10T00:35:04.063Z",
        "title": "Graph transformers with a hidden co-author",
        "summary": "We study graph transformers.",
    }
    day_file = tmp_path / f"{DAY}.json"
    day_file.write_bytes(orjson.dumps([entry]))
    report = import_hf_daily(db, day_file, progress=False)
    assert (report.inserted, report.rejected) == (1, 0)
    LexicalIndex(settings).update(db, progress=False)
    return client(settings, db)


def _hit_ids(c: TestClient, q: str) -> list[str]:
    r = c.get("/papers/search.json", params={"q": q, "mode": "keyword"})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


@pytest.mark.parametrize("path", [f"/papers/{PID}", f"/papers/date/{DAY}", f"/authors/{VISIBLE}"])
def test_pages_show_the_visible_authors_and_never_the_hidden_one(site: TestClient, path: str) -> None:
    r = site.get(path)
    assert r.status_code == 200, r.text
    assert VISIBLE in r.text and PID in r.text  # the paper and its visible authors are there
    assert "Hiddenauthor" not in r.text


def test_the_hidden_authors_page_does_not_list_the_paper(site: TestClient) -> None:
    r = site.get(f"/authors/{HIDDEN}")
    assert r.status_code == 200 and PID not in r.text  # a page for a name with no papers
    j = site.get(f"/authors/{HIDDEN}.json").json()
    assert (j["papers"], j["total"]) == ([], 0)
    assert site.get(f"/authors/{VISIBLE}.json").json()["total"] == 1


def test_search_finds_the_paper_by_visible_authors_only(site: TestClient) -> None:
    assert _hit_ids(site, f'author:"{VISIBLE}"') == [PID]
    assert _hit_ids(site, f'author:"{HIDDEN}"') == []
