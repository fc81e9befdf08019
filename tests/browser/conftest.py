"""Browser-test fixtures: headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no
browser is ever downloaded) and demo data. The live server is ``tests/servers.LiveServer``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.web.app import create_app
from tests.community_util import PASSWORD

from ..servers import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (run scripts/system-deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def demo_site(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[str]:
    """A live server on a fresh home filled with the demo data; yields its base URL."""
    home = tmp_path_factory.mktemp(name)
    settings = Settings(home=home, secret_key="test", base_url="http://127.0.0.1")
    db = Database(settings.db_url)
    db.migrate()
    fill_demo_database(settings, db)
    with LiveServer(create_app(settings, db)) as server:
        yield server.url
    db.dispose()


def sign_in(page: Any, url: str, login: str) -> None:
    """Sign in through the real form (the account's password is ``PASSWORD``)."""
    page.goto(f"{url}/signin")
    page.fill("#f-login", login)
    page.fill("#f-password", PASSWORD)
    page.click("form.cform button[type=submit]")
    page.wait_for_url(f"{url}/")


def fill_demo_database(settings: Settings, db: Database) -> None:
    """The bundled sample through the real importers when it is there; otherwise factory rows."""
    from paperfeed.cli.web import SAMPLE, import_sample

    if SAMPLE.exists() and any(p.is_file() and ".json" in p.name for p in SAMPLE.rglob("*")):
        import_sample(db, SAMPLE)
    else:
        from tests import factories as f

        day, prev = date(2025, 1, 15), date(2025, 1, 14)
        rows = [
            f.make_paper(
                title="Sparse attention for long-context language models",
                imported_upvotes=48,
                github_repo="https://github.com/example/sparse",
                github_stars=2300,
                abstract="We propose a sparse attention scheme whose cost grows as $O(n \\log n)$ with "
                "sequence length n, and show it matches dense attention on long-context benchmarks.",
            ),
            f.make_paper(
                title="Diffusion transformers for video generation",
                imported_upvotes=31,
                abstract="A latent diffusion transformer generates minute-long videos from text prompts.",
            ),
            f.make_paper(title="<script>alert(1)</script> a hostile title", imported_upvotes=2),
            f.make_paper(
                title="Graph neural networks meet attention",
                imported_upvotes=9,
                abstract="Message passing with attention heads improves molecular property prediction.",
            ),
        ]
        f.add_papers(db, rows)
        for r in rows[:3]:
            f.add_daily(db, r["id"], day, submitter="alice")
        f.add_daily(db, rows[3]["id"], prev, submitter="bob")
    from paperfeed.search.lexical import LexicalIndex

    LexicalIndex(settings).update(db, progress=False)
