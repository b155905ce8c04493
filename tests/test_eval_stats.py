"""Confidence intervals and paired comparisons in the eval report, on hand-worked examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agents.errors import InputError
from eval.report import write_report
from eval.runner import run_eval
from eval.stats import bootstrap_ci, paired_differences, stratified_ci
from tests.eval_fake_run import fake_backend, fake_settings, write_code_word_dataset


def test_two_values_resample_to_their_extremes() -> None:
    # Resampling [0, 100] gives means 0, 50, 100 with probability 1/4, 1/2, 1/4: both 2.5% tails are extremes.
    assert bootstrap_ci([0.0, 100.0]) == (0.0, 100.0)


def test_equal_values_have_no_spread_and_one_value_has_no_interval() -> None:
    assert bootstrap_ci([40.0] * 7) == (40.0, 40.0)
    assert bootstrap_ci([40.0]) is None and bootstrap_ci([]) is None


def test_the_interval_narrows_with_more_examples_and_is_reproducible() -> None:
    few, many = [0.0, 100.0] * 5, [0.0, 100.0] * 200
    low_few, high_few = bootstrap_ci(few) or (0, 0)
    low_many, high_many = bootstrap_ci(many) or (0, 0)
    assert low_few < low_many < 50 < high_many < high_few
    assert low_many > 40 and high_many < 60  # ±1.96 × 50/√400 ≈ ±4.9 points
    assert bootstrap_ci(few) == (low_few, high_few)  # seeded: the same report every time


def test_stratified_interval_is_over_the_mean_of_group_means() -> None:
    # Two tasks, each without spread: the mean of means is 50 whatever is resampled.
    assert stratified_ci([[0.0, 0.0], [100.0, 100.0, 100.0, 100.0]]) == (50.0, 50.0)
    assert stratified_ci([[0.0, 100.0], [50.0]]) is None  # a task with one example says nothing of its spread


def test_paired_differences_use_only_examples_both_answered() -> None:
    def row(example: str, variant: str, score: float | None, task: str = "t") -> dict[str, Any]:
        error = None if score is not None else {"type": "BackendError", "message": "x"}
        return {"task": task, "example_id": f"{task}/{example}", "variant": variant, "error": error, "score": score}

    records = [
        row("1", "coa", 1.0), row("1", "full", 0.0),  # better
        row("2", "coa", 0.5), row("2", "full", 0.5),  # same
        row("3", "coa", 0.0), row("3", "full", None),  # full failed: not paired
        row("4", "coa", 1.0),  # full never ran it: not paired
        row("1", "coa", 0.0, task="u"), row("1", "full", 1.0, task="u"),  # worse, another task
    ]  # fmt: skip
    assert paired_differences(records, "coa", "full") == {"t": [1.0, 0.0], "u": [-1.0]}
    assert paired_differences(records, "full", "coa") == {"t": [-1.0, 0.0], "u": [1.0]}


def _run(dataset: Path, out: Path, strategies: list[str], limit: int | None = None) -> None:
    run_eval(
        [dataset], strategies, limit, 0, fake_settings(), out, backend_factory=lambda _: fake_backend(), report=False
    )


def test_report_compares_each_strategy_with_full_on_the_same_examples(tmp_path: Path) -> None:
    # q1 fails for both strategies; q2's reference is wrong, so both score 0 there; the rest both get right.
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 4, explode=[1], wrong=[2])
    out = tmp_path / "run"
    _run(dataset, out, ["coa", "full"])
    report = write_report(out).read_text(encoding="utf-8")

    assert "## Against full, on the same examples" in report
    assert "| codes | coa | 3 | 0.0 | 0.0 to 0.0 | 0 / 3 / 0 |" in report  # three paired, all the same
    assert "| codes | full |" not in report.split("## Against full")[1]  # the baseline is not compared with itself
    by_coa = write_report(out, baseline="coa").read_text(encoding="utf-8")
    assert "| codes | full | 3 | 0.0 | 0.0 to 0.0 | 0 / 3 / 0 |" in by_coa.split("## Against coa")[1]


def test_an_unknown_baseline_names_the_strategies_there_are(tmp_path: Path) -> None:
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 2)
    out = tmp_path / "run"
    _run(dataset, out, ["coa", "full"])
    with pytest.raises(InputError, match="no strategy 'rag'") as raised:
        write_report(out, baseline="rag")
    assert "coa, full" in raised.value.help


def test_a_grown_run_keeps_its_strategy_order_and_counts_its_examples(tmp_path: Path) -> None:
    """run.json holds only the last invocation; the report's order and counts come from the results."""
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 4)
    out = tmp_path / "run"
    _run(dataset, out, ["full", "coa"], limit=4)
    _run(dataset, out, ["coa"], limit=2)  # the last invocation names only coa, with a smaller limit
    report = write_report(out).read_text(encoding="utf-8")

    assert "examples per task: codes 4" in report
    rows = re.findall(r"^\| codes \| f1 \| (\S+) \|", report, flags=re.MULTILINE)
    assert rows == ["full", "coa"]
