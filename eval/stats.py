"""How sure a score is: percentile-bootstrap confidence intervals over the examples of a run.

A score over ten questions moves by ten points when one answer changes, so the report gives each
mean an interval, and compares strategies on the examples they both answered (paired), which is
tighter than comparing two intervals. The resampling is seeded, so a report is reproducible.

Percentile intervals are rough for a handful of examples (they are too narrow below about ten);
with fewer than two values per group there is no interval at all (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RESAMPLES = 2000
LEVEL = 0.95

Interval = tuple[float, float]


def bootstrap_ci(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES) -> Interval | None:
    """The ``level`` percentile-bootstrap interval of the mean of ``values``.

    >>> bootstrap_ci([2.0, 2.0, 2.0])
    (2.0, 2.0)
    >>> bootstrap_ci([1.0]) is None
    True
    """
    return stratified_ci([values], level, resamples)


def stratified_ci(
    groups: Sequence[Sequence[float]], level: float = LEVEL, resamples: int = RESAMPLES
) -> Interval | None:
    """The interval of the mean of group means (e.g. the mean over tasks), resampling within each group.

    None when any group holds fewer than two values: one example says nothing about its spread.
    """
    import numpy as np

    if not groups or any(len(group) < 2 for group in groups):
        return None
    rng = np.random.default_rng(0)
    means = np.zeros(resamples)
    for group in groups:
        values = np.asarray(group, dtype=float)
        means += values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    means /= len(groups)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def paired_differences(records: Sequence[dict[str, Any]], strategy: str, baseline: str) -> dict[str, list[float]]:
    """Per task, ``strategy``'s score minus ``baseline``'s on each example both answered.

    Records are result lines labelled with their ``variant`` (see ``eval.report.label_records``).

    >>> rows = [{"task": "t", "example_id": "t/1", "variant": v, "error": None, "score": s}
    ...         for v, s in (("coa", 1.0), ("full", 0.0))]
    >>> paired_differences(rows, "coa", "full")
    {'t': [1.0]}
    """
    scored = {
        (r["variant"], r["example_id"]): r["score"] for r in records if r["error"] is None and r["score"] is not None
    }
    task_of = {r["example_id"]: r["task"] for r in records}
    differences: dict[str, list[float]] = {}
    for (variant, example_id), score in scored.items():
        base = scored.get((baseline, example_id))
        if variant == strategy and base is not None:
            differences.setdefault(task_of[example_id], []).append(score - base)
    return differences
