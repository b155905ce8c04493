"""Batch evaluation on long-document QA datasets: loaders, metrics, the resumable runner, reports.

Typical use: ``run_eval(["quality.jsonl"], ["coa", "full"], 20, 0, Settings(), "runs/NAME")`` then
``write_report("runs/NAME")`` (``run_eval`` writes the report itself at the end).

Names are imported on first use, so that ``import eval.metrics`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_eval": "eval.runner",
    "arun_eval": "eval.runner",
    "EvalProgress": "eval.runner",
    "EvalSummary": "eval.runner",
    "write_report": "eval.report",
    "compare_runs": "eval.report",
    "Example": "eval.datasets",
    "load_dataset": "eval.datasets",
    "select_examples": "eval.datasets",
    "score_prediction": "eval.metrics",
    "SQLiteResponseCache": "eval.cache",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eval' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
