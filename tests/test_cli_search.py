"""`paperfeed search` prints titles, authors and errors as text: brackets in data are not Rich markup."""

from __future__ import annotations

from paperfeed.config import Settings
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database

from .factories import add_paper
from .ingest_helpers import cli


def test_search_prints_bracketed_titles_verbatim(db: Database, settings: Settings) -> None:
    add_paper(
        db,
        id="2401.00001",
        title="[Re] Reproducibility of [/bold] sparse autoencoders",
        abstract="We reproduce sparse autoencoder results.",
        authors=["Ada [dim] Lovelace"],
    )
    LexicalIndex(settings).update(db)
    res = cli(settings, db, "search", "sparse autoencoders", "--mode", "keyword")
    assert res.exit_code == 0, res.output
    assert "[Re] Reproducibility of [/bold] sparse autoencoders" in res.stdout
    assert "Ada [dim] Lovelace" in res.stdout


def test_search_error_with_brackets_is_reported(db: Database, settings: Settings) -> None:
    res = cli(settings, db, "search", "x", "--after", "[/red]")
    assert res.exit_code == 2
    assert "[/red]" in res.output
