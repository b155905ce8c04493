"""``docqa eval run``, ``report`` and ``compare``: a thin layer over ``eval.runner`` and ``eval.report``.

``agents.cli`` adds these commands with ``add_eval_commands(subparsers)`` and hands the parsed
arguments of ``docqa eval …`` to ``run_eval_command``. The model and reading options are those
of ``docqa ask``; ``--strategy S`` there means ``--strategies S`` here.

    docqa eval run --dataset quality.jsonl,multidoc_qa.jsonl --strategies coa,rag-reorder,full \\
        --limit 20 --seed 0 --out runs/NAME [--model-path M.gguf --context-window 2048 --chunk-tokens 512,1024]
    docqa eval report runs/NAME [--baseline rag]
    docqa eval compare runs/OWN-WINDOW runs/W2048 [--baseline full]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

DEFAULT_STRATEGIES = "coa,rag-reorder,full"


def _add_run_command(commands: Any) -> None:
    from agents.cli import add_model_options, add_output_options, add_reading_options

    run = commands.add_parser(
        "run",
        help="run strategies on a dataset sample and write results and a report",
        description="Answer a sample of a dataset's questions with each strategy, score them, and write "
        "results.jsonl, report.md and plots to --out. Running the same command again resumes.",
    )
    run.add_argument(
        "--dataset", action="append", required=True, metavar="PATH[,PATH]",
        help="JSONL file (L-Eval, LongBench or plain format) or a folder of them; repeatable, comma-separated",
    )  # fmt: skip
    run.add_argument("--strategies", help=f"comma-separated strategies to compare (default {DEFAULT_STRATEGIES})")
    run.add_argument("--limit", type=int, default=20, help="examples per dataset file, 0 for all (default 20)")
    run.add_argument("--seed", type=int, default=0, help="seed for sampling the examples (default 0)")
    run.add_argument("--out", required=True, metavar="DIR", help="run folder, e.g. runs/NAME; resumed if it exists")
    run.add_argument(
        "--concurrency", type=int, default=1, help="examples answered at once, for remote backends (default 1)"
    )
    run.add_argument("--retry-errors", action="store_true", help="run the examples that failed before again")
    add_model_options(run)
    add_reading_options(run, chunk_sweep=True)
    add_output_options(run, "print what the run did as one JSON object instead of the report")


def add_eval_commands(subparsers: Any) -> None:
    """Add ``eval`` with its sub-commands ``run``, ``report`` and ``compare`` to the main parser's sub-parsers."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate strategies on QA datasets",
        description="Batch evaluation on long-document QA datasets: every strategy side by side, resumable.",
    )
    commands = parser.add_subparsers(dest="eval_command", required=True, metavar="EVAL_COMMAND")
    _add_run_command(commands)
    report = commands.add_parser(
        "report", help="write report.md and plots for a run folder", description="Write report.md and plots."
    )
    report.add_argument("out", metavar="DIR", help="the run folder (the --out of 'docqa eval run')")
    report.add_argument(
        "--baseline", metavar="STRATEGY", help="compare every strategy with this one (default: full, else the first)"
    )
    compare = commands.add_parser(
        "compare",
        help="compare the strategies of several run folders, paired on the questions they share",
        description="Every strategy of every run against one strategy of the first run, question by question "
        "(runs with the same datasets and seed answer the same questions).",
    )
    compare.add_argument("runs", nargs="+", metavar="DIR", help="two run folders or more; the first holds the baseline")
    compare.add_argument(
        "--baseline", metavar="STRATEGY", help="the first run's strategy to compare with (default: full, else first)"
    )


def _strategies(args: argparse.Namespace) -> list[str]:
    value = args.strategies or args.strategy or DEFAULT_STRATEGIES
    return [s.strip() for s in value.split(",") if s.strip()]


def _progress_bar(quiet: bool) -> Any:
    """An ``on_progress`` callback drawing a tqdm bar with ETA on stderr, and a line per failed example."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def on_progress(progress: Any) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(
                total=progress.total, initial=progress.done, unit="answer", file=sys.stderr, disable=quiet
            )
        bar = state["bar"]
        if progress.record is None:
            return
        bar.update(1)
        record = progress.record
        if record["error"] is not None and not quiet:
            error = record["error"]
            bar.write(f"{record['example_id']} [{record['strategy']}]: {error['type']}: {error['message']}", sys.stderr)
        if progress.done == progress.total:
            bar.close()

    return on_progress


def _run(args: argparse.Namespace) -> int:
    from agents.cli import settings_from_args
    from eval.datasets import dataset_paths
    from eval.report import REPORT_FILE
    from eval.runner import run_eval

    summary = run_eval(
        dataset_paths(args.dataset), _strategies(args), args.limit or None, args.seed, settings_from_args(args),
        args.out, args.concurrency, _progress_bar(args.quiet), retry_errors=args.retry_errors,
        chunk_sizes=args.chunk_sweep,
    )  # fmt: skip
    if args.json:
        print(json.dumps({k: str(v) if k in ("out_dir", "report") else v for k, v in asdict(summary).items()}))
        return 0
    if summary.report is not None:
        print(summary.report.read_text(encoding="utf-8"))
    if not args.quiet:
        print(
            f"{summary.ran} answered now ({summary.errors} failed), {summary.skipped} recorded before; "
            f"{summary.model_calls} model calls, {summary.cache_hits} from the cache; "
            f"{args.out}/{REPORT_FILE}",
            file=sys.stderr,
        )
    return 0


def run_eval_command(args: argparse.Namespace) -> int:
    """Carry out ``docqa eval run|report|compare``; typed errors propagate to the CLI's one-line handler."""
    if args.eval_command == "run":
        return _run(args)
    from eval.report import compare_runs, write_report

    if args.eval_command == "compare":
        print(compare_runs(args.runs, args.baseline))
        return 0
    report = write_report(args.out, args.baseline)
    print(report.read_text(encoding="utf-8"))
    return 0
