"""Benchmark the sentence encoder: our int8 and fp32 ONNX paths against sentence-transformers fp32.

Run it by hand (see bench/README.md, section "Encoder"); it prints throughput (abstracts/s),
ratios to the baseline, cosine of each path to the baseline (mean / min over the sample), query
latency and model build times. The baseline needs torch + sentence-transformers, which live in
a separate venv (``.venv-bench``) so the product never depends on them; without them the
baseline is skipped and the cosines are taken against our fp32 path instead.

    .venv-bench/bin/python bench/bench_encoder.py --n 512
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from paperfeed.config import Settings
from paperfeed.search import encoder as enc_mod
from paperfeed.search.encoder import Encoder, paper_text

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ABSTRACTS = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
QUERIES = SHARED / "paper_search_queries" / "computer_science_ai_search_queries.json"


def load_abstracts(path: Path, n: int) -> list[str]:
    """``n`` papers spread over the whole file (every k-th line), as ``paper_text(title, abstract)``."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    step = max(1, len(lines) // n)
    out = []
    for line in lines[::step][:n]:
        rec = json.loads(line)
        out.append(paper_text(rec["title"], rec["abstract"]))
    return out


def load_queries(path: Path) -> list[str]:
    if not path.exists():
        return ["protein folding", "graph neural networks for molecules", "efficient long-context attention"]
    return [v["search_query"] for v in json.loads(path.read_text()).values()]


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """``(result, wall seconds, CPU seconds of this process)``."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos = (a * b).sum(1)
    return float(cos.mean()), float(cos.min())


def baseline_encoder(threads: int, max_length: int, batch_size: int) -> Callable[[Sequence[str]], np.ndarray] | None:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    torch.set_num_threads(threads)
    model = SentenceTransformer(str(enc_mod.model_dir()), device="cpu")
    model.max_seq_length = max_length

    def encode(texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            return model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)

    return encode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="abstracts to embed")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per path, interleaved; best and median shown")
    ap.add_argument("--data", type=Path, default=ABSTRACTS)
    ap.add_argument("--no-baseline", action="store_true", help="skip sentence-transformers even if importable")
    ap.add_argument("--cores", type=int, default=0, help="pin to this many cores (0: all allowed)")
    args = ap.parse_args(argv)
    if args.cores:
        # Pinning is how a deployment limits the encoder too: it reads its thread count from affinity.
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])

    if not args.data.exists():
        print(f"no abstracts at {args.data} (needs ../shared/data)", file=sys.stderr)
        return 2
    texts = load_abstracts(args.data, args.n)
    threads = enc_mod.available_cores()
    print(f"{len(texts)} abstracts from {args.data.name}; batch {args.batch_size}, max_length {args.max_length}")
    print(f"cores {threads}, cpu variant choice: {enc_mod.choose_variant('auto')}, load avg {os.getloadavg()}")

    paths: dict[str, Callable[[Sequence[str]], np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        for variant in ("int8", "fp32"):
            t = time.perf_counter()
            Encoder(settings, variant)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            enc = Encoder(settings, variant)
            warm = time.perf_counter() - t
            print(f"{variant}: build + load {cold:.1f} s (first use), load {warm:.2f} s (cached)")
            paths[f"onnx-{variant}"] = partial(enc.encode, batch_size=args.batch_size, max_length=args.max_length)

            queries = load_queries(QUERIES)
            for q in queries[:5]:
                enc.encode_query(q)
            lat = []
            for q in queries:
                t = time.perf_counter()
                enc.encode_query(q)
                lat.append((time.perf_counter() - t) * 1000)
            lat.sort()
            print(
                f"{variant}: encode_query over {len(lat)} queries: p50 {lat[len(lat) // 2]:.1f} ms, "
                f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms"
            )

        base = None if args.no_baseline else baseline_encoder(threads, args.max_length, args.batch_size)
        if base is not None:
            paths["sentence-transformers-fp32"] = base
        else:
            print("sentence-transformers/torch not importable: no baseline (use .venv-bench)")

        for fn in paths.values():  # warm-up: first-run allocations and lazy init are not throughput
            fn(texts[:64])
        times: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        outs: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, fn in paths.items():
                outs[name], wall, used = timed(partial(fn, texts))
                times[name].append(wall)
                cpu[name].append(used)

    ref_name = "sentence-transformers-fp32" if base is not None else "onnx-fp32"
    ref_best = len(texts) / min(times[ref_name])
    ref_med = len(texts) / statistics.median(times[ref_name])
    print()
    ref_cpu = len(texts) / min(cpu[ref_name])
    # Wall throughput is what users see; texts per CPU-second is far less sensitive to other load
    # on the machine (exact at --cores 1; with more threads, spin-waiting inflates CPU time).
    print(
        f"{'path':28s} {'best/s':>8s} {'median/s':>9s} {'x best':>7s} {'x med':>6s} {'/cpu-s':>7s} {'x cpu':>6s}"
        f"  cos mean / min vs {ref_name}"
    )
    for name in paths:
        best = len(texts) / min(times[name])
        med = len(texts) / statistics.median(times[name])
        per_cpu = len(texts) / min(cpu[name])
        mean, low = cosines(outs[name], outs[ref_name])
        print(
            f"{name:28s} {best:8.1f} {med:9.1f} {best / ref_best:7.2f} {med / ref_med:6.2f} {per_cpu:7.1f}"
            f" {per_cpu / ref_cpu:6.2f}  {mean:.5f} / {low:.5f}"
        )
    print(f"load avg after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
