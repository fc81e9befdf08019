"""Fault drill: the SQLite home on a real full disk (a small tmpfs), under `paperfeed serve`.

Needs root (it mounts a tmpfs). Mounts --size MB of tmpfs, puts PAPERFEED_HOME there, loads the
bundled sample (data/sample, the real importers), creates a user with an API token, starts
`paperfeed serve`, then fills the file system to the last byte with a filler file and:

* reads: the feed page, /api/daily_papers, paper pages, search - each must still answer 200;
* writes through the site: upvotes, comments, digest sign-ups - each must answer 2xx (it fit in
  space SQLite already had) or 507 with a message; no 500, no traceback;
* the CLI: `paperfeed import arxiv` of more papers and `paperfeed user create` - exit 0 or 74
  with a message;
* then `PRAGMA integrity_check` must say ok, every acknowledged write must be in the database,
  and once the filler is deleted the same server takes writes again (no restart).

    sudo python bench/drill_disk_full.py            # 48 MB tmpfs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import select  # noqa: E402

from bench_community import start_server  # noqa: E402 - a sibling script
from paperfeed.community import accounts  # noqa: E402
from paperfeed.community.core import Community, User, user_row_by_name  # noqa: E402
from paperfeed.config import Settings  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402
from paperfeed.store.schema import comments, daily_entries, subscriptions, users, votes  # noqa: E402

SAMPLE = REPO / "data" / "sample"
CLI = [sys.executable, "-c", "from paperfeed.cli import main; main()"]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                          input="correct horse battery\n")  # fmt: skip


def fill_disk(path: Path) -> int:
    """Write zeros until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                written += out.write(chunk)
            except OSError:
                break
        for size in (65536, 4096, 512, 1):  # the last partial blocks
            while True:
                try:
                    written += out.write(b"\0" * size)
                except OSError:
                    break
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=48, metavar="MB", help="size of the tmpfs (default 48)")
    size_mb = ap.parse_args().size
    if os.geteuid() != 0:
        raise SystemExit("this drill mounts a tmpfs: run it as root")
    mnt = Path(tempfile.mkdtemp(prefix="pf-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)], check=True)
    proc = None
    try:
        home = mnt / "home"
        env = {"PAPERFEED_HOME": str(home), "PAPERFEED_SECRET_KEY": "drill-secret"}
        env.pop("PAPERFEED_DATABASE_URL", None)
        loaded = cli(env, "import", "arxiv", str(SAMPLE / "arxiv_cs_listings.sample.jsonl.gz"), "-q")
        assert loaded.returncode == 0, loaded.stderr
        loaded = cli(env, "import", "hf-daily", str(SAMPLE / "hf_daily_papers.sample.jsonl.gz"), "-q")
        assert loaded.returncode == 0, loaded.stderr
        settings = Settings(home=home, secret_key="drill-secret")
        db = Database(settings.db_url)
        with db.read() as conn:
            papers = list(conn.execute(select(daily_entries.c.paper_id).limit(400)).scalars())
        made = cli(env, "user", "create", "drill", "--email", "drill@example.org", "--password-stdin")
        assert made.returncode == 0, made.stderr
        c = Community(settings=settings, db=db)
        token, _ = accounts.create_api_token(c, User.from_row(user_row_by_name(c, "drill")), "drill")
        db.dispose()

        proc, base = start_server(settings, 1)
        web = httpx.Client(base_url=base, timeout=30)
        token_field = CSRF_RE.search(web.get("/digest/subscribe").text)
        if token_field is None:
            raise SystemExit("the /digest/subscribe page has no CSRF token field")
        csrf = token_field.group(1)
        api = {"Authorization": f"Bearer {token}"}

        filler = mnt / "filler"
        t0 = time.monotonic()
        filled = fill_disk(filler)
        df = subprocess.run(["df", "-k", str(mnt)], capture_output=True, text=True).stdout.splitlines()[-1]

        reads: dict[str, int] = {}
        for url in ["/", "/api/daily_papers", "/papers/trending", "/papers/search?q=language+models",
                    *(f"/papers/{p}" for p in papers[:20])]:  # fmt: skip
            status = web.get(url).status_code
            reads[str(status)] = reads.get(str(status), 0) + 1

        writes: dict[str, int] = {}
        acked: list[tuple[str, str]] = []
        messages: set[str] = set()
        for i, pid in enumerate(papers[:150]):
            body, email = f"full disk comment {i} " + "x" * 400, f"full{i}@example.org"
            for what, key in (("vote", pid), ("comment", body), ("subscribe", email)):
                if what == "vote":
                    r = web.post(f"/api/papers/{pid}/upvote", headers=api)
                elif what == "comment":
                    r = web.post(f"/api/papers/{pid}/comments", headers=api, json={"comment": body})
                else:
                    form = {"email": email, "frequency": "daily", "csrf_token": csrf}
                    r = web.post("/digest/subscribe", data=form)
                writes[f"{what} {r.status_code}"] = writes.get(f"{what} {r.status_code}", 0) + 1
                if r.status_code in (200, 201):
                    acked.append((what, key))
                elif r.status_code == 507:
                    is_json = r.headers["content-type"].startswith("application/json")
                    messages.add(r.json()["detail"] if is_json else "page")

        more = REPO / "tests" / "fixtures" / "ingest" / "kaggle_head20.jsonl"
        cli_import = cli(env, "import", "arxiv", str(more), "-q")
        cli_user = cli(env, "user", "create", "late", "--email", "late@example.org", "--password-stdin")
        reads_after: dict[str, int] = {}
        for url in ["/", "/api/daily_papers", f"/papers/{papers[0]}"]:
            status = web.get(url).status_code
            reads_after[str(status)] = reads_after.get(str(status), 0) + 1
        with sqlite3.connect(home / "paperfeed.db") as raw:
            integrity_full = raw.execute("PRAGMA integrity_check").fetchone()[0]

        filler.unlink()  # room again: the same server takes writes without a restart
        again = web.post(f"/api/papers/{papers[-1]}/upvote", headers=api).status_code
        if again == 200:
            acked.append(("vote", papers[-1]))
        web.close()
        proc.terminate()
        proc.wait(timeout=30)
        proc = None

        db = Database(settings.db_url)
        with db.read() as conn:
            uid = conn.execute(select(users.c.id).where(users.c.username == "drill")).scalar_one()
            voted = set(conn.execute(select(votes.c.paper_id).where(votes.c.user_id == uid)).scalars())
            bodies = set(conn.execute(select(comments.c.body)).scalars())
            emails = set(conn.execute(select(subscriptions.c.email)).scalars())
        db.dispose()
        present = {"vote": voted, "comment": bodies, "subscribe": emails}
        lost = [f"{w} {k[:40]}" for w, k in acked if k not in present[w]]
        with sqlite3.connect(home / "paperfeed.db") as raw:
            integrity_after = raw.execute("PRAGMA integrity_check").fetchone()[0]

        result = {
            "tmpfs_mb": size_mb,
            "filler_bytes": filled,
            "df_when_full": df,
            "reads_when_full": reads,
            "writes_when_full": writes,
            "messages_507": sorted(messages),
            "cli_import_exit": cli_import.returncode,
            "cli_import_message": cli_import.stderr.strip().splitlines()[-1:] if cli_import.stderr else [],
            "cli_user_create_exit": cli_user.returncode,
            "cli_user_create_message": (cli_user.stderr or cli_user.stdout).strip().splitlines()[-1:],
            "reads_after_cli": reads_after,
            "integrity_check_when_full": integrity_full,
            "vote_after_space_freed": again,
            "integrity_check_after": integrity_after,
            "acknowledged_writes": len(acked),
            "acknowledged_writes_lost": len(lost),
            "lost_examples": lost[:5],
            "seconds": round(time.monotonic() - t0, 1),
        }
        print(json.dumps(result, indent=2))
        out = REPO / "bench" / "results" / "drill_disk_full.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        bad_writes = [k for k in writes if k.split()[1] not in ("200", "201", "507")]
        ok = (
            set(reads) == {"200"}
            and set(reads_after) == {"200"}
            and not bad_writes
            and any(k.endswith(" 507") for k in writes)
            and cli_import.returncode in (0, 74)
            and cli_user.returncode in (0, 74)
            and "Traceback" not in cli_import.stderr + cli_user.stderr
            and integrity_full == "ok"
            and integrity_after == "ok"
            and again == 200
            and not lost
        )
        print("drill passed" if ok else "drill FAILED")
        if not ok:
            raise SystemExit(1)
    finally:
        if proc is not None:
            proc.kill()
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


if __name__ == "__main__":
    main()
