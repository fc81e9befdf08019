"""Give every paper of a home a vector without encoding them all: real vectors copied from another
home where the paper's text is the same, the rest synthesised from those real ones.

    python bench/fill_vectors.py --home /tmp/fusion80k --from-home /tmp/fusion10k
    paperfeed index   # with PAPERFEED_HOME=/tmp/fusion80k: builds the HNSW index over all of them

For latency benchmarks only (``bench_search.py`` at 80k when the 2-core machine cannot spare the time to
embed 80k abstracts): search cost depends on the number and spread of vectors, not on which paper each
belongs to. A copied vector is only used when the donor paper's ``content_hash`` equals the recipient's.
Synthetic vectors follow ``bench_vectors.Synth``: a real vector plus Gaussian noise shaped by the real
vectors' covariance, the noise level bisected so the median nearest-neighbour cosine matches the real set's.
Their write times are spread at 50/s before the real ones (as ``bench_search.spread_timestamps`` does).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vectors import Synth, calibrate, nn_cos  # noqa: E402
from paperfeed.config import Settings  # noqa: E402
from paperfeed.store import embeddings as emb_store  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--from-home", type=Path, required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    donor = Database(Settings(home=args.from_home, secret_key="bench").db_url)
    db = Database(Settings(home=args.home, secret_key="bench").db_url)
    model = emb_store.latest_model(donor)
    assert model, "the donor home has no vectors"
    real = emb_store.load_vectors(donor, model)
    with donor.read() as conn:
        donor_hash: dict[str, str] = dict(conn.exec_driver_sql("select paper_id, content_hash from embeddings").all())
    with db.read() as conn:
        ours: dict[str, str] = dict(conn.exec_driver_sql("select id, content_hash from papers").all())
        have = {r[0] for r in conn.exec_driver_sql("select paper_id from embeddings")}
    copy = [i for i, pid in enumerate(real.paper_ids) if ours.get(pid) == donor_hash.get(pid) and pid not in have]
    for i in range(0, len(copy), 5_000):
        part = copy[i : i + 5_000]
        items = [(real.paper_ids[j], ours[real.paper_ids[j]]) for j in part]
        emb_store.upsert_vectors(db, model, items, real.matrix[part])
    have |= {real.paper_ids[j] for j in copy}
    missing = sorted(pid for pid in ours if pid not in have)
    print(f"copied {len(copy):,} real vectors; synthesising {len(missing):,}", flush=True)
    if missing:
        synth = Synth(real.matrix, len(missing))
        sample = np.random.default_rng(0).choice(len(real.matrix), min(300, len(real.matrix)), replace=False)
        sigma = calibrate(synth, float(np.median(nn_cos(real.matrix[sample], real.matrix, sample))))
        for i in range(0, len(missing), 20_000):
            ids = missing[i : i + 20_000]
            emb_store.upsert_vectors(db, model, [(pid, ours[pid]) for pid in ids], synth.rows(sigma, i, i + len(ids)))
        print(f"sigma {sigma:.3f}", flush=True)
    db.dispose()
    with sqlite3.connect(args.home / "paperfeed.db") as c:
        keys = [r[0] for r in c.execute("select id from embeddings order by id")]
        end = datetime.utcnow() - timedelta(minutes=5)
        c.executemany(
            "update embeddings set created_at = ? where id = ?",
            ((str(end - (len(keys) - i) * timedelta(seconds=0.02)), k) for i, k in enumerate(keys)),
        )
    print(f"done in {time.perf_counter() - t0:.0f} s; now run `paperfeed index` on {args.home}")


if __name__ == "__main__":
    main()
