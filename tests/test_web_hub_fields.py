"""Hub data on the pages: the AI summary (labelled as the Hub labels it) and keywords on the paper
page and cards, the organization, claimed authors; no thumbnails (the CSP allows images from this
site only) and never a hidden author."""

from __future__ import annotations

from pathlib import Path

import orjson

from paperfeed.ingest.hf_daily import import_hf_daily

from .ingest_helpers import HF_DIR
from .webutil import client


def test_paper_page_and_cards_show_hub_fields(settings, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    day = orjson.loads((HF_DIR / "2026-04-10.json").read_bytes())
    entry = next(e for e in day if e["paper"].get("ai_keywords") and e["paper"].get("ai_summary"))
    p = entry["paper"]
    p["organization"] = {"_id": "1" * 24, "name": "acme", "fullname": "Acme Research", "avatar": "https://x/y.png"}
    p["authors"][0]["user"] = {"_id": "2" * 24, "user": "ada42", "fullname": "Ada", "type": "user"}
    p["authors"][0]["status"] = "claimed_verified"
    p["authors"][1]["hidden"] = True
    hidden = p["authors"][1]["name"]
    path = tmp_path / "2026-04-10.json"
    path.write_bytes(orjson.dumps(day))
    import_hf_daily(db, path, progress=False)
    c = client(settings, db)
    page = c.get(f"/papers/{p['id']}").text
    assert "AI-generated summary" in page and p["ai_summary"][:50].replace("'", "&#39;") in page
    assert all(k.replace("'", "&#39;") in page for k in p["ai_keywords"])
    assert "Acme Research" in page and "ada42" in page  # organization, claimed author
    assert hidden not in page
    assert "cdn-thumbnails" not in page and "cdn-avatars" not in page  # CSP: no images from other sites
    feed = c.get("/papers/date/2026-04-10").text
    assert "AI-generated summary" in feed and "Acme Research" in feed and hidden not in feed
    shown = c.get(f"/papers/{p['id']}.json").json()["paper"]
    assert shown["ai_summary"] == p["ai_summary"] and shown["claimed"] == {p["authors"][0]["name"]: "ada42"}
    assert hidden not in orjson.dumps(shown).decode()
