"""The JSON API: Hugging Face-compatible shapes, pagination with Link headers, validation (422),
ETag/304, and paperfeed's /api/v1 endpoints."""

from __future__ import annotations

import json
import re

import pytest

from . import factories as f
from .conftest import shared_path
from .webutil import DAY, client, seed


def _next(r) -> str | None:  # type: ignore[no-untyped-def]
    m = re.match(r'<([^>]+)>; rel="next"', r.headers.get("link", ""))
    return m.group(1) if m else None


def test_daily_papers_mirrors_the_hf_shape(settings, any_db) -> None:
    ids = seed(any_db)
    c = client(settings, any_db)
    items = c.get("/api/daily_papers", params={"date": str(DAY)}).json()
    assert [i["paper"]["id"] for i in items] == [ids["top"]["id"], ids["mid"]["id"], ids["low"]["id"]]
    top = items[0]
    assert set(top) >= {"paper", "publishedAt", "title", "summary", "numComments", "submittedBy"}
    assert set(top["paper"]) >= {
        "id",
        "authors",
        "publishedAt",
        "title",
        "summary",
        "upvotes",
        "githubRepo",
        "githubStars",
        "submittedOnDailyAt",
        "submittedOnDailyBy",
    }
    # Keys without a value are omitted, as the Hub does, never sent as null.
    assert "projectPage" not in top["paper"] and "ai_summary" not in top["paper"]
    assert top["submittedBy"]["name"] == top["submittedBy"]["fullname"] == "alice"
    assert top["paper"]["submittedOnDailyBy"]["user"] == "alice"
    assert top["paper"]["authors"][0] == {"name": "Ada Lovelace", "hidden": False}
    assert top["paper"]["upvotes"] == 42 and top["paper"]["githubStars"] == 1200
    assert top["paper"]["submittedOnDailyAt"] == "2025-01-15T09:00:00.000Z"  # the full time, not midnight
    assert top["submittedBy"]["name"] == "alice" and top["publishedAt"] == "2025-01-15T09:00:00.000Z"
    # No date: the latest day. Week and month; sort; submitter filter.
    assert [i["paper"]["id"] for i in c.get("/api/daily_papers").json()] == [i["paper"]["id"] for i in items]
    assert len(c.get("/api/daily_papers?week=2025-W03").json()) == 4
    assert len(c.get("/api/daily_papers?month=2025-01&submitter=bob").json()) == 1
    assert c.get("/api/daily_papers?month=2025-01&sort=trending").json()[0]["paper"]["id"] == ids["top"]["id"]
    assert c.get("/api/daily_papers?month=2025-01&sort=publishedAt").status_code == 200


def test_daily_papers_paginates_with_link_headers(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    r = c.get("/api/daily_papers?month=2025-01&limit=3")
    assert len(r.json()) == 3
    nxt = _next(r)
    assert nxt and nxt.startswith(settings.base_url) and "p=1" in nxt
    r2 = c.get(nxt.removeprefix(settings.base_url))
    assert len(r2.json()) == 1 and _next(r2) is None


@pytest.mark.parametrize(
    "query",
    [
        "date=2025-02-30",
        "date=15-01-2025",
        "week=2025-W99",
        "month=2025-00",
        "date=2025-01-15&week=2025-W03",
        "limit=0",
        "limit=10000",
        "p=-1",
        "p=99999999999999999999",
        "sort=random",
        "limit=abc",
    ],
)
def test_daily_papers_rejects_bad_parameters_with_422(settings, db, query: str) -> None:
    r = client(settings, db).get(f"/api/daily_papers?{query}")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["msg"] and detail[0]["loc"][0] == "query"


def test_paper_detail_and_404(settings, db) -> None:
    ids = seed(db)
    c = client(settings, db)
    p = c.get(f"/api/papers/{ids['mid']['id']}").json()
    assert p["id"] == ids["mid"]["id"] and p["title"].startswith("Scaling laws") and p["upvotes"] == 12
    assert c.get(f"/api/papers/{ids['mid']['id']}v4").json()["id"] == ids["mid"]["id"]
    for bad in ["2412.99999", "nonsense", "%20"]:
        r = c.get(f"/api/papers/{bad}")
        assert r.status_code == 404 and "detail" in r.json()


def test_papers_keyset_pagination_visits_every_paper_once(settings, db) -> None:
    f.add_papers(db, [f.make_paper() for _ in range(23)])
    c = client(settings, db)
    seen, url = [], "/api/papers?limit=10"
    while url:
        r = c.get(url)
        assert r.status_code == 200
        seen += [p["id"] for p in r.json()]
        nxt = _next(r)
        url = nxt.removeprefix(settings.base_url) if nxt else None
    assert len(seen) == 23 == len(set(seen)) and seen == sorted(seen, reverse=True)
    assert c.get("/api/papers?cursor=!!!").status_code == 422
    assert c.get("/api/papers?cursor=bm90LWFuLWlk").status_code == 422  # base64 of "not-an-id"


def test_api_etag_304_and_cors(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    r = c.get("/api/daily_papers")
    assert r.headers["access-control-allow-origin"] == "*"
    assert c.get("/api/daily_papers", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert c.get("/api/daily_papers", headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304


def test_v1_trending_and_stats(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    t = c.get("/api/v1/trending?limit=2").json()
    assert t["formula"].startswith("(upvotes + 1") and len(t["papers"]) == 2 and t["total"] == 4
    assert {"upvotes", "github_stars", "age_hours", "score"} <= set(t["papers"][0]["trending"])
    s = c.get("/api/v1/stats").json()
    assert s["papers"] == 5 and s["daily_entries"] == 5 and s["hidden_entries"] == 1 and s["papers_with_code"] == 1
    assert c.get("/api/v1/trending?limit=0").status_code == 422


def test_openapi_documents_the_api_only(settings, db) -> None:
    spec = client(settings, db).get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/daily_papers",
        "/api/papers/search",
        "/api/papers/{paper_id}",
        "/api/papers",
        "/api/v1/search",
    } <= paths
    assert not any(p.startswith(("/papers", "/feeds", "/authors")) for p in paths)


def test_real_hf_day_is_served_back_with_local_data_on_top(settings, db) -> None:
    """A real Hub day comes back exactly (every key, value, type and order); a local upvote adds to
    ``paper.upvotes``, a local comment to ``numComments``, in the daily list and ``/api/papers/{id}``."""
    from paperfeed.community import comments, votes
    from paperfeed.ingest.hf_daily import import_hf_daily

    from .community_util import community, make_user
    from .hf_diff import diff

    path = shared_path("hf_daily_papers", "sample_days", "2026-08-21.json")
    day = json.loads(path.read_text())
    import_hf_daily(db, path, progress=False)
    c = client(settings, db)
    assert diff(c.get("/api/daily_papers?date=2026-08-21&limit=100").json(), day) == []
    last = day[-1]
    pid = last["paper"]["id"]
    com = community(settings, db)
    user = make_user(com, "carol")
    votes.set_vote(com, user, pid, True)
    comments.add_comment(com, user, pid, "Nice paper.")
    c = client(settings, db)  # a new app: no cached answers from before the writes
    ours = {e["paper"]["id"]: e for e in c.get("/api/daily_papers?date=2026-08-21&limit=100").json()}
    assert ours[pid]["paper"]["upvotes"] == last["paper"]["upvotes"] + 1
    assert ours[pid]["numComments"] == last["numComments"] + 1
    rest = diff(ours[pid], last)
    assert sorted(rest) == sorted(
        [
            f"$.paper.upvotes: {last['paper']['upvotes'] + 1} != {last['paper']['upvotes']}",
            f"$.numComments: {last['numComments'] + 1} != {last['numComments']}",
        ]
    )
    one = c.get(f"/api/papers/{pid}").json()
    assert one["upvotes"] == last["paper"]["upvotes"] + 1 and one["numComments"] == last["numComments"] + 1
    assert {k: v for k, v in one.items() if k not in ("upvotes", "numComments")} == {
        k: v for k, v in last["paper"].items() if k != "upvotes"
    }
