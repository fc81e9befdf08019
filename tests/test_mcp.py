"""The MCP server through the official SDK's own client, over streamable HTTP (``/mcp`` on a live
``paperfeed serve``) and over stdio (``paperfeed mcp`` as a subprocess): list the tools, call each,
and compare every answer with the JSON API's. Write tools need an API token with the right scope;
the HTTP endpoint refuses foreign origins and oversized bodies."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database
from paperfeed.web.app import create_app

from .community_util import PASSWORD, TOKEN_RE, community, make_user
from .ingest_helpers import HF_DIR
from .servers import LiveServer

mcp = pytest.importorskip("mcp")
import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

TOOLS = {"search_papers", "daily_papers", "get_paper", "similar_papers", "upvote", "submit_paper", "for_you",
         "following"}  # fmt: skip
PAPER = "2604.08546"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mcp")
    settings = Settings(home=tmp / "home", secret_key="test-secret", harvest_delay=0.0)
    db = Database(settings.db_url)
    db.migrate()
    import_hf_daily(db, HF_DIR, progress=False)
    LexicalIndex(settings).update(db, progress=False)
    com = community(settings, db)
    user = make_user(com, "agent")
    voter, _ = accounts.create_api_token(com, user, "mcp", ["read", "vote", "submit"])
    reader, _ = accounts.create_api_token(com, user, "read only", ["read"])
    app = create_app(settings, db)
    with LiveServer(app) as server:
        yield {"url": server.url, "settings": settings, "db": db, "voter": voter, "reader": reader,
               "app_interval": app.state.pf.version.interval}  # fmt: skip
    db.dispose()


def _api(site: dict[str, Any], path: str, **params: Any) -> Any:
    r = httpx.get(site["url"] + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


Calls = list[tuple[str, dict[str, Any]]]


async def _http_calls(url: str, token: str | None, calls: Calls) -> tuple[set[str], list[Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            results = [await client.call_tool(name, args) for name, args in calls]
    return tools, results


def _structured(result: Any) -> Any:
    assert not result.is_error, result.content
    data = result.structured_content
    return data["result"] if isinstance(data, dict) and set(data) == {"result"} else data


def test_http_tools_answer_like_the_json_api(site: dict[str, Any]) -> None:
    calls = [
        ("daily_papers", {"date": "2026-04-10", "limit": 100}),
        ("daily_papers", {"week": "2026-W16", "sort": "publishedAt"}),
        ("get_paper", {"paper_id": PAPER}),
        ("similar_papers", {"paper_id": PAPER, "k": 3}),
        ("search_papers", {"query": "numerals video", "mode": "keyword", "limit": 5}),
    ]
    tools, results = anyio.run(_http_calls, site["url"], None, calls)
    assert tools == TOOLS
    day, week, paper, similar, found = (_structured(r) for r in results)
    assert day == _api(site, "/api/daily_papers", date="2026-04-10", limit=100) and len(day) == 35
    assert week == _api(site, "/api/daily_papers", week="2026-W16", sort="publishedAt")
    assert paper == _api(site, f"/api/papers/{PAPER}")
    assert similar == _api(site, f"/api/v1/papers/{PAPER}/similar", k=3)
    api_found = _api(site, "/api/v1/search", q="numerals video", mode="keyword", limit=5)
    assert [h["paper"]["id"] for h in found["hits"]] == [h["paper"]["id"] for h in api_found["hits"]]
    assert found["hits"][0]["paper"]["id"] == PAPER and found["total"] == api_found["total"]
    assert {k: v for k, v in found.items() if k != "took_ms"} == {k: v for k, v in api_found.items() if k != "took_ms"}


def test_http_bad_input_is_a_tool_error(site: dict[str, Any]) -> None:
    calls = [
        ("get_paper", {"paper_id": "not-an-id"}),
        ("get_paper", {"paper_id": "2401.00001"}),
        ("daily_papers", {"date": "2026-02-30"}),
        ("daily_papers", {"date": "2026-04-10", "week": "2026-W15"}),
        ("search_papers", {"query": "the of and"}),
        ("search_papers", {"query": "x", "limit": 1000}),
    ]
    _tools, results = anyio.run(_http_calls, site["url"], None, calls)
    messages = [" ".join(c.text for c in r.content if hasattr(c, "text")) for r in results]
    assert all(r.is_error for r in results), messages
    assert "not an arXiv id" in messages[0] and "not in this paperfeed" in messages[1]
    assert "not a real date" in messages[2] and "only one of" in messages[3]
    assert "very common words" in messages[4] and "limit" in messages[5]


def test_http_write_tools_need_a_token_with_the_scope(site: dict[str, Any]) -> None:
    before = _api(site, f"/api/papers/{PAPER}")["upvotes"]
    _t, anonymous = anyio.run(_http_calls, site["url"], None, [("upvote", {"paper_id": PAPER})])
    assert anonymous[0].is_error and "needs an API token" in anonymous[0].content[0].text
    _t, reader = anyio.run(_http_calls, site["url"], site["reader"], [("upvote", {"paper_id": PAPER})])
    assert reader[0].is_error and "lacks the 'vote' scope" in reader[0].content[0].text
    _t, voted = anyio.run(
        _http_calls, site["url"], site["voter"], [("upvote", {"paper_id": PAPER}), ("upvote", {"paper_id": PAPER})]
    )
    first, second = _structured(voted[0]), _structured(voted[1])
    assert (first["changed"], second["changed"]) == (True, False)  # idempotent
    assert first["upvotes"] == second["upvotes"]
    assert _structured(voted[0])["upvotes"] == before + 1 == _api(site, f"/api/papers/{PAPER}")["upvotes"]
    _t, unvoted = anyio.run(_http_calls, site["url"], site["voter"], [("upvote", {"paper_id": PAPER, "up": False})])
    assert _structured(unvoted[0])["upvotes"] == before
    # submit_paper applies the community rules, with the JSON API's message.
    _t, sub = anyio.run(_http_calls, site["url"], site["voter"], [("submit_paper", {"arxiv_id": PAPER})])
    api = httpx.post(site["url"] + "/api/papers/index", json={"arxivId": PAPER},
                     headers={"Authorization": f"Bearer {site['voter']}"}, timeout=30)  # fmt: skip
    assert sub[0].is_error and api.status_code >= 400 and api.json()["detail"] in sub[0].content[0].text


def test_personal_tools_need_a_token_and_answer_like_the_api(site: dict[str, Any]) -> None:
    """for_you / following are the token owner's personal views: a token with 'read', never anonymous."""
    _t, anonymous = anyio.run(_http_calls, site["url"], None, [("for_you", {}), ("following", {})])
    assert all(r.is_error and "needs an API token" in r.content[0].text for r in anonymous)
    _t, got = anyio.run(_http_calls, site["url"], site["reader"], [("for_you", {"limit": 5}), ("following", {})])
    headers = {"Authorization": f"Bearer {site['reader']}"}
    api = httpx.get(site["url"] + "/api/v1/me/for-you", params={"limit": 5}, headers=headers, timeout=30).json()
    mine = _structured(got[0])
    assert [p["id"] for p in mine["papers"]] == [p["id"] for p in api["papers"]] and len(mine["papers"]) == 5
    assert all(p["why"] for p in mine["papers"]) and mine["cold_start"] is True
    api_following = httpx.get(site["url"] + "/api/v1/me/following", headers=headers, timeout=30).json()
    assert _structured(got[1]) == api_following


def test_a_browser_session_cannot_act_through_mcp(site: dict[str, Any]) -> None:
    """No CSRF bypass: /mcp ignores cookies, so a signed-in browser session (which a cross-site
    request would carry) cannot upvote through it; only a Bearer token can."""
    with httpx.Client(base_url=site["url"], timeout=30) as browser:
        token = TOKEN_RE.search(browser.get("/signin").text)
        assert token is not None
        r = browser.post("/signin", data={"csrf_token": token.group(1), "login": "agent", "password": PASSWORD})
        assert r.status_code == 303, r.text
        assert browser.get("/account").status_code == 200  # the session is real
        cookies = dict(browser.cookies)
    before = _api(site, f"/api/papers/{PAPER}")["upvotes"]

    async def call() -> Any:
        async with httpx2.AsyncClient(cookies=cookies, timeout=30) as http:
            async with Client(streamable_http_client(site["url"] + "/mcp", http_client=http)) as client:
                return await client.call_tool("upvote", {"paper_id": PAPER})

    result = anyio.run(call)
    assert result.is_error and "needs an API token" in result.content[0].text
    assert _api(site, f"/api/papers/{PAPER}")["upvotes"] == before


def test_http_endpoint_guards(site: dict[str, Any]) -> None:
    url = site["url"] + "/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    bad_token = httpx.post(url, json=body, headers={**accept, "Authorization": "Bearer pf_junk"}, timeout=30)
    assert bad_token.status_code == 401
    foreign = httpx.post(url, json=body, headers={**accept, "Origin": "https://evil.example"}, timeout=30)
    assert foreign.status_code == 403
    huge = httpx.post(url, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=accept, timeout=30)
    assert huge.status_code == 413


def test_stdio_server(site: dict[str, Any]) -> None:
    settings: Settings = site["settings"]
    env = {
        "PAPERFEED_HOME": str(settings.home),
        "PAPERFEED_DATABASE_URL": site["db"].url,
        "PAPERFEED_SECRET_KEY": "test-secret",
        "PAPERFEED_TOKEN": site["voter"],
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "paperfeed", "mcp"], env=env)

    async def run() -> tuple[set[str], list[Any]]:
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            calls = [
                ("daily_papers", {"date": "2026-04-16"}),
                ("get_paper", {"paper_id": PAPER}),
                ("search_papers", {"query": "numerals", "mode": "keyword"}),
                ("upvote", {"paper_id": PAPER}),
                ("upvote", {"paper_id": PAPER, "up": False}),
            ]
            return tools, [await client.call_tool(n, a) for n, a in calls]

    tools, results = anyio.run(run)
    # The stdio server is another process: the live server sees its writes once its data version
    # is re-read, at most DataVersion.interval later (documented; same for any second worker).
    time.sleep(site["app_interval"] + 0.2)
    assert tools == TOOLS
    day, paper, found, up, down = (_structured(r) for r in results)
    assert day == _api(site, "/api/daily_papers", date="2026-04-16")
    assert paper == _api(site, f"/api/papers/{PAPER}")
    assert found["hits"][0]["paper"]["id"] == PAPER
    assert up["upvotes"] == down["upvotes"] + 1
