"""How much of a run is pipeline overhead rather than model time, on a ~20,000-token document.

Picks the L-Eval document whose length (in each model's own tokens) is closest to the target,
asks its first question with every model given, and prints a table: workers, total seconds,
seconds inside model calls, and overhead (everything else: loading, chunking, LangGraph) as a
share of the total. Results are appended to bench/results/pipeline_overhead.jsonl.

    python bench/pipeline_overhead.py                                  # embedded SmolLM2
    python bench/pipeline_overhead.py --model embedded --model "$(../shared/models/get-model qwen2.5-coder-0.5b)"
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from agents import DocQA, Document, Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "leval" / "Open-ended-tasks" / "natural_question.jsonl"
RESULTS = REPO / "bench" / "results" / "pipeline_overhead.jsonl"


def pick_document(path: Path, count_tokens, target: int) -> tuple[Document, str, int]:
    """The dataset's document closest to ``target`` tokens, with its first question."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    best = min(rows, key=lambda row: abs(count_tokens(row["input"]) - target))
    return (
        Document(source=f"{path.stem}.jsonl", text=best["input"]),
        best["instructions"][0],
        count_tokens(best["input"]),
    )


def measure(model: str, data: Path, target: int, chunk_tokens: int | None) -> dict[str, object]:
    backend = {"model_path": None if model == "embedded" else model}
    qa = DocQA(Settings(backend=backend, chunking={"chunk_tokens": chunk_tokens}))
    document, question, tokens = pick_document(data, qa.backend.count_tokens, target)
    answer = qa.ask(question, [document])
    t = answer.timings
    return {
        "model": qa.backend.name,
        "document_tokens": tokens,
        "chunk_budget": answer.chunk_budget,
        "workers": len(answer.notes),
        "total_s": round(t["total_s"], 2),
        "model_s": round(t["model_s"], 2),
        "overhead_s": round(t["overhead_s"], 3),
        "overhead_pct": round(100 * t["overhead_s"] / t["total_s"], 2),
        "prompt_tokens": answer.usage["prompt_tokens"],
        "completion_tokens": answer.usage["completion_tokens"],
        "question": question,
        "answer": answer.answer,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="'embedded' or a GGUF path; repeatable (default: embedded)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="L-Eval JSONL file to take the document from")
    parser.add_argument("--target-tokens", type=int, default=20_000)
    parser.add_argument("--chunk-tokens", type=int, help="chunk cap (default: the backend's recommendation)")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.model or ["embedded"]:
        rows.append(measure(model, args.data, args.target_tokens, args.chunk_tokens))
        with RESULTS.open("a", encoding="utf-8") as out:  # each row as it is measured: a crash keeps the rest
            out.write(json.dumps(rows[-1]) + "\n")
    columns = [
        "model",
        "document_tokens",
        "chunk_budget",
        "workers",
        "total_s",
        "model_s",
        "overhead_s",
        "overhead_pct",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
