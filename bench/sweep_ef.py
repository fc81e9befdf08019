"""What the HNSW search's ``ef`` (``expansion_search``) buys: recall against exact search and the
hybrid page's top results, next to the search's CPU, on a real home.

    python bench/sweep_ef.py --home /tmp/fb80k                   # 400 queries, ef 128..1024
    python bench/sweep_ef.py --home /tmp/fb80k --queries 100 --ef 256 768

For each ``ef``: the thread CPU of one ``Index.search`` (k 108, one thread, as the product asks) with
real query vectors (the product encoder on ``paper_search_queries`` and LitSearch, as
``bench_search_cpu.py`` uses), recall@10 and @100 against exact search over every vector of the
index, and how many hybrid searches (``SearchService``, the product's fusion) return the same top 10
and top 20 as at the largest ``ef`` of the sweep. The setting changes nothing on disk: the loaded
index is searched at each ``ef`` in turn.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from bench_search_cpu import page_queries  # sibling modules: python puts bench/ on sys.path
from bench_vectors import exact_topk, recall_at
from paperfeed.config import Settings
from paperfeed.search.hybrid import SearchRequest, SearchService
from paperfeed.store.db import open_database

K = 108  # what VectorIndex._search_ann asks for a page's 100 candidates (k + 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="a home with an HNSW vector index")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--ef", type=int, nargs="+", default=[128, 256, 384, 512, 768, 1024])
    args = ap.parse_args()
    logging.disable(logging.INFO)

    settings = Settings(home=args.home, secret_key="bench", pipeline=False)
    service = SearchService(settings, open_database(settings))
    warm, measured = page_queries()
    queries = (measured + warm)[: args.queries]
    service.search(SearchRequest(q=queries[0]))  # loads the encoder and the vectors
    vectors = service.vectors
    if vectors is None or vectors._snap.ann is None:
        raise SystemExit(f"{args.home} has no HNSW index (a home below the HNSW threshold searches exactly)")
    ann = vectors._snap.ann
    keys = np.asarray(vectors._snap.ann_keys)
    encoder = service._encoder
    qvecs = np.stack([encoder.encode_query(q) for q in queries]).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)

    matrix = np.asarray(ann.get(keys, dtype=np.float32), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    truth = keys[exact_topk(qvecs, matrix, 100)]

    efs = sorted(set(args.ef))
    pages: dict[int, dict[str, list[str]]] = {}
    print(f"{len(keys):,} vectors, {len(queries)} queries, k {K}")
    print("ef      search CPU   recall@10  recall@100")
    for ef in efs:
        ann.expansion_search = ef
        for q in qvecs[:20]:
            ann.search(q, K, threads=1)
        t0 = time.thread_time()
        found = [np.asarray(ann.search(q, K, threads=1).keys) for q in qvecs]
        cpu = (time.thread_time() - t0) / len(qvecs) * 1000
        r10, r100 = recall_at(found, truth, 10), recall_at(found, truth, 100)
        print(f"{ef:<7} {cpu:7.2f} ms   {r10:9.4f}  {r100:10.4f}")
        pages[ef] = {q: [h.paper["id"] for h in service.search(SearchRequest(q=q)).hits] for q in queries}
    ref = efs[-1]
    print(f"\nhybrid pages against ef {ref}:")
    for ef in efs[:-1]:
        same10 = sum(pages[ef][q][:10] == pages[ref][q][:10] for q in queries)
        same20 = sum(pages[ef][q][:20] == pages[ref][q][:20] for q in queries)
        print(f"ef {ef:<6} top 10 identical {same10}/{len(queries)}   top 20 identical {same20}/{len(queries)}")


if __name__ == "__main__":
    main()
