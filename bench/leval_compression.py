"""Does a compressed KV cache change the answers? ``full`` on real L-Eval questions, compressed vs not.

Each configuration (llama.cpp KV types, transformers ``--compression`` methods) answers the same
questions with the ``full`` strategy through the batch evaluator, into its own run folder under
``bench/results/leval_compression/`` — so an interrupted benchmark resumes where it stopped and a
larger ``--limit`` only runs the new questions. Every configuration runs in a fresh subprocess, so
its peak memory is its own.

Besides each configuration's score, the table gives its agreement with the uncompressed run of the
same engine (``llamacpp:f16``, without flash attention, for the KV types and ``llamacpp:f16-flash``;
``transformers:none`` for the methods): the share of questions where both pick the same option, or
neither picks one and both say the same (choice tasks), or the token F1 of its answer against the
uncompressed answer (open tasks). A small model scores near chance on these tasks, so its score says
little about what compression costs; agreement says how often the compressed cache changes the
answer the same model would otherwise give, and so which score it would get. Rows are written to
``bench/results/leval_compression.json`` (``--results`` moves both).

    python bench/leval_compression.py                                   # 20 quality questions, every configuration
    python bench/leval_compression.py --configs llamacpp:f16 llamacpp:q8_0 --limit 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kv_compression import llamacpp_variant

from agents.settings import BackendSettings, ManagerSettings, Settings
from eval.metrics import normalize_answer, option_letters, token_f1
from eval.store import read_records, replace_file

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
DEFAULT_MODEL = Path.home() / ".cache" / "gguf-models" / "qwen2.5-coder-0.5b.gguf"
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "leval" / "Closed-ended-tasks" / "quality.jsonl"
REFERENCES = {"llamacpp": "llamacpp:f16", "transformers": "transformers:none"}
"""Each engine's uncompressed configuration, which its compressed ones are compared with."""
CONFIGS = (
    "llamacpp:f16",
    "llamacpp:f16-flash",
    "llamacpp:q8_0",
    "llamacpp:q4_0",
    "transformers:none",
    "transformers:fp8",
    "transformers:quantized",
    "transformers:snapkv",
    "transformers:homer",
)


def config_settings(config: str, args: argparse.Namespace) -> Settings:
    """The settings one configuration answers with: ``full``, the given window, model and answer length."""
    kind, variant = config.split(":")
    backend: dict[str, Any] = {"kind": kind, "model_path": args.model, "context_window": args.window}
    if kind == "llamacpp":
        backend["kv_type"], backend["flash_attn"] = llamacpp_variant(config)
    else:
        backend |= {"compression": variant, "cache_budget": args.cache_budget}
    return Settings(
        strategy="full",
        backend=BackendSettings(**backend),
        manager=ManagerSettings(max_tokens=args.answer_tokens),
    )


def run_folder(results_dir: Path, config: str) -> Path:
    return results_dir / "leval_compression" / config.replace(":", "-")


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Inside the subprocess: answer the questions not yet in the folder; report what ran and the peak memory."""
    from eval.runner import EvalProgress, run_eval

    def show(progress: EvalProgress) -> None:
        if progress.record is not None:
            record = progress.record
            print(f"{args.worker} {progress.done}/{progress.total} {record['example_id']}: score {record['score']}, "
                  f"{record['seconds']} s", file=sys.stderr, flush=True)  # fmt: skip

    summary = run_eval(
        [args.dataset],
        ["full"],
        args.limit,
        args.seed,
        config_settings(args.worker, args),
        run_folder(args.results, args.worker),
        on_progress=show,
        report=False,  # the table below is the report; one-strategy plots say nothing
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ran": summary.ran, "errors": summary.errors, "peak_mib": round(peak, 1)}


def run_config(config: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one configuration in a fresh subprocess; a line per answer goes to this terminal (stderr)."""
    command = [
        sys.executable, __file__, "--worker", config, "--dataset", str(args.dataset), "--limit", str(args.limit),
        "--seed", str(args.seed), "--model", str(args.model), "--window", str(args.window),
        "--cache-budget", str(args.cache_budget), "--answer-tokens", str(args.answer_tokens),
        "--results", str(args.results),
    ]  # fmt: skip
    # Passive OpenMP threads: on a shared machine, spinning torch threads slow everything down.
    env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode} (its messages are above)"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def agreement(record: dict[str, Any], reference: dict[str, Any]) -> float:
    """Choice tasks: 1.0 when both pick the same option, or neither picks one and both say the same
    (normalised). Open tasks: the token F1 between the two answers."""
    mine, theirs = record["prediction"], reference["prediction"]
    if record["metric"] in ("choice", "multi_choice"):
        multiple = record["metric"] == "multi_choice"
        picked = option_letters(mine, multiple=multiple)
        if picked or option_letters(theirs, multiple=multiple):
            return float(picked == option_letters(theirs, multiple=multiple))
        return float(normalize_answer(mine) == normalize_answer(theirs))
    return token_f1(mine, theirs)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def reference_of(config: str) -> str:
    return REFERENCES[config.split(":")[0]]


def answered_records(results: Path, config: str) -> list[dict[str, Any]]:
    return [r for r in read_records(run_folder(results, config)) if not r["error"]]


def summarize(results: Path, config: str) -> dict[str, Any]:
    """One table row from a configuration's run folder, compared question by question with its engine's reference."""
    records = read_records(run_folder(results, config))
    reference = {r["example_id"]: r for r in answered_records(results, reference_of(config))}
    answered = [r for r in records if not r["error"]]
    paired = [(r, reference[r["example_id"]]) for r in answered if r["example_id"] in reference]
    return {
        "config": config,
        "reference": reference_of(config),
        "n": len(answered),
        "errors": len(records) - len(answered),
        "score": _mean([100 * r["score"] for r in answered]),
        "agreement": _mean([100 * agreement(r, ref) for r, ref in paired]),
        "paired": len(paired),
        "prompt_tokens": _mean([r["prompt_tokens"] for r in answered]),
        "seconds": _mean([r["seconds"] for r in answered]),
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """Seconds also as a ratio to the same engine's uncompressed row, where that ran."""
    seconds = {row["config"]: row["seconds"] for row in rows}
    print(f"{'config':22} {'n':>3} {'err':>3} {'score':>6} {'agree':>6} {'prompt tok':>10} {'seconds':>8} ", end="")
    print(f"{'x ref':>6} {'peak MiB':>9}")
    for row in rows:
        base = seconds.get(row["reference"])
        ratio = row["seconds"] / base if base and row["seconds"] else None
        print(
            f"{row['config']:22} {row['n']:>3} {row['errors']:>3} {_fmt(row['score']):>6} "
            f"{_fmt(row['agreement']):>6} {_fmt(row['prompt_tokens'], 0):>10} {_fmt(row['seconds']):>8} "
            f"{_fmt(ratio, 2):>6} {_fmt(row.get('peak_mib')):>9}"
        )


def save(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Rewrite the results file; a configuration that ran nothing new keeps its earlier peak memory."""
    path = args.results / "leval_compression.json"
    old = {r["config"]: r for r in json.loads(path.read_text(encoding="utf-8"))["rows"]} if path.is_file() else {}
    stamp = {
        "model": args.model.name, "dataset": args.dataset.name, "seed": args.seed, "window": args.window,
        "cache_budget": args.cache_budget, "answer_tokens": args.answer_tokens, "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
    }  # fmt: skip
    for row in rows:
        if row.get("peak_mib") is None and row["config"] in old:
            row["peak_mib"] = old[row["config"]].get("peak_mib")
    merged = old | {r["config"]: r | stamp for r in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, json.dumps({"rows": list(merged.values())}, indent=1) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="an L-Eval (or any docqa) JSONL file")
    parser.add_argument("--limit", type=int, default=20, help="questions (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling the questions")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF file (llama or qwen2)")
    parser.add_argument("--window", type=int, default=2048, help="context window of every configuration")
    parser.add_argument("--cache-budget", type=int, default=1024, help="positions kept by snapkv and homer")
    parser.add_argument("--answer-tokens", type=int, default=128)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the run folders and the JSON go")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    # Each engine's reference first: the others are compared with it.
    configs = sorted(args.configs, key=lambda c: (CONFIGS.index(reference_of(c)), c != reference_of(c)))
    rows = []
    for config in configs:
        outcome = run_config(config, args)
        if "error" in outcome:
            print(f"{config}: {outcome['error']}", file=sys.stderr)
        peak = outcome.get("peak_mib") if outcome.get("ran") else None  # a run that loaded nothing new measured nothing
        rows.append(summarize(args.results, config) | {"peak_mib": peak})
        save(rows[-1:], args)  # config by config: an interrupted benchmark keeps what it measured
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
