"""CPU cost of a signed-in reader's feed page, whose 50 cards each show that reader's Save / Not
interested / Hide state (``web/library_routes.library_state``: one query a card).

    PYTHONPATH=src python bench/bench_library_cards.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import factories as f  # noqa: E402
from tests.community_util import make_user, unlimited, web  # noqa: E402

from paperfeed.config import Settings  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-cards-"))
    settings = Settings(home=home / "h", secret_key="bench", harvest_delay=0.0)
    db = Database(settings.db_url)
    db.migrate()
    ids = []
    for _ in range(50):
        pid = f.add_paper(db)["id"]
        f.add_daily(db, pid, date(2026, 4, 15))
        ids.append(pid)
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "reader")
    w.sign_in("reader")
    for pid in ids[::5]:
        w.post(f"/papers/{pid}/save")
    logging.disable(logging.INFO)
    page = "/papers/date/2026-04-15"
    w.client.get(page)
    t = time.process_time()
    for _ in range(20):
        r = w.client.get(page)
    per_page = (time.process_time() - t) / 20 * 1000
    print(f"signed-in feed page, 50 cards (10 saved): {per_page:.1f} ms CPU per page, status {r.status_code}")


if __name__ == "__main__":
    main()
