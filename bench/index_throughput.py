"""Indexing throughput, cache reuse and query latency over the whole L-Eval folder.

Measures, in one process on the same passages:
- docqa's ``PassageIndex.build`` (split by the embedder's tokenizer, embed, write the cache),
- a bare sentence-transformers ``encode`` of the same passage texts (the baseline),
- a second ``build`` that finds every document in the cache,
- query latency of ``search`` (embed the question + FAISS), and peak resident memory.
Prints a table and writes bench/results/index_throughput.json.

    python bench/index_throughput.py                # every document in ../shared/data/leval
    python bench/index_throughput.py --limit 20     # a quick run
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from sentence_transformers import SentenceTransformer

from retrieval.documents import Document
from retrieval.embeddings import default_model_path, load_embedder
from retrieval.index import PassageIndex

REPO = Path(__file__).resolve().parent.parent
LEVAL = REPO.parent / "shared" / "data" / "leval"
RESULTS = REPO / "bench" / "results" / "index_throughput.json"


def leval_documents(limit: int | None) -> tuple[list[Document], list[str]]:
    """Every distinct L-Eval document, and every question asked about them."""
    documents: dict[str, Document] = {}
    questions: list[str] = []
    for path in sorted(LEVAL.glob("*/*.jsonl")):
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            documents.setdefault(row["input"], Document(f"{path.stem}:{line_number}", row["input"]))
            questions.extend(q for q in row["instructions"] if q.strip())
    return list(documents.values())[:limit], questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="index only the first N documents")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    documents, questions = leval_documents(args.limit)
    embedder = load_embedder()
    bare = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    embedder.embed(["warm-up"])  # first calls pay one-off set-up; keep it out of both timings
    bare.encode(["warm-up"])
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        index = PassageIndex.build(documents, embedder, cache_dir=Path(cache))
        build_s = time.perf_counter() - started
        texts = [passage.text for passage in index.passages]
        started = time.perf_counter()
        bare.encode(texts, batch_size=32, normalize_embeddings=True)
        bare_s = time.perf_counter() - started
        started = time.perf_counter()
        cached = PassageIndex.build(documents, embedder, cache_dir=Path(cache))
        cached_s = time.perf_counter() - started
    latencies = []
    for question in questions[: args.queries]:
        started = time.perf_counter()
        index.search(question, 8)
        latencies.append(1000 * (time.perf_counter() - started))
    tokens = sum(passage.n_tokens for passage in index.passages)
    row = {
        "documents": len(documents),
        "passages": len(index),
        "wordpieces": tokens,
        "build_s": round(build_s, 2),
        "build_tokens_per_s": round(tokens / build_s),
        "bare_encode_s": round(bare_s, 2),
        "bare_tokens_per_s": round(tokens / bare_s),
        "build_over_bare": round(build_s / bare_s, 3),
        "cached_build_s": round(cached_s, 2),
        "cached_embedded": cached.embedded_count,
        "query_ms_mean": round(statistics.mean(latencies), 1),
        "query_ms_p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    print("| measure | value |\n|---|---|")
    for key, value in row.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
