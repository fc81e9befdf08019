"""Load a paperfeed home's papers and vectors into a PostgreSQL with pgvector, for timing search
there (``bench_search.py --database-url``) against the same home's HNSW file.

    python bench/bench_pgvector.py --from-home /tmp/bench1m --to postgresql://paperfeed@127.0.0.1:55433/bench1m
    python bench/bench_search.py --home /tmp/bench1m --database-url postgresql://paperfeed@127.0.0.1:55433/bench1m

The target database is migrated (migration 0019 sets pgvector up), then ``papers`` and
``embeddings`` are copied with COPY, the ``hvec`` column written in the same rows, and the HNSW
index built by the product's own ``store.pgvector.create_index`` (the settings of
``paperfeed db enable-pgvector``), with ``maintenance_work_mem`` large enough for the graph.
Search then reads the home's keyword index and PostgreSQL for everything else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg.types.json import Json
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paperfeed.config import Settings  # noqa: E402
from paperfeed.store import pgvector  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402
from paperfeed.store.schema import embeddings, papers  # noqa: E402

BATCH = 20_000


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def copy_papers(src: Database, dst_url: str) -> int:
    cols = [c.name for c in papers.columns]
    json_cols = {c.name for c in papers.columns if c.type.__class__.__name__ == "JSON"}
    n = 0
    with psycopg.connect(_libpq(dst_url)) as pg, pg.cursor() as cur, src.read() as conn:
        with cur.copy(f"COPY papers ({', '.join(cols)}) FROM STDIN") as cp:
            for row in conn.execution_options(stream_results=True).execute(select(papers)):
                m = row._mapping
                cp.write_row([Json(m[c]) if c in json_cols and m[c] is not None else m[c] for c in cols])
                n += 1
                if n % 100_000 == 0:
                    print(f"  papers {n:,}", flush=True)
    return n


def copy_vectors(src: Database, dst_url: str) -> int:
    cols = ["id", "paper_id", "model", "content_hash", "vector", "created_at", pgvector.COLUMN]
    n = 0
    with psycopg.connect(_libpq(dst_url)) as pg, pg.cursor() as cur, src.read() as conn:
        with cur.copy(f"COPY embeddings ({', '.join(cols)}) FROM STDIN") as cp:
            result = conn.execution_options(stream_results=True).execute(select(embeddings))
            for row in result:
                m = row._mapping
                vec = np.frombuffer(m["vector"], dtype=np.float32)
                cp.write_row([m[c] for c in cols[:-1]] + [pgvector.literal(vec)])
                n += 1
                if n % 100_000 == 0:
                    print(f"  vectors {n:,}", flush=True)
        cur.execute("SELECT setval(pg_get_serial_sequence('embeddings', 'id'), (SELECT max(id) FROM embeddings))")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-home", type=Path, required=True)
    ap.add_argument("--to", required=True, help="an empty PostgreSQL database (with pgvector on the server)")
    ap.add_argument("--maintenance-work-mem", default="3GB")
    ap.add_argument("--index-only", action="store_true", help="only (re)build the HNSW index")
    args = ap.parse_args()
    src = Database(Settings(home=args.from_home, secret_key="bench").db_url)
    dst = Database(args.to)
    dst.migrate()
    st = pgvector.state(dst)
    assert st.column, f"no pgvector here: {st.describe()}"
    if not args.index_only:
        with dst.write() as conn:  # built after the copy: one bulk build instead of 1M inserts
            conn.execute(text(f"DROP INDEX IF EXISTS {pgvector.HNSW_INDEX}"))
        t0 = time.perf_counter()
        print(f"papers copied: {copy_papers(src, args.to):,} in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        print(f"vectors copied: {copy_vectors(src, args.to):,} in {time.perf_counter() - t0:.0f} s", flush=True)
        with dst.write() as conn:
            conn.execute(text("ANALYZE papers"))
            conn.execute(text("ANALYZE embeddings"))
    t0 = time.perf_counter()
    with dst.write() as conn:
        built = pgvector.create_index(conn, maintenance_work_mem=args.maintenance_work_mem)
    print(f"HNSW index {'built' if built else 'already there'} in {time.perf_counter() - t0:.0f} s", flush=True)
    print(pgvector.state(dst).describe())


if __name__ == "__main__":
    main()
