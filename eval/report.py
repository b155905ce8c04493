"""A run's report: a Markdown table per task and strategy, and two PNG plots.

``write_report("runs/NAME")`` reads ``results.jsonl`` and ``run.json`` and writes ``report.md``,
``score_by_strategy.png`` and ``score_vs_length.png`` next to them, and ``score_vs_chunk_size.png``
when the run compared chunk sizes. Scores are percentages of the task's own metric, averaged over
the answered pairs; failed pairs are counted as errors, not scored.

When a run compared chunk sizes, a strategy run at each size is reported on its own, labelled
``coa @512``; "strategy" below means such a label.

Each score carries a 95% bootstrap interval over its examples, and every strategy is compared with
a baseline (``full`` unless told otherwise) on the examples both answered; see ``eval.stats``.
``compare_runs([...])`` makes the same comparison across run folders that share their examples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from agents.errors import InputError, MissingDependencyError
from agents.settings import BackendSettings
from eval.metrics import declines
from eval.stats import Interval, bootstrap_ci, paired_differences, stratified_ci
from eval.store import RESULTS_FILE, prompt_fingerprints, read_records, read_run_info

REPORT_FILE = "report.md"
SCORES_PLOT = "score_by_strategy.png"
LENGTH_PLOT = "score_vs_length.png"
CHUNK_PLOT = "score_vs_chunk_size.png"
LENGTH_BINS = 4


@dataclass(frozen=True)
class Cell:
    """The results of one strategy on one task."""

    task: str
    strategy: str
    metric: str
    n: int
    """Answered (scored) pairs."""
    errors: int
    declined: int
    """Answered pairs whose answer says the text does not say (``eval.metrics.declines``); scored 0."""
    scores: tuple[float, ...]
    """Each answered pair's score in percent."""
    score: float | None
    """Mean score in percent, None when nothing was answered."""
    interval: Interval | None
    """95% bootstrap interval of ``score`` in percent; None with fewer than two answers."""
    prompt_tokens: float | None
    model_calls: float | None
    seconds: float | None
    retrieve_seconds: float | None
    """The part of ``seconds`` spent finding passages; None for strategies that do not retrieve."""
    doc_tokens: float | None


def _mean(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return fmean(present) if present else None


def label_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records, each with the ``variant`` it is reported under: its strategy, followed by its
    chunk size where that strategy ran at more than one.

    >>> rows = [{"strategy": "coa", "chunk_tokens": 512}, {"strategy": "coa", "chunk_tokens": None},
    ...         {"strategy": "full", "chunk_tokens": None}]
    >>> [r["variant"] for r in label_records(rows)]
    ['coa @512', 'coa', 'full']
    """
    swept = {s for s in {r["strategy"] for r in records} if len(_chunk_sizes(records, s)) > 1}
    labelled = []
    for record in records:
        chunk = record.get("chunk_tokens")
        label = f"{record['strategy']} @{chunk}" if record["strategy"] in swept and chunk is not None else None
        labelled.append({**record, "variant": label or record["strategy"]})
    return labelled


def _chunk_sizes(records: Sequence[dict[str, Any]], strategy: str) -> set[int | None]:
    return {r.get("chunk_tokens") for r in records if r["strategy"] == strategy}


def make_cell(task: str, strategy: str, records: Sequence[dict[str, Any]]) -> Cell:
    """Aggregate the records of one (task, strategy)."""
    answered = [r for r in records if r["error"] is None]
    scores = tuple(100 * r["score"] for r in answered)
    return Cell(
        task=task,
        strategy=strategy,
        metric=records[0]["metric"],
        n=len(answered),
        errors=len(records) - len(answered),
        declined=sum(declines(r["prediction"]) for r in answered),
        scores=scores,
        score=_mean(scores),
        interval=bootstrap_ci(scores),
        prompt_tokens=_mean(r["prompt_tokens"] for r in answered),
        model_calls=_mean(r["model_calls"] for r in answered),
        seconds=_mean(r["seconds"] for r in answered),
        retrieve_seconds=_mean((r.get("timings") or {}).get("retrieve_s") for r in answered),
        doc_tokens=_mean(r["doc_tokens"] for r in records),
    )


def strategy_order(records: Sequence[dict[str, Any]]) -> list[str]:
    """The strategies in the order the run first answered with them (for one invocation, the order it
    was given them; a run grown over several keeps its order); each strategy's chunk sizes from the
    default (none set) up."""
    labels: list[str] = []
    for strategy in dict.fromkeys(r["strategy"] for r in records):
        mine = sorted((r for r in records if r["strategy"] == strategy), key=lambda r: r.get("chunk_tokens") or -1)
        labels += [label for label in dict.fromkeys(r["variant"] for r in mine) if label not in labels]
    return labels


def aggregate(records: Sequence[dict[str, Any]], strategies: Sequence[str]) -> list[Cell]:
    """One cell per (task, strategy) present, tasks in order of first appearance."""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    cells = []
    for task in tasks:
        for strategy in strategies:
            group = [r for r in records if r["task"] == task and r["variant"] == strategy]
            if group:
                cells.append(make_cell(task, strategy, group))
    return cells


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _fmt_interval(interval: Interval | None) -> str:
    """``12.5 to 40.0`` ("to", not a dash: the bounds of a difference can be negative)."""
    return "–" if interval is None else f"{interval[0]:,.1f} to {interval[1]:,.1f}"


def _table(cells: Sequence[Cell]) -> list[str]:
    lines = [
        "| task | metric | strategy | score | 95% CI | n | errors | declined | mean prompt tokens "
        "| mean model calls | mean seconds | of which retrieval |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.task} | {c.metric} | {c.strategy} | {_fmt(c.score)} | {_fmt_interval(c.interval)} | {c.n} | "
            f"{c.errors} | {c.declined} | "
            f"{_fmt(c.prompt_tokens, 0)} | {_fmt(c.model_calls)} | {_fmt(c.seconds)} | {_fmt(c.retrieve_seconds)} |"
        )
    return lines


def _overall(cells: Sequence[Cell], strategies: Sequence[str]) -> list[str]:
    lines = [
        "| strategy | mean score over tasks | 95% CI | tasks | n | errors | declined |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy in strategies:
        mine = [c for c in cells if c.strategy == strategy]
        score = _mean(c.score for c in mine)
        scored_tasks, n, errors, declined = (
            sum(c.score is not None for c in mine),
            sum(c.n for c in mine),
            sum(c.errors for c in mine),
            sum(c.declined for c in mine),
        )
        interval = stratified_ci([c.scores for c in mine if c.n])
        lines.append(
            f"| {strategy} | {_fmt(score)} | {_fmt_interval(interval)} | {scored_tasks} | {n} | {errors} | {declined} |"
        )
    return lines


def uneven_examples(records: Sequence[dict[str, Any]], strategies: Sequence[str]) -> dict[str, int] | None:
    """Per strategy, how many examples it ran on, when the strategies did not all run on the same ones
    (a run grown with a larger ``--limit`` for some); None when they did.

    >>> rows = [{"variant": v, "example_id": e} for v, e in (("coa", "t/1"), ("full", "t/1"), ("full", "t/2"))]
    >>> uneven_examples(rows, ["coa", "full"])
    {'coa': 1, 'full': 2}
    >>> uneven_examples(rows[:2], ["coa", "full"]) is None
    True
    """
    examples = {s: {r["example_id"] for r in records if r["variant"] == s} for s in strategies}
    if len({frozenset(ids) for ids in examples.values()}) <= 1:
        return None
    return {strategy: len(ids) for strategy, ids in examples.items()}


def _uneven_lines(records: Sequence[dict[str, Any]], strategies: Sequence[str]) -> list[str]:
    counts = uneven_examples(records, strategies)
    if counts is None:
        return []
    ran = ", ".join(f"{strategy} {n}" for strategy, n in counts.items())
    return [
        f"The strategies ran on different examples ({ran}), so these means are not comparable with each "
        "other; the paired rows below compare strategies on the examples both answered.",
        "",
    ]


def default_baseline(strategies: Sequence[str]) -> str | None:
    """What the others are compared with: ``full`` (the vanilla baseline) if it ran, else the first strategy."""
    return "full" if "full" in strategies else next(iter(strategies), None)


def _paired_row(
    task: str, strategy: str, diffs: Sequence[float], difference: float | None, interval: Interval | None
) -> str:
    counts = f"{sum(d > 0 for d in diffs)} / {sum(d == 0 for d in diffs)} / {sum(d < 0 for d in diffs)}"
    return f"| {task} | {strategy} | {len(diffs)} | {_fmt(difference)} | {_fmt_interval(interval)} | {counts} |"


def _paired_lines(records: Sequence[dict[str, Any]], strategies: Sequence[str], baseline: str) -> list[str]:
    """Each strategy minus ``baseline`` on the examples both answered: per task, then over tasks."""
    lines = [
        f"## Against {baseline}, on the same examples",
        "",
        f"Each strategy's score minus {baseline}'s on the examples both answered, in percentage points, with "
        "a 95% bootstrap interval; better / same / worse counts those examples. An interval that holds 0 "
        "means these examples cannot tell the two apart.",
        "",
        "| task | strategy | paired n | difference | 95% CI | better / same / worse |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for strategy in strategies:
        if strategy == baseline:
            continue
        by_task = {
            task: [100 * d for d in diffs] for task, diffs in paired_differences(records, strategy, baseline).items()
        }
        for task, diffs in by_task.items():
            lines.append(_paired_row(task, strategy, diffs, _mean(diffs), bootstrap_ci(diffs)))
        if len(by_task) > 1:  # the mean over tasks, as in the per-strategy table
            everything = [d for diffs in by_task.values() for d in diffs]
            difference = _mean(_mean(diffs) for diffs in by_task.values())
            lines.append(
                _paired_row("all tasks", strategy, everything, difference, stratified_ci(list(by_task.values())))
            )
    return [*lines, ""]


def _settings_lines(run_info: dict[str, Any], records: Sequence[dict[str, Any]]) -> list[str]:
    settings = run_info.get("settings", {})
    backend = settings.get("backend", {})
    model = backend.get("model_path") or backend.get("model") or "embedded SmolLM2-135M-Instruct"
    sizes = run_info.get("chunk_sizes") or []
    # What coa and coa-rag actually read with: a calibrated or recommended default leaves no other trace.
    used = sorted({r["chunk_budget"] for r in records if r.get("chunk_budget") and r["strategy"] in ("coa", "coa-rag")})
    asked = ", ".join(map(str, sizes)) if sizes else "the model's default (calibrated, else recommended)"
    # Counted from the records: run.json holds only the last invocation's --limit, and a run can grow.
    examples = Counter(task for task, _ in dict.fromkeys((r["task"], r["example_id"]) for r in records))
    lines = [
        f"- backend: {backend.get('kind', '?')}, model: {model}",
        f"- context window: {backend.get('context_window') or 'the model default'}, chunk tokens: {asked}"
        + (f"; chunks read: {', '.join(map(str, used))} tokens" if used else ""),
        f"- datasets: {', '.join(run_info.get('datasets', [])) or '?'}; seed {run_info.get('seed')}; examples "
        f"per task: {', '.join(f'{task} {n}' for task, n in examples.items())}",
    ]
    changed = _changed_model_settings(backend)
    if changed:
        lines.append(f"- other model settings: {changed}")
    own = _own_prompts(run_info.get("prompts", {}))
    if own:
        where = settings.get("prompts_dir")
        origin = f"from {where}" if where else "the bundled ones have changed since this run"
        lines.append(f"- prompts not the bundled ones: {own} ({origin})")
    return lines


def _changed_model_settings(backend: dict[str, Any]) -> str:
    """The recorded model settings, other than those the header names, that differ from their defaults.

    >>> _changed_model_settings({"kind": "llamacpp", "context_window": 2048, "repeat_penalty": 1.1, "kv_type": "f16"})
    'repeat_penalty 1.1'
    """
    defaults = BackendSettings().model_dump(mode="json")
    unnamed = defaults.keys() - {"kind", "model_path", "model", "base_url", "context_window"}
    return ", ".join(f"{key} {value}" for key, value in backend.items() if key in unnamed and value != defaults[key])


def _own_prompts(stored: dict[str, str]) -> str:
    """The prompts whose recorded fingerprint is not the bundled prompt's, by name.

    >>> _own_prompts({**prompt_fingerprints(None), "answer": "0123456789ab"})
    'answer'
    """
    bundled = prompt_fingerprints(None)
    return ", ".join(name for name, fingerprint in stored.items() if fingerprint != bundled.get(name))


ChunkSweep = tuple[list[int], dict[str, dict[int, float | None]]]
"""The chunk sizes compared, and per strategy run at several of them, its score at each size."""


def chunk_sweep(records: Sequence[dict[str, Any]]) -> ChunkSweep:
    """The chunk sizes compared, and for each strategy run at several its score (mean over tasks) per size."""
    swept = [s for s in dict.fromkeys(r["strategy"] for r in records) if len(_chunk_sizes(records, s)) > 1]
    sizes = sorted({r["chunk_tokens"] for r in records if r["strategy"] in swept and r.get("chunk_tokens")})
    tasks = list(dict.fromkeys(r["task"] for r in records))
    scores: dict[str, dict[int, float | None]] = {}
    for strategy in swept:
        scores[strategy] = {}
        for size in sizes:
            group = [r for r in records if r["strategy"] == strategy and r.get("chunk_tokens") == size]
            per_task = [make_cell(t, strategy, [r for r in group if r["task"] == t]) for t in tasks]
            scores[strategy][size] = _mean(c.score for c in per_task if c.n)
    return sizes, scores


def _chunk_lines(sweep: ChunkSweep, cells: Sequence[Cell], strategies: Sequence[str]) -> list[str]:
    sizes, scores = sweep
    lines = [
        "## Score against chunk size",
        "",
        "Mean score over tasks; only the strategies whose workers read chunks depend on the chunk size.",
        "",
        "| strategy | " + " | ".join(f"{size} tokens" for size in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    lines += [f"| {s} | " + " | ".join(_fmt(by_size[size]) for size in sizes) + " |" for s, by_size in scores.items()]
    others = [
        f"{s} {_fmt(_mean(c.score for c in cells if c.strategy == s))}"
        for s in strategies
        if s.split(" @")[0] not in scores
    ]
    if others:
        lines += ["", f"Not chunked, for reference: {', '.join(others)}."]
    return [*lines, ""]


def render_markdown(
    cells: Sequence[Cell],
    strategies: Sequence[str],
    run_info: dict[str, Any],
    plots: Sequence[str],
    records: Sequence[dict[str, Any]] = (),
    baseline: str | None = None,
) -> str:
    """The report's text from the labelled ``records``: with two strategies or more, a comparison with
    ``baseline`` (default: see ``default_baseline``); for a chunk-size sweep, a section on chunk size."""
    lines = ["# Evaluation report", "", *_settings_lines(run_info, records), ""]
    lines += ["## Per task and strategy", "", *_table(cells), ""]
    lines += ["## Per strategy", "", *_overall(cells, strategies), ""]
    baseline = baseline or default_baseline(strategies)
    if baseline is not None and len(strategies) > 1:
        lines += _uneven_lines(records, strategies)
        lines += _paired_lines(records, strategies, baseline)
    sweep = chunk_sweep(records)
    if sweep[1]:
        lines += _chunk_lines(sweep, cells, strategies)
    lines += [
        "Scores are percentages of each task's metric (see `eval/metrics.py`), averaged over the answered "
        "examples (n), with 95% percentile-bootstrap intervals over those examples (2,000 resamples; rough "
        "below about ten examples, – below two); failed examples are counted under errors and not scored. "
        "Declined counts the answered examples whose answer says the text does not say; they score 0. "
        "Token and call counts are "
        "per answered example; model calls answered from the cache count as calls, and take almost no time. "
        "Retrieval seconds are the part spent finding passages: the first strategy to see a document embeds "
        "all of its passages, and the strategies after it reuse that index (– where not recorded).",
        "",
    ]
    lines += [f"![{plot}]({plot})" for plot in plots]
    return "\n".join(lines).rstrip() + "\n"


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError("plots need matplotlib", help="pip install 'docqa[eval]'") from error
    return Figure(figsize=(width, height), layout="constrained")


def plot_scores_by_strategy(cells: Sequence[Cell], strategies: Sequence[str], path: Path) -> None:
    """Grouped bars: one group per task, one bar per strategy, with its 95% interval as whiskers."""
    tasks = list(dict.fromkeys(c.task for c in cells))
    figure = _figure(max(5.0, 1.2 * len(tasks) * max(1, len(strategies)) / 2), 3.6)
    axes = figure.subplots()
    width = 0.8 / max(1, len(strategies))
    for i, strategy in enumerate(strategies):
        mine = {c.task: c for c in cells if c.strategy == strategy}
        scores = {task: c.score for task, c in mine.items()}
        xs = [t + (i - (len(strategies) - 1) / 2) * width for t in range(len(tasks))]
        heights = [scores.get(task) or 0.0 for task in tasks]
        intervals = [mine[task].interval if task in mine else None for task in tasks]
        # Whiskers: the 95% interval; none (NaN) where there are fewer than two answers.
        errors = [
            [h - ci[0] if ci else math.nan for h, ci in zip(heights, intervals, strict=True)],
            [ci[1] - h if ci else math.nan for h, ci in zip(heights, intervals, strict=True)],
        ]
        bars = axes.bar(xs, heights, width, yerr=errors, capsize=2, error_kw={"linewidth": 0.8}, label=strategy)
        axes.bar_label(bars, labels=[_fmt(scores.get(task), 0) for task in tasks], fontsize="x-small")
    axes.set_xticks(range(len(tasks)), tasks)
    axes.set_ylabel("score (%)")
    axes.set_ylim(0, 100)
    axes.set_title("Score by strategy per task (whiskers: 95% interval)")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def plot_score_vs_length(records: Sequence[dict[str, Any]], strategies: Sequence[str], path: Path) -> None:
    """Score against document length (cl100k tokens): each answer as a dot, binned means as a line."""
    import numpy as np

    figure = _figure(6.0, 3.8)
    axes = figure.subplots()
    for strategy in strategies:
        mine = sorted(
            (r["doc_tokens"], 100 * r["score"])
            for r in records
            if r["variant"] == strategy and r["error"] is None and r["doc_tokens"] is not None
        )
        if not mine:
            continue
        lengths, scores = np.array(mine).T
        (line,) = axes.plot([], [], marker="o", label=strategy)
        axes.scatter(lengths, scores, s=10, alpha=0.3, color=line.get_color())
        # Quantile bins of length; equal lengths always share a bin.
        edges = np.unique(np.quantile(lengths, np.linspace(0, 1, LENGTH_BINS + 1)))
        bin_of = np.searchsorted(edges[1:-1], lengths, side="right")
        bins = [bin_of == b for b in np.unique(bin_of)]
        line.set_data([lengths[b].mean() for b in bins], [scores[b].mean() for b in bins])
    low, high = axes.dataLim.intervalx
    if low > 0 and high / low > 4:  # lengths spread over orders of magnitude
        axes.set_xscale("log")
    axes.set_xlabel("document length (tokens, cl100k)")
    axes.set_ylabel("score (%)")
    axes.set_ylim(-5, 105)
    axes.set_title("Score against document length (each task's own metric)")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def plot_score_vs_chunk_size(sweep: ChunkSweep, cells: Sequence[Cell], path: Path) -> None:
    """One line per chunked strategy over the chunk sizes; the other strategies as dashed levels."""
    sizes, scores = sweep
    figure = _figure(6.0, 3.8)
    axes = figure.subplots()
    for strategy, by_size in scores.items():
        points = [(size, score) for size, score in by_size.items() if score is not None]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=strategy)
    for strategy in dict.fromkeys(c.strategy for c in cells if c.strategy.split(" @")[0] not in scores):
        level = _mean(c.score for c in cells if c.strategy == strategy)
        if level is not None:
            axes.axhline(level, linestyle="--", linewidth=1, color="grey")
            axes.annotate(strategy, (sizes[0], level), fontsize="x-small", va="bottom")
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.set_xlabel("chunk size (tokens)")
    axes.set_ylabel("score (%, mean over tasks)")
    axes.set_ylim(-5, 105)
    axes.set_title("Score against chunk size")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def run_records(out_dir: Path) -> list[dict[str, Any]]:
    """A run folder's results, each labelled with its ``variant``; a folder without results is an error."""
    if not (out_dir / RESULTS_FILE).exists():
        raise InputError(f"{out_dir}: no {RESULTS_FILE} here", help="pass the --out folder of a 'docqa eval run'")
    return label_records(read_records(out_dir))


def _unknown_baseline(out_dir: Path, baseline: str | None, strategies: Sequence[str]) -> InputError:
    """The error for a baseline strategy that the run in ``out_dir`` does not have."""
    return InputError(
        f"{out_dir}: no strategy {baseline!r} to compare with", help=f"pick one of: {', '.join(strategies)}"
    )


def write_report(out_dir: str | Path, baseline: str | None = None) -> Path:
    """Write ``report.md`` and the plots for the run in ``out_dir``; returns the report's path.

    ``baseline`` is the strategy the others are compared with, example by example (default: ``full``
    if the run has it, else its first strategy).
    """
    out_dir = Path(out_dir)
    records = run_records(out_dir)
    run_info = read_run_info(out_dir)
    strategies = strategy_order(records)
    if baseline is not None and baseline not in strategies:
        raise _unknown_baseline(out_dir, baseline, strategies)
    cells = aggregate(records, strategies)
    plots = []
    if any(c.score is not None for c in cells):
        plot_scores_by_strategy(cells, strategies, out_dir / SCORES_PLOT)
        plot_score_vs_length(records, strategies, out_dir / LENGTH_PLOT)
        plots = [SCORES_PLOT, LENGTH_PLOT]
        sweep = chunk_sweep(records)
        if sweep[1]:
            plot_score_vs_chunk_size(sweep, cells, out_dir / CHUNK_PLOT)
            plots.append(CHUNK_PLOT)
    report = out_dir / REPORT_FILE
    report.write_text(render_markdown(cells, strategies, run_info, plots, records, baseline), encoding="utf-8")
    return report


def compare_runs(out_dirs: Sequence[str | Path], baseline: str | None = None) -> str:
    """Markdown: every strategy of every run against ``baseline`` of the first run, example by example.

    Runs made with the same datasets and seed answer the same examples, so a strategy can be set
    against another run's (another window, model or prompt), paired on the examples both answered.
    Each is labelled ``strategy (folder name)``; ``baseline`` is a strategy of the first run (default:
    its ``full``, else its first strategy).
    """
    runs = [Path(d) for d in out_dirs]
    if len(runs) < 2:
        raise InputError("comparing needs two run folders or more", help="e.g. docqa eval compare runs/A runs/B")
    labelled = [run_records(run) for run in runs]
    names = [run.name for run in runs] if len({run.name for run in runs}) == len(runs) else [str(r) for r in runs]
    first = strategy_order(labelled[0])
    chosen = baseline or default_baseline(first)
    if chosen not in first:
        raise _unknown_baseline(runs[0], chosen, first)
    pairs = list(zip(labelled, names, strict=True))
    records = [{**r, "variant": f"{r['variant']} ({name})"} for mine, name in pairs for r in mine]
    order = [f"{variant} ({name})" for mine, name in pairs for variant in strategy_order(mine)]
    return "\n".join(_paired_lines(records, order, f"{chosen} ({names[0]})"))
