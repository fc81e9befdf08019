"""The real ``huggingface_hub`` client (pinned in the test extras) against a live ``paperfeed serve``
(uvicorn on loopback) holding imported Hub data: ``HfApi(endpoint=...)`` and the ``hf papers``
command line. Every field of the objects the client returns is checked against the source JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from paperfeed.config import Settings
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database
from paperfeed.web.app import create_app

from .ingest_helpers import HF_DIR
from .servers import LiveServer

hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import HfApi  # noqa: E402

DAYS = {"2026-04-10": HF_DIR / "2026-04-10.json", "2026-04-16": HF_DIR / "2026-04-16.json"}
TWICE = "2604.07429"  # listed on both days: paperfeed shows it on the first one only


def _source() -> dict[str, list[dict[str, Any]]]:
    return {d: orjson.loads(p.read_bytes()) for d, p in DAYS.items()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hfclient")
    settings = Settings(home=tmp / "home", secret_key="test-secret", harvest_delay=0.0)
    db = Database(settings.db_url)
    db.migrate()
    assert import_hf_daily(db, HF_DIR, progress=False).rejected == 0
    LexicalIndex(settings).update(db, progress=False)
    with LiveServer(create_app(settings, db)) as server:
        yield server.url
    db.dispose()


@pytest.fixture(scope="module")
def api(live: str) -> Iterator[HfApi]:
    # The suite runs with HF_HUB_OFFLINE=1 (nothing may reach the real Hub); the client talks to
    # the loopback server only, so offline mode is lifted for it here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub.constants, "HF_HUB_OFFLINE", False)
        yield HfApi(endpoint=live, token=False)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def check_info(info: Any, entry: dict[str, Any], *, entry_level: bool = True) -> None:
    """Every PaperInfo field against the Hub's entry (or, for paper_info, its paper object)."""
    p = entry["paper"] if entry_level else entry
    assert info.id == p["id"]
    assert [(a.name, a.hidden, a.status) for a in info.authors] == [
        (a["name"], a.get("hidden"), a.get("status")) for a in p["authors"]
    ]
    for a, src in zip(info.authors, p["authors"], strict=True):
        if src.get("user"):
            assert a.user is not None and a.user.username == src["user"]["user"]
        if src.get("statusLastChangedAt"):
            assert a.status_last_changed_at == _time(src["statusLastChangedAt"])
    assert info.published_at == _time(p["publishedAt"])
    assert info.title == (entry["title"] if entry_level else p["title"])
    assert info.summary == p["summary"]
    assert info.upvotes == (p["upvotes"] or None)  # the client turns 0 into None
    assert info.discussion_id == p.get("discussionId")
    # The client reads these at the top level: the entry's (absent there) or the paper's.
    top = entry if entry_level else p
    assert (info.ai_summary, info.ai_keywords) == (top.get("ai_summary"), top.get("ai_keywords"))
    assert (info.project_page, info.github_repo) == (top.get("projectPage"), top.get("githubRepo"))
    assert info.github_stars == top.get("githubStars")
    if entry_level:
        assert info.comments == entry["numComments"]
        assert info.submitted_at == _time(entry["publishedAt"])
        by = entry.get("submittedBy")
        if by:
            assert info.submitted_by is not None
            assert (info.submitted_by.fullname, info.submitted_by.is_pro) == (by["fullname"], by["isPro"])
            assert info.submitted_by.avatar_url == by["avatarUrl"] and info.submitted_by.name == by["name"]
        if entry.get("organization"):
            assert info.organization is not None and info.organization.name == entry["organization"]["name"]
            assert info.organization.fullname == entry["organization"]["fullname"]
        assert getattr(info, "thumbnail", None) == entry.get("thumbnail")
        assert getattr(info, "isAuthorParticipating", None) == entry.get("isAuthorParticipating")
    else:
        assert info.submitted_at == _time(p["submittedOnDailyAt"])
        assert info.submitted_by.username == p["submittedOnDailyBy"]["user"]
        assert info.submitted_by.fullname == p["submittedOnDailyBy"]["fullname"]


def _expected(day: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in day if e["paper"]["id"] != TWICE]


def test_list_daily_papers_by_date_week_month(api: HfApi) -> None:
    src = _source()
    for d, day in src.items():
        got = list(api.list_daily_papers(date=d, limit=100))
        # The paper listed on both days (allow-listed): on its first day only, with the top count.
        twice = [i for i in got if i.id == TWICE]
        assert [i.upvotes for i in twice] == ([42] if d == "2026-04-10" else [])
        got = [i for i in got if i.id != TWICE]
        want = _expected(day)
        assert [i.id for i in got] == [e["paper"]["id"] for e in want]
        for info, entry in zip(got, want, strict=True):
            check_info(info, entry)
    week = list(api.list_daily_papers(week="2026-W15", limit=100))
    assert {i.id for i in week} == {e["paper"]["id"] for e in src["2026-04-10"]}
    month = list(api.list_daily_papers(month="2026-04", limit=100))
    assert len(month) == len(src["2026-04-10"]) + len(_expected(src["2026-04-16"]))
    assert [i.upvotes or 0 for i in month] == sorted((i.upvotes or 0 for i in month), reverse=True)


def test_list_daily_papers_submitter_sort_and_pages(api: HfApi) -> None:
    day = _source()["2026-04-10"]
    user = day[0]["submittedBy"]["name"]
    mine = list(api.list_daily_papers(date="2026-04-10", submitter=user, limit=100))
    want = [e["paper"]["id"] for e in _expected(day) if (e.get("submittedBy") or {}).get("name") == user]
    assert [i.id for i in mine if i.id != TWICE] == want
    assert all(i.submitted_by.name == user for i in mine) and mine
    whole = [i.id for i in api.list_daily_papers(date="2026-04-10", limit=100)]
    pages = [list(api.list_daily_papers(date="2026-04-10", p=p, limit=10)) for p in range(4)]
    assert [i.id for page in pages for i in page] == whole and len(whole) == len(day)
    newest = list(api.list_daily_papers(date="2026-04-10", sort="publishedAt", limit=100))
    assert [i.submitted_at for i in newest] == sorted((i.submitted_at for i in newest), reverse=True)
    trending = list(api.list_daily_papers(date="2026-04-10", sort="trending", limit=100))
    assert {i.id for i in trending} == {e["paper"]["id"] for e in day}


def test_paper_info_and_list_papers(api: HfApi) -> None:
    entry = next(e for e in _source()["2026-04-10"] if e["paper"].get("githubRepo") and e["paper"].get("ai_summary"))
    info = api.paper_info(entry["paper"]["id"])
    check_info(info, entry["paper"], entry_level=False)
    assert info.comments == entry["numComments"]
    word = max(entry["paper"]["title"].replace(":", " ").split(), key=len)  # a distinctive word
    found = list(api.list_papers(query=word, limit=120))
    assert entry["paper"]["id"] in [i.id for i in found]
    hit = next(i for i in found if i.id == entry["paper"]["id"])
    check_info(hit, entry)
    with pytest.raises(hub.errors.HfHubHTTPError) as err:
        api.paper_info("2401.00001")
    assert err.value.response.status_code == 404


def test_read_paper_is_markdown(api: HfApi) -> None:
    entry = next(e for e in _source()["2026-04-10"] if e["paper"].get("ai_keywords"))
    p = entry["paper"]
    text = api.read_paper(p["id"])
    assert text.startswith(f"# {p['title'].split()[0]}")
    for a in p["authors"]:
        if not a.get("hidden"):
            assert a["name"] in text
    assert "## Abstract" in text and p["summary"].split(".")[0][:60] in text
    assert "## AI-generated summary" in text and p["ai_keywords"][0] in text
    assert f"https://arxiv.org/abs/{p['id']}" in text


def _hf_cli(live: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=live, HF_HOME=str(Path(os.environ.get("TMPDIR", "/tmp")) / "paperfeed-hf-home"))
    env["NO_COLOR"] = "1"
    code = "from huggingface_hub.cli.hf import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def test_hf_papers_command_line(live: str) -> None:
    day = _source()["2026-04-10"]
    first = day[0]["paper"]
    ls = _hf_cli(live, "papers", "ls", "--date", "2026-04-10", "--limit", "100", "--format", "json")
    assert ls.returncode == 0, ls.stderr
    listed = orjson.loads(ls.stdout)
    assert sorted(i["id"] for i in listed) == sorted(e["paper"]["id"] for e in day)
    by_id = {i["id"]: i for i in listed}
    assert by_id[first["id"]]["comments"] == day[0]["numComments"] and by_id[first["id"]]["title"] == day[0]["title"]
    word = max(first["title"].replace(":", " ").split(), key=len)
    search = _hf_cli(live, "papers", "search", word, "--format", "json")
    assert search.returncode == 0, search.stderr
    assert first["id"] in [i["id"] for i in orjson.loads(search.stdout)]
    info = _hf_cli(live, "papers", "info", first["id"], "--format", "json")
    assert info.returncode == 0, info.stderr
    shown = orjson.loads(info.stdout)
    assert shown["id"] == first["id"] and shown["summary"] == first["summary"]
    read = _hf_cli(live, "papers", "read", first["id"])
    assert read.returncode == 0, read.stderr
    assert "## Abstract" in read.stdout and first["authors"][0]["name"] in read.stdout
    missing = _hf_cli(live, "papers", "read", "2401.00001")
    assert missing.returncode != 0 and "not found" in (missing.stderr + missing.stdout)
