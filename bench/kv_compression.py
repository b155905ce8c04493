"""Compressed KV caches measured honestly: memory, speed and passkey accuracy per cache type and method.

For each configuration (every llama.cpp KV type, every transformers ``--compression`` method) and
each prompt length, a fresh subprocess loads the model and runs passkey trials (a 5-digit key hidden
at 10/50/90% depth of filler text, one per depth and seed). It reports peak process memory (its own),
the KV-cache bytes held for the prompt, prompt and decode tokens/s, and how many keys came back. The
table is printed and the rows are merged into ``bench/results/kv_compression.json`` (``--results`` names
another folder).

Every trial is appended to a log in ``bench/results/kv_trials/`` as soon as it ends, and a rerun of the
same command skips the trials its log already holds (same model and thread count), so a long row
survives a crash, a ``--timeout`` or the end of a working day, and ``--seeds 5`` after ``--seeds 1``
runs only the new seeds. ``--fresh`` starts a row's log anew.

    python bench/kv_compression.py                                  # the full grid (hours on a laptop CPU)
    python bench/kv_compression.py --lengths 2048 4096 --seeds 1    # what a busy 2-core machine can do

The default model is Qwen2.5-Coder-0.5B-Instruct (``../shared/models/get-model qwen2.5-coder-0.5b``);
SmolLM2-135M cannot find a passkey past a few hundred tokens even uncompressed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agents.backends import Backend, create_backend
from agents.settings import BackendSettings
from eval.store import ResultsWriter, replace_file

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
DEFAULT_MODEL = Path.home() / ".cache" / "gguf-models" / "qwen2.5-coder-0.5b.gguf"
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
BUDGETED = ("transformers:snapkv", "transformers:homer")
"""The methods whose rows depend on ``--cache-budget``."""
LLAMACPP_BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
"""ggml block sizes: q8_0 stores 32 int8 values and an f16 scale in 34 bytes, q4_0 32 nibbles in 18."""
INTRO = "There is an important piece of information hidden inside a lot of irrelevant text. Find it and remember it."
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key. "
QUESTION = "What is the pass key? Answer with the number only."
PROMPT_MARGIN = 128
"""Tokens kept free below the target length for the chat template and the answer."""


def passkey_prompt(tokens: int, depth: float, seed: int, count_tokens: Any) -> tuple[str, str]:
    """A user message of about ``tokens`` tokens with a key at ``depth`` of the filler, and the key."""
    key = str(random.Random(f"{seed}:{depth}").randint(10000, 99999))
    per_filler = count_tokens(FILLER * 20) / 20
    fixed = count_tokens(INTRO + QUESTION + NEEDLE.format(key=key)) + PROMPT_MARGIN
    repeats = max(1, int((tokens - fixed) / per_filler))
    before = round(repeats * depth)
    haystack = FILLER * before + NEEDLE.format(key=key) + FILLER * (repeats - before)
    return f'{INTRO}\n<document id="p1">\n{haystack}\n</document>\n{QUESTION}', key


def llamacpp_variant(config: str) -> tuple[str, bool]:
    """KV type and flash attention of a llama.cpp configuration.

    ``f16`` runs without flash attention (docqa's default until 25 November 2026),
    ``f16-flash`` with it, to tell the cache type's effect from flash attention's; quantized types
    always run with it (llama.cpp requires it).

    >>> llamacpp_variant("llamacpp:f16"), llamacpp_variant("llamacpp:f16-flash"), llamacpp_variant("llamacpp:q8_0")
    (('f16', False), ('f16', True), ('q8_0', True))
    """
    kv_type, _, flash = config.split(":")[1].partition("-")
    return kv_type, bool(flash) or kv_type != "f16"


def build_backend(config: str, model: Path, length: int, budget: int, threads: int) -> Backend:
    kind, variant = config.split(":")
    common = {"model_path": model, "context_window": length + PROMPT_MARGIN, "n_threads": threads}
    if kind == "llamacpp":
        kv_type, flash_attn = llamacpp_variant(config)
        settings = BackendSettings(kind="llamacpp", kv_type=kv_type, flash_attn=flash_attn, **common)  # type: ignore[arg-type]
        return create_backend(settings)
    return create_backend(
        BackendSettings(kind="transformers", compression=variant, cache_budget=budget, **common)  # type: ignore[arg-type]
    )


def llamacpp_trial(backend: Backend, prompt: str, kv_type: str) -> dict[str, Any]:
    """One call through llama.cpp, timed by its own counters (prompt and decode separately)."""
    import llama_cpp

    llama = backend.chat_model._model.llama  # type: ignore[attr-defined]
    llama.reset()  # no prompt-prefix reuse between trials
    llama_cpp.llama_perf_context_reset(llama._ctx.ctx)
    reply = backend.chat_model.invoke([("user", prompt)], max_tokens=12)
    perf = llama_cpp.llama_perf_context(llama._ctx.ctx)
    meta = llama.metadata
    arch = meta["general.architecture"]
    head_dim = int(meta[f"{arch}.embedding_length"]) // int(meta[f"{arch}.attention.head_count"])
    values_per_token = 2 * int(meta[f"{arch}.block_count"]) * int(meta[f"{arch}.attention.head_count_kv"]) * head_dim
    prompt_tokens = reply.usage_metadata["input_tokens"]  # type: ignore[index]
    return {
        "answer": str(reply.content),
        "prompt_tokens": prompt_tokens,
        "cache_bytes": int(values_per_token * prompt_tokens * LLAMACPP_BYTES_PER_VALUE[kv_type]),
        "prefill_s": perf.t_p_eval_ms / 1000,
        "decode_s": perf.t_eval_ms / 1000,
        "generated": max(perf.n_eval, 1),
    }


def transformers_trial(backend: Backend, prompt: str) -> dict[str, Any]:
    """One call through the transformers backend, timed and sized by the backend itself."""
    reply = backend.chat_model.invoke([("user", prompt)], max_tokens=12)
    stats = backend.chat_model.last_stats  # type: ignore[attr-defined]
    return {
        "answer": str(reply.content),
        "prompt_tokens": stats.prompt_tokens,
        "cache_bytes": stats.cache_bytes,
        "cached_positions": stats.cached_positions,
        "prefill_s": stats.prefill_seconds,
        "decode_s": stats.decode_seconds,
        "generated": max(stats.generated_tokens, 1),
    }


def trial_log(results: Path, config: str, length: int, budget: int) -> Path:
    """Where one row's trials are kept: one file per configuration, length and (where used) budget."""
    name = config.replace(":", "-") + f"-{length}"
    if config in BUDGETED:
        name += f"-budget{budget}"
    return results / "kv_trials" / f"{name}.jsonl"


def logged_trials(log: Path, model: str, threads: int) -> dict[tuple[int, float], dict[str, Any]]:
    """The trials a log holds for this model and thread count, by (seed, depth); later lines win."""
    if not log.is_file():
        return {}
    trials = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            trial = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if trial.get("model") == model and trial.get("threads") == threads:
            trials[(trial["seed"], trial["depth"])] = trial
    return trials


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Inside the subprocess: run the depths and seeds the row's log lacks, then summarise them all."""
    log = trial_log(args.results, args.worker, args.length, args.cache_budget)
    done = logged_trials(log, args.model.name, args.threads)
    wanted = [(seed, depth) for seed in range(args.seeds) for depth in args.depths]
    missing = [pair for pair in wanted if pair not in done]
    if missing:
        backend = build_backend(args.worker, args.model, args.length, args.cache_budget, args.threads)
        loaded_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        stamp = {"model": args.model.name, "threads": args.threads, "run": time.strftime("%Y-%m-%dT%H:%M:%S")}
        log.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(ResultsWriter(log)) as writer:  # drops a line a kill cut short, then appends
            for seed, depth in missing:
                prompt, key = passkey_prompt(args.length, depth, seed, backend.count_tokens)
                if args.worker.startswith("llamacpp"):
                    trial = llamacpp_trial(backend, prompt, llamacpp_variant(args.worker)[0])
                else:
                    trial = transformers_trial(backend, prompt)
                peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                trial |= stamp | {"depth": depth, "seed": seed, "key": key, "found": key in trial["answer"]}
                trial |= {"loaded_mib": loaded_mib, "peak_mib": peak_mib}
                done[(seed, depth)] = trial
                writer.append(trial)
                print(f"trial seed {seed} depth {depth}: found={trial['found']}", file=sys.stderr, flush=True)
    return summarize_trials(args.worker, args.length, [done[pair] for pair in wanted])


def summarize_trials(config: str, length: int, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from its trials; memory is the largest any of their processes reached."""
    prefill_s = sum(t["prefill_s"] for t in trials)
    decode_s = sum(t["decode_s"] for t in trials)
    return {
        "config": config,
        "length": length,
        "prompt_tokens": round(sum(t["prompt_tokens"] for t in trials) / len(trials)),
        "peak_mib": max(t["peak_mib"] for t in trials),
        "loaded_mib": max(t["loaded_mib"] for t in trials),
        "cache_mib": round(max(t["cache_bytes"] for t in trials) / 2**20, 2),
        "cached_positions": max(t.get("cached_positions", t["prompt_tokens"]) for t in trials),
        "prompt_tok_s": round(sum(t["prompt_tokens"] for t in trials) / prefill_s, 1),
        "decode_tok_s": round(sum(t["generated"] for t in trials) / decode_s, 2),
        "generated_tokens": sum(t["generated"] for t in trials),  # what decode_tok_s rests on (1 per empty answer)
        "found": sum(t["found"] for t in trials),
        "trials": len(trials),
        "runs": len({t["run"] for t in trials}),  # processes the trials came from: >1 after a resume
        "answers": [{k: t[k] for k in ("depth", "seed", "key", "answer", "found")} for t in trials],
    }


def run_config(config: str, length: int, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration at one length in a fresh subprocess, so its peak memory is its own."""
    command = [
        sys.executable, __file__, "--worker", config, "--length", str(length), "--model", str(args.model),
        "--seeds", str(args.seeds), "--cache-budget", str(args.cache_budget), "--threads", str(args.threads),
        "--depths", *map(str, args.depths), "--results", str(args.results),
    ]  # fmt: skip
    log = trial_log(args.results, config, length, args.cache_budget)
    if args.fresh:
        log.unlink(missing_ok=True)
    # Passive OpenMP threads: on a shared machine, spinning torch threads slow everything down.
    env = os.environ | {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        worker.kill()

    timer = threading.Timer(args.timeout, stop) if args.timeout else None
    if timer:
        timer.start()
    messages = []
    for line in worker.stderr:  # type: ignore[union-attr]
        if line.startswith("trial "):
            print(f"  {config} {length}: {line.rstrip()}", flush=True)  # progress through a long row
        elif line.strip() and "it/s]" not in line:
            messages.append(line.rstrip())
    output = worker.stdout.read()  # type: ignore[union-attr]
    worker.wait()
    if timer:
        timer.cancel()
    if stopped.is_set():
        return {"config": config, "length": length, "error": [f"stopped after {args.timeout:.0f} s", kept(log, args)]}
    if worker.returncode != 0:
        return {"config": config, "length": length, "error": [*messages[-1:], kept(log, args)]}
    return dict(json.loads(output.strip().splitlines()[-1]))


def kept(log: Path, args: argparse.Namespace) -> str:
    trials = len(logged_trials(log, args.model.name, args.threads))
    shown = log.relative_to(REPO) if log.is_relative_to(REPO) else log
    return f"{trials} trials kept in {shown}; the same command resumes from them"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'config':24} {'tokens':>6} {'peak MiB':>9} {'cache MiB':>9} {'kept':>6} {'prompt t/s':>10} "
    print(header + f"{'decode t/s':>10} {'passkey':>8}")
    for row in rows:
        if "error" in row:
            print(f"{row['config']:24} {row['length']:>6} error: {row['error']}")
            continue
        print(
            f"{row['config']:24} {row['prompt_tokens']:>6} {row['peak_mib']:>9} {row['cache_mib']:>9} "
            f"{row['cached_positions']:>6} {row['prompt_tok_s']:>10} {row['decode_tok_s']:>10} "
            f"{row['found']:>3}/{row['trials']:<4}"
        )


def row_key(row: dict[str, Any]) -> tuple[str, int, int | None]:
    """Rows are one per configuration and length, and per cache budget where the method has one."""
    return row["config"], row["length"], row["cache_budget"] if row["config"] in BUDGETED else None


def save(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Merge into the results file: a new row replaces the old one for the same configuration, length and budget."""
    rows = [r for r in rows if "error" not in r]  # a failed rerun must not replace a measured row
    results = args.results / "kv_compression.json"
    old = json.loads(results.read_text(encoding="utf-8"))["rows"] if results.is_file() else []
    stamp = {
        "model": args.model.name, "seeds": args.seeds, "depths": args.depths, "cache_budget": args.cache_budget,
        "threads": args.threads, "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
    }  # fmt: skip
    stamped = [r | stamp for r in rows]
    fresh = {row_key(r) for r in stamped}
    merged = [r for r in old if row_key(r) not in fresh] + stamped
    results.parent.mkdir(parents=True, exist_ok=True)
    replace_file(results, json.dumps({"rows": merged}, indent=1) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF file (llama or qwen2)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096, 8192, 16384, 32768])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--seeds", type=int, default=5, help="trials per depth")
    parser.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    parser.add_argument("--cache-budget", type=int, default=1024, help="positions kept by snapkv and homer")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per configuration and length")
    parser.add_argument("--fresh", action="store_true", help="discard the rows' logged trials and measure anew")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder for the rows and trial logs")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    rows = []
    for length in args.lengths:
        for config in args.configs:
            rows.append(run_config(config, length, args))
            print_table(rows[-1:])
            sys.stdout.flush()
            save(rows[-1:], args)  # row by row: an interrupted run keeps what it measured
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
