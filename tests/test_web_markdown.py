"""Markdown twins: ``/papers/{id}.md`` (the Hub's ``read_paper`` URL) and ``Accept: text/markdown``
on the paper page, ``.md`` twins of the daily feed and search; hidden authors never appear."""

from __future__ import annotations

from pathlib import Path

import orjson

from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.lexical import LexicalIndex

from .ingest_helpers import HF_DIR
from .webutil import client


def _setup(settings, db, tmp_path: Path):  # type: ignore[no-untyped-def]
    day = orjson.loads((HF_DIR / "2026-04-10.json").read_bytes())
    entry = day[0]
    entry["paper"]["summary"] = "We propose \\textbf{Skill} learning with 5\\% cost -- \\emph{fast}."
    entry["paper"]["authors"][1]["hidden"] = True
    path = tmp_path / "2026-04-10.json"
    path.write_bytes(orjson.dumps(day))
    import_hf_daily(db, path, progress=False)
    LexicalIndex(settings).update(db, progress=False)
    return entry, client(settings, db)


def test_paper_markdown(settings, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entry, c = _setup(settings, db, tmp_path)
    p = entry["paper"]
    r = c.get(f"/papers/{p['id']}.md")
    assert r.status_code == 200 and r.headers["content-type"] == "text/markdown; charset=utf-8"
    md = r.text
    assert md.startswith(f"# {p['title'].split(':')[0]}")
    assert p["authors"][0]["name"] in md and p["authors"][1]["name"] not in md  # the hidden one
    assert "We propose **Skill** learning with 5% cost – *fast*." in md  # LaTeX as Markdown
    assert f"## AI-generated summary\n\n{p['ai_summary'][:40]}" in md
    assert "## Keywords" in md and p["ai_keywords"][0] in md
    assert f"**Daily papers:** 2026-04-10 by @{entry['submittedBy']['name']}" in md
    assert f"**Comments:** {entry['numComments']}" in md  # the Hub's count + local ones, as the API
    same = c.get(f"/papers/{p['id']}", headers={"Accept": "text/markdown"})
    assert same.status_code == 200 and same.text == md and "accept" in same.headers["vary"].lower()
    assert c.get(f"/papers/{p['id']}v2.md", follow_redirects=False).headers["location"] == f"/papers/{p['id']}.md"
    missing = c.get("/papers/2401.00001.md")
    assert missing.status_code == 404
    # A browser still gets HTML; a page without a Markdown twin says so.
    html = c.get(f"/papers/{p['id']}", headers={"Accept": "text/html,*/*"})
    assert html.headers["content-type"].startswith("text/html")
    assert c.get("/papers/trending.md").status_code == 404


def test_feed_and_search_markdown(settings, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entry, c = _setup(settings, db, tmp_path)
    day = c.get("/papers/date/2026-04-10.md")
    assert day.status_code == 200 and day.text.startswith("# Daily papers: Friday, April 10, 2026")
    assert f"/papers/{entry['paper']['id']})" in day.text and entry["paper"]["authors"][1]["name"] not in day.text
    week = c.get("/papers/week/2026-W15.md")
    assert week.status_code == 200 and entry["paper"]["id"] in week.text
    found = c.get("/papers/search.md", params={"q": "skill"})
    assert found.status_code == 200 and found.text.startswith("# Search: skill") and entry["paper"]["id"] in found.text
