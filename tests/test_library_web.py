"""The library on the web: save without JS (POST, 303 back) and in place (JSON); "not interested" and
"hide" with Undo; hidden papers leave the reader's feeds; /library pages and JSON twins; private
collections; the public read-only URL; import/export over HTTP; the API with the ``library`` scope;
bounded input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from paperfeed.community import accounts, moderation
from paperfeed.config import Settings
from paperfeed.library import collections as lib
from paperfeed.store.db import Database

from . import factories as f
from .community_util import Web, make_user, second_browser, unlimited, web

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "library"
DAY = date(2026, 4, 15)
FEED = "/papers/date/2026-04-15"


@pytest.fixture
def site(db: Database, settings: Settings) -> tuple[Web, list[str]]:
    ids = []
    for title in ("Attention Is All You Need", "A paper to hide", "A third paper"):
        pid = f.add_paper(db, title=title)["id"]
        f.add_daily(db, pid, DAY)
        ids.append(pid)
    w = web(settings, db, limits=unlimited(), oai_url="http://127.0.0.1:9/oai")  # arXiv unreachable
    make_user(w.community, "alice")
    make_user(w.community, "bob")
    return w, ids


def _json_post(w: Web, path: str, data: dict[str, str] | None = None) -> dict[str, object]:
    r = w.client.post(path, data=data or {}, headers={"Accept": "application/json", "X-CSRF-Token": w.token()})
    assert r.status_code == 200, r.text
    return orjson.loads(r.content)


def test_save_works_without_js_and_in_place(site: tuple[Web, list[str]]) -> None:
    w, (p1, p2, _p3) = site
    anon = w.post(f"/papers/{p1}/save", headers={"Referer": f"http://testserver{FEED}"})
    assert anon.status_code == 303 and anon.headers["location"].startswith("/signin?next=")
    w.sign_in("alice")
    page = w.client.get(FEED).text
    assert page.count('class="save-form"') == 3 and page.count('aria-pressed="false" title="Save') == 3
    # Without JS: a form POST comes back to the page it was sent from.
    r = w.post(f"/papers/{p1}/save", headers={"Referer": f"http://testserver{FEED}"})
    assert (r.status_code, r.headers["location"]) == (303, FEED)
    assert w.client.get(FEED).text.count('<span class="save-label">Saved</span>') == 1
    # With JS: the same POST asking for JSON, answered in place.
    assert _json_post(w, f"/papers/{p2}/save") == {"paperId": p2, "saved": True, "changed": True,
        "collection": {"slug": "saved", "name": "Saved", "url": "/library/saved"}}  # fmt: skip
    assert _json_post(w, f"/papers/{p2}/save")["saved"] is False
    # A collection and a note from the paper page.
    r = w.post(f"/papers/{p2}/collect", {"new_collection": "Reading group", "note": "for Tuesday"})
    assert (r.status_code, r.headers["location"]) == (303, f"/papers/{p2}#library")
    paper = w.client.get(f"/papers/{p2}").text
    assert 'href="/library/reading-group">Reading group</a>' in paper and ">for Tuesday</textarea>" in paper
    mine = orjson.loads(w.client.get("/library.json").content)
    assert [(c["slug"], c["items"], c["public"]) for c in mine["collections"]] == [("saved", 1, False),
                                                                                   ("reading-group", 1, False)]


def test_not_interested_and_hide_are_one_click_and_undoable(site: tuple[Web, list[str]]) -> None:
    w, (p1, p2, p3) = site
    w.sign_in("alice")
    assert _json_post(w, f"/papers/{p3}/feedback", {"kind": "not_interested", "on": "true"})["active"] is True
    # Without JS, hiding answers with a page that has the Undo button.
    r = w.post(f"/papers/{p2}/feedback", {"kind": "hidden", "on": "true", "next": FEED})
    assert r.status_code == 200 and "Hidden from your feeds" in r.text and ">Undo</button>" in r.text
    feed = w.client.get(FEED).text
    assert "A paper to hide" not in feed and "Attention Is All You Need" in feed
    assert "Not interested · undo" in feed  # still shown, marked
    assert "A paper to hide" in w.client.get(f"/papers/{p2}").text  # its own page still opens
    assert "A paper to hide" in second_browser(w).client.get(FEED).text  # nobody else's feed changes
    listed = orjson.loads(w.client.get("/library.json").content)
    assert [h["paperId"] for h in listed["hidden"]] == [p2] and [n["paperId"] for n in listed["notInterested"]] == [p3]
    undo = w.post(f"/papers/{p2}/feedback", {"kind": "hidden", "on": "false", "next": FEED})
    assert (undo.status_code, undo.headers["location"]) == (303, FEED)
    assert "A paper to hide" in w.client.get(FEED).text
    bad = w.post(f"/papers/{p1}/feedback", {"kind": "meh"})
    assert bad.status_code == 422 and "Unknown feedback" in bad.text


def test_collections_are_private_and_the_public_url_is_read_only(site: tuple[Web, list[str]]) -> None:
    w, (p1, p2, _p3) = site
    w.sign_in("alice")
    assert w.post("/library/collections", {"name": "Group reading"}).headers["location"] == "/library/group-reading"
    w.post(f"/papers/{p1}/collect", {"collection": "group-reading", "note": "my secret note"})
    w.post(f"/library/group-reading/papers/{p1}/note", {"note": "my updated secret"})
    bob = second_browser(w)
    bob.sign_in("bob")
    assert bob.client.get("/library/group-reading").status_code == 404
    assert bob.post(f"/library/group-reading/papers/{p1}/remove").status_code == 404
    assert w.client.get("/library/group-reading/export?format=bibtex").text.count("my updated secret") == 1
    # Sharing gives an unguessable read-only URL, without the owner's notes.
    w.post("/library/group-reading/settings", {"public": "true"})
    page = w.client.get("/library/group-reading").text
    share = page.split('class="share-url" href="', 1)[1].split('"', 1)[0]
    assert share.startswith("/c/") and len(share) > 30
    anon = second_browser(w)
    public = anon.client.get(share)
    assert public.status_code == 200 and "Attention Is All You Need" in public.text and "secret" not in public.text
    assert "Save note" not in public.text and "/delete" not in public.text
    twin = orjson.loads(anon.client.get(share + ".json").content)
    assert [i["paperId"] for i in twin["items"]] == [p1] and "note" not in twin["items"][0]
    assert "slug" not in twin["collection"]
    exported = anon.client.get(share + "/export?format=csl-json")
    assert exported.headers["content-type"].startswith("application/vnd.citationstyles.csl+json")
    assert [i["number"] for i in orjson.loads(exported.content)] == [p1] and b"secret" not in exported.content
    w.post("/library/group-reading/settings", {"public": ""})
    assert anon.client.get(share).status_code == 404
    assert w.post("/library/group-reading/delete").headers["location"] == "/library"
    assert w.client.get("/library/group-reading").status_code == 404
    assert w.post("/library/saved/delete").status_code == 409


def test_import_page_lists_what_was_not_matched(site: tuple[Web, list[str]], db: Database) -> None:
    w, _ids = site
    f.add_paper(db, id="hep-th/9711200", title="The large N limit")
    w.sign_in("alice")
    files = {"file": ("My Library.bib", (FIXTURES / "zotero.bib").read_bytes(), "application/x-bibtex")}
    r = w.client.post("/library/import", data={"csrf_token": w.token(), "new_collection": "From Zotero"},
                      files=files)  # fmt: skip
    assert r.status_code == 200, r.text
    assert "Imported into" in r.text and "not imported" in r.text
    for ref in ("knuth_art_1997", "no_fields_at_all", "broken_entry", "muller_universelle_2020"):
        assert f"<code>{ref}</code>" in r.text
    assert "could not be read" in r.text and "not fetched: arXiv unreachable" in r.text
    col = orjson.loads(w.client.get("/library/from-zotero.json").content)
    assert [i["paperId"] for i in col["items"]] == ["hep-th/9711200"]
    # Garbage: a clear 400 on the form again, nothing written.
    junk = {"file": ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(300), "image/png")}
    bad = w.client.post("/library/import", data={"csrf_token": w.token(), "new_collection": "Junk"}, files=junk)
    assert bad.status_code == 400 and "binary file" in bad.text and 'name="new_collection"' in bad.text
    assert "junk" not in w.client.get("/library.json").text.lower()
    huge = w.client.post("/library/import", data={"csrf_token": w.token(), "text": "2405.15738\n" * 200_000})
    assert huge.status_code == 413


def test_the_api_with_a_library_token(site: tuple[Web, list[str]]) -> None:
    w, (p1, p2, _p3) = site
    alice = accounts.user_by_name(w.community, "alice")
    token, _ = accounts.create_api_token(w.community, alice, "library", ["read", "library"])
    reader, _ = accounts.create_api_token(w.community, alice, "read only", ["read"])
    auth = {"Authorization": f"Bearer {token}"}
    r = w.client.post(f"/api/papers/{p1}/save", json={"note": "via the API"}, headers=auth)
    assert r.status_code == 200 and r.json()["saved"] is True
    assert w.client.post("/api/library", json={"name": "API made"}, headers=auth).json()["slug"] == "api-made"
    imported = w.client.post("/api/library/import", json={"text": f"{p2}\n1234.5678\n", "collection": "api-made"},
                             headers=auth).json()  # fmt: skip
    assert imported["counts"]["added"] == 1 and imported["outcomes"][1]["status"] == "unreadable"
    assert w.client.post(f"/api/papers/{p2}/feedback", json={"kind": "hidden"}, headers=auth).json()["active"]
    assert w.client.delete(f"/api/papers/{p2}/feedback?kind=hidden", headers=auth).json()["active"] is False
    listing = w.client.get("/api/library", headers={"Authorization": f"Bearer {reader}"})
    assert [c["slug"] for c in listing.json()["collections"]] == ["saved", "api-made"]
    assert listing.headers["cache-control"] == "private, no-store"
    one = w.client.get("/api/library/saved", headers={"Authorization": f"Bearer {reader}"}).json()
    assert [(i["paperId"], i["note"]) for i in one["items"]] == [(p1, "via the API")]
    refused = w.client.post(f"/api/papers/{p2}/save", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403 and refused.json()["scope"] == "library"
    assert w.client.get("/api/library").status_code == 401


def test_limits_are_clear_4xx(site: tuple[Web, list[str]]) -> None:
    w, (p1, _p2, _p3) = site
    w.sign_in("alice")
    long_note = w.post(f"/papers/{p1}/collect", {"note": "x" * (lib.LIMITS.note_chars + 1)})
    assert long_note.status_code == 422 and "at most 5,000 characters" in long_note.text
    empty = w.post("/library/collections", {"name": "   "})
    assert empty.status_code == 422 and "Give the collection a name" in empty.text
    assert w.post("/papers/2501.99999/save").status_code == 404
    assert w.client.get("/library/saved/export?format=docx").status_code == 422


def test_a_banned_owners_public_collection_goes_offline(site: tuple[Web, list[str]]) -> None:
    """A shared collection's name is the owner's own text on a public page: banning the owner takes
    it (page, twin, export) offline like the rest of their content, and unbanning brings it back
    (found by the attacker review: it stayed up)."""
    w, (p1, _p2, _p3) = site
    w.sign_in("alice")
    w.post("/library/collections", {"name": "Buy cheap pills at spam.example"})
    w.post(f"/papers/{p1}/collect", {"collection": "buy-cheap-pills-at-spam-example"})
    w.post("/library/buy-cheap-pills-at-spam-example/settings", {"public": "true"})
    share = orjson.loads(w.client.get("/library.json").content)["collections"][-1]["publicUrl"]
    anon = second_browser(w).client
    assert anon.get(share).status_code == 200
    mod = make_user(w.community, "mod", role="moderator")
    moderation.set_banned(w.community, mod, "alice", True, "spam")
    for url in (share, share + ".json", share + "/export?format=ris"):
        r = anon.get(url)
        assert r.status_code == 404 and b"spam.example" not in r.content, url
    moderation.set_banned(w.community, mod, "alice", False, "appeal")
    assert anon.get(share).status_code == 200


def test_a_refused_collect_leaves_no_new_collection(site: tuple[Web, list[str]]) -> None:
    """"Put in a new collection" with a paper that is not here or a note over the limit is a 4xx and
    writes nothing: the new collection is not left behind (found by the attacker review)."""
    w, (p1, _p2, _p3) = site
    w.sign_in("alice")
    assert w.post("/papers/9999.99999/collect", {"new_collection": "Orphan"}).status_code == 404
    assert w.post(f"/papers/{p1}/collect", {"new_collection": "Orphan two", "note": "x" * 6000}).status_code == 422
    names = [c["name"] for c in orjson.loads(w.client.get("/library.json").content)["collections"]]
    assert names == ["Saved"]
