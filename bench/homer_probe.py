"""Is a changed answer homer's loss, or the model's? The same ``full`` prompts read several ways.

``bench/leval_compression.py`` found that homer changes most answers of a small model on real
questions. This probe asks why. For the first questions of its draw (same dataset, seed and
window), the ``full`` strategy builds each prompt once per *reading*, all through the transformers
backend and the same prompt:

- ``none``: the plain model, whole prompt (the reference);
- ``homer``: HOMER at ``--cache-budget`` (2 chunks for a prompt under two budgets);
- ``homer-merge-only``: HOMER's merge with pruning off;
- ``left-half``, ``right-half``: the plain model reading the instruction, one half of the document
  text and the question: no compression, just less text.

Agreement with ``none`` is leval_compression's. If the plain model reading half the text moves away
from its answer as often as homer does, these questions measure the model's fragility, not homer's.
Answers that are only bracketed ids ("[1]", "[C3]", '[document id="c12"]', the way the prompt labels
the document's chunks) are counted apart: the small models' fallback.
Rows go to ``bench/results/homer_probe.json``, keyed by model, window and (when
``DOCQA_PROMPTS_DIR`` replaces prompts) the prompts folder, rewritten after every question so a
stopped probe keeps what it answered. A rerun with the same dataset, seed, budget and prompt files
skips the questions its entry already holds, so a stopped probe resumes and ``--limit 10`` after
``--limit 5`` answers only the five new questions; ``--fresh`` starts the entry anew.

    python bench/homer_probe.py --limit 5
    DOCQA_PROMPTS_DIR=my-prompts python bench/homer_probe.py --limit 5   # other prompts, its own entry
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leval_compression import DEFAULT_DATASET, DEFAULT_MODEL, RESULTS_DIR, agreement

from agents import DocQA
from agents.backends import create_backend
from agents.backends.transformers_backend import TransformersChatModel, load_model
from agents.compression import CacheCompressor, PromptParts
from agents.compression.base import Prefilled
from agents.compression.driver import DecoderDriver
from agents.compression.homer import Homer
from agents.compression.none import PlainCache
from agents.settings import BackendSettings, ManagerSettings, Settings
from eval.datasets import Example, select_examples
from eval.store import prompt_fingerprints, replace_file

BRACKET_ONLY = re.compile(r'(?:\[(?:[A-Za-z]?\d+|document id="[A-Za-z]?\d+")\]\s*)+')
"""One or more bare chunk ids and nothing else: "[1]", "[C3] [c4]", '[document id="c12"]'."""


@dataclass(frozen=True)
class HalfText:
    """The plain model on the instruction, one half of the document text (``side``) and the question."""

    side: str
    name: str = "half"

    def half(self, prompt: PromptParts) -> PromptParts:
        cut = math.ceil(prompt.context_len / 2)
        piece = prompt.context[:cut] if self.side == "left" else prompt.context[cut:]
        return PromptParts(prompt.prefix + piece + prompt.suffix, prompt.prefix_len, prompt.suffix_len)

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        return PlainCache().prefill(driver, self.half(prompt))

    def cache_limit(self, prompt: PromptParts) -> int:
        return len(self.half(prompt).ids)


def readings(budget: int) -> dict[str, CacheCompressor]:
    return {
        "none": PlainCache(),
        "homer": Homer(budget),
        "homer-merge-only": Homer(budget, prune=False),
        "left-half": HalfText("left"),
        "right-half": HalfText("right"),
    }


def probe_settings(args: argparse.Namespace) -> Settings:
    """``full`` through the plain transformers backend; prompts as the environment sets them."""
    backend_settings = BackendSettings(
        kind="transformers", model_path=args.model, context_window=args.window, compression="none"
    )
    return Settings(strategy="full", backend=backend_settings, manager=ManagerSettings(max_tokens=args.answer_tokens))


def results_key(model: Path, window: int, prompts_dir: Path | None) -> str:
    """Where a probe's entry goes: one per model, window and prompt set.

    >>> results_key(Path("m/q.gguf"), 4096, None)
    'q.gguf, window 4096'
    >>> results_key(Path("m/q.gguf"), 4096, Path("runs/x/prompts"))
    'q.gguf, window 4096, prompts runs/x/prompts'
    """
    key = f"{model.name}, window {window}"
    return f"{key}, prompts {prompts_dir.as_posix()}" if prompts_dir else key


def probe(args: argparse.Namespace, settings: Settings, examples: list[Example]) -> Iterator[dict[str, Any]]:
    """One record per question, as each is answered: its id, metric and each reading's answer."""
    if not examples:
        return
    backend = create_backend(settings.backend)
    loaded = load_model(args.model.resolve())
    for example in examples:
        answers = {}
        for name, compressor in readings(args.cache_budget).items():
            chat_model = TransformersChatModel(
                loaded, compressor, model_path=str(args.model), compression="none", context_window=args.window
            )
            started = time.perf_counter()
            answer = DocQA(settings, backend=replace(backend, chat_model=chat_model)).ask(
                example.question, example.sources()
            )
            answers[name] = answer.answer
            print(f"{example.id} {name}: {answer.answer[:70]!r} ({time.perf_counter() - started:.0f} s)", flush=True)
        yield {"id": example.id, "metric": example.metric, "answers": answers}


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per reading: questions, agreement with ``none`` (%), answers that are only a bracketed id."""
    rows = []
    for name in readings(1):
        agree = [
            agreement(
                {"prediction": r["answers"][name], "metric": r["metric"]},
                {"prediction": r["answers"]["none"], "metric": r["metric"]},
            )
            for r in records
        ]
        bracket_only = sum(bool(BRACKET_ONLY.fullmatch(r["answers"][name].strip())) for r in records)
        rows.append(
            {"reading": name, "n": len(records), "agrees": 100 * sum(agree) / len(agree), "bracket_only": bracket_only}
        )
    return rows


def earlier_records(entry: dict[str, Any] | None, run_info: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions an earlier run answered under the same conditions (its date aside), else none.

    >>> info = {"dataset": "q.jsonl", "seed": 0, "date": "2026-11-24"}
    >>> earlier_records({"dataset": "q.jsonl", "seed": 0, "date": "2026-11-20", "questions": [{"id": "a"}]}, info)
    [{'id': 'a'}]
    >>> earlier_records({"dataset": "q.jsonl", "seed": 1, "date": "2026-11-20", "questions": [{"id": "a"}]}, info)
    []
    """
    if not entry or any(entry.get(name) != value for name, value in run_info.items() if name != "date"):
        return []
    return list(entry["questions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--limit", type=int, default=5, help="questions (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF file (llama or qwen2)")
    parser.add_argument("--window", type=int, default=2048, help="context window: the prompt every reading gets")
    parser.add_argument("--cache-budget", type=int, default=1024, help="homer's budget")
    parser.add_argument("--answer-tokens", type=int, default=128)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "homer_probe.json")
    parser.add_argument("--fresh", action="store_true", help="answer every question again, dropping the saved ones")
    args = parser.parse_args()

    settings = probe_settings(args)
    key = results_key(args.model, args.window, settings.prompts_dir)
    run_info = {
        "dataset": args.dataset.name, "seed": args.seed, "window": args.window, "cache_budget": args.cache_budget,
        "prompts": prompt_fingerprints(settings.prompts_dir), "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    saved = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {}
    examples = select_examples([args.dataset], args.limit, args.seed)
    earlier = [] if args.fresh else earlier_records(saved.get(key), run_info)
    wanted = {e.id for e in examples}
    records = [r for r in earlier if r["id"] in wanted]
    if records:
        print(f"{len(records)} of {len(examples)} questions already answered in {args.results} ({key!r}); resuming")
    answered = {r["id"] for r in records}
    for record in probe(args, settings, [e for e in examples if e.id not in answered]):
        records.append(record)
        saved = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {}
        saved[key] = {**run_info, "rows": summarize(records), "questions": records}
        replace_file(args.results, json.dumps(saved, indent=1) + "\n")  # the probe resumes from this file
    if not records:
        print("no questions answered (--limit 0?)")
        return
    print(f"\n{'reading':<18} {'n':>3} {'agrees %':>9} {'bracket only':>13}")
    for row in summarize(records):
        print(f"{row['reading']:<18} {row['n']:>3} {row['agrees']:>9.0f} {row['bracket_only']:>13}")


if __name__ == "__main__":
    main()
