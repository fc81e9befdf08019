"""Issue 10 item 10: every redirect target goes through one ``safe_next``, which accepts only
same-site relative paths. The vote form used to send people back to the path of the ``Referer``
unchecked, so ``//evil.example/x`` came back as ``Location: //evil.example/x``."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.web.redirects import safe_next

from . import factories as f
from .community_util import make_user, unlimited, web

WEB = Path(__file__).resolve().parents[1] / "src" / "paperfeed" / "web"
OFF_SITE = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "https://evil.example/x",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\\/evil.example",
    " //evil.example",
    "",
    "x",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_safe_next_refuses_anything_but_a_same_site_path(target: str) -> None:
    assert safe_next(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", ["/", "/papers/2401.00001", "/search?q=a+b&page=2", "/users/alice#comments"])
def test_safe_next_keeps_same_site_paths(target: str) -> None:
    assert safe_next(target, "/fallback") == target


def _referers(host: str) -> list[str]:
    return [
        f"http://{host}//evil.example/x",
        f"http://{host}/\\evil.example/x",
        f"http://{host}/%5Cevil.example",
        "http://evil.example/x",
        "//evil.example/x",
    ]


def test_vote_redirect_never_leaves_the_site(db: Database, settings: Settings) -> None:
    p = f.add_paper(db, title="A paper to vote on")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    for signed_in in (False, True):
        if signed_in:
            w.sign_in("alice")
        for referer in _referers("testserver"):
            for extra in ({}, {"next": "//evil.example/y"}):
                r = w.post(f"/papers/{p['id']}/vote", extra, headers={"Referer": referer})
                assert r.status_code == 303, r.status_code
                location = r.headers["location"]
                assert location.startswith("/") and not location.startswith("//"), (referer, location)
                assert "\\" not in location and urlsplit(urljoin("http://testserver/", location)).netloc == "testserver"
                if not signed_in:
                    assert location.startswith("/signin?"), location
    # A same-site Referer still brings the voter back to the page the button was on.
    r = w.post(f"/papers/{p['id']}/vote", headers={"Referer": "http://testserver/users/alice?tab=up"})
    assert r.headers["location"] == "/users/alice?tab=up"


def test_every_redirect_in_the_web_layer_goes_through_safe_next() -> None:
    """A structural check: ``RedirectResponse`` is built in one place (web/redirects.py), whose
    helpers pass every target through ``safe_next``; any other module building one fails here."""
    offenders = []
    for path in sorted(WEB.rglob("*.py")):
        if path.name == "redirects.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
                if name == "RedirectResponse":
                    offenders.append(f"{path.relative_to(WEB)}:{node.lineno}")
    assert offenders == [], offenders
