"""The batch runner: every strategy on the same examples with the same backend, resumable.

Each (example, strategy, chunk size) is answered through the public API (``DocQA.aask``), scored,
and appended to ``results.jsonl`` as soon as it finishes. Chunk sizes (``chunk_sizes``) are compared
for the strategies whose workers read chunks (``coa``, ``coa-rag``); the others run once. Running
again with the same settings resumes: pairs already recorded are never run again, and model calls
already made come from the response cache.
A failed example is recorded with its error and counted apart, never scored as a wrong answer;
configuration errors (a missing model or extra) stop the run, since every example would fail.

    from eval.runner import run_eval
    summary = run_eval(["quality.jsonl"], ["coa", "rag-reorder", "full"], limit=20, seed=0,
                       settings=Settings(), out_dir="runs/quality")
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.api import DocQA
from agents.backends import Backend, create_backend
from agents.budget import MIN_CHUNK_TOKENS
from agents.calibration import default_chunk_tokens
from agents.errors import ConfigError, DocQAError, MissingDependencyError
from agents.settings import STRATEGIES, Settings
from eval.cache import SQLiteResponseCache
from eval.datasets import Example, select_examples
from eval.metrics import score_prediction
from eval.store import (
    CACHE_FILE,
    RESULTS_FILE,
    ResultsWriter,
    hold_default_chunk,
    prepare_run_dir,
    read_records,
    record_key,
    run_fingerprint,
    run_lock,
)

logger = logging.getLogger(__name__)

CHUNKED_STRATEGIES = ("coa", "coa-rag")
"""The strategies whose reading depends on the chunk size; a chunk-size sweep multiplies only these."""
Pair = tuple[Example, str, int | None]
"""An example, a strategy, and the chunk size it reads with (None: the settings' or model's default)."""

BackendFactory = Callable[[Settings], Backend]
"""Builds the model backend from the run's settings; the default is ``agents.backends.create_backend``."""


@dataclass(frozen=True)
class EvalProgress:
    """Where a run stands: ``done`` of ``total`` pairs recorded; ``record`` is the line just written
    (None for the first event, sent before any new work starts)."""

    done: int
    total: int
    record: dict[str, Any] | None


@dataclass(frozen=True)
class EvalSummary:
    """What one invocation did."""

    out_dir: Path
    examples: int
    pairs: int
    """Examples × strategies (× chunk sizes for coa and coa-rag)."""
    skipped: int
    """Pairs already recorded by an earlier invocation."""
    ran: int
    errors: int
    """Pairs run now that failed (recorded with their error)."""
    cache_hits: int
    """Model calls answered from the response cache."""
    model_calls: int
    """Model calls actually made (cache misses)."""
    report: Path | None


def check_strategies(strategies: Sequence[str]) -> list[str]:
    """The strategies, validated and without repeats, in the order given."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ConfigError(
            f"unknown strategies: {', '.join(unknown)}" if unknown else "no strategy given",
            help=f"choose from {', '.join(STRATEGIES)}",
        )
    return list(dict.fromkeys(strategies))


def check_concurrency(settings: Settings, concurrency: int) -> None:
    """Several examples at once only make sense for a remote model; local models answer one call at a time."""
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}", help="pass --concurrency 1 or more")
    if concurrency > 1 and settings.backend.kind != "openai":
        raise ConfigError(
            f"concurrency above 1 needs a remote backend: the in-process {settings.backend.kind} model "
            "answers one call at a time",
            help="drop --concurrency, or use --backend openai",
        )


def check_options(strategies: Sequence[str], limit: int | None, settings: Settings, concurrency: int) -> list[str]:
    """Validate a run's options before any work; returns the strategies without repeats."""
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}", help="pass --limit 1 or more (0 means all)")
    check_concurrency(settings, concurrency)
    return check_strategies(strategies)


def check_chunk_sizes(chunk_sizes: Sequence[int] | None, settings: Settings) -> list[int] | None:
    """The chunk sizes to compare, without repeats; a single ``chunking.chunk_tokens`` setting is a sweep of one."""
    if not chunk_sizes:
        return None if settings.chunking.chunk_tokens is None else [settings.chunking.chunk_tokens]
    too_small = [size for size in chunk_sizes if size < MIN_CHUNK_TOKENS]
    if too_small:
        raise ConfigError(
            f"chunk sizes must be at least {MIN_CHUNK_TOKENS} tokens, not {', '.join(map(str, too_small))}",
            help="e.g. --chunk-tokens 512,1024,2048",
        )
    return list(dict.fromkeys(chunk_sizes))


def check_dependencies(examples: Sequence[Example], report: bool) -> None:
    """Fail before any work when an extra the run needs at the end is missing."""
    import importlib.util

    needed = {"matplotlib": report, "rouge_score": any(e.metric == "rouge_l" for e in examples)}
    missing = [name for name, needs in needed.items() if needs and importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(f"{', '.join(missing)} not installed", help="pip install 'docqa[eval]'")


def build_record(
    example: Example, strategy: str, outcome: Any, seconds: float, chunk_tokens: int | None = None
) -> dict[str, Any]:
    """The result line for one pair; ``outcome`` is an ``Answer`` or the exception that stopped it."""
    record: dict[str, Any] = {
        "example_id": example.id,
        "task": example.task,
        "strategy": strategy,
        "chunk_tokens": chunk_tokens,
        "metric": example.metric,
        "question": example.question,
        "references": list(example.answers),
        "doc_chars": example.doc_chars,
        "doc_tokens": example.doc_tokens,
    }
    if isinstance(outcome, BaseException):
        error = {"type": type(outcome).__name__, "message": str(outcome)}
        usage: dict[str, Any] = {"prompt_tokens": None, "completion_tokens": None, "model_calls": None}
        record.update(prediction=None, scores=None, score=None, **usage, chunk_budget=None)
        record.update(seconds=round(seconds, 3), timings=None, error=error)
    else:
        scores = score_prediction(outcome.answer, example.answers, example.metric)
        record.update(prediction=outcome.answer, scores=scores, score=scores["score"], **outcome.usage)
        record.update(chunk_budget=outcome.chunk_budget)
        timings = {name: round(value, 3) for name, value in outcome.timings.items()}
        record.update(seconds=timings.get("total_s", round(seconds, 3)), timings=timings, error=None)
    record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return record


async def answer_example(qa: DocQA, example: Example) -> dict[str, Any]:
    """Answer and score one example with one configured ``DocQA``; errors become part of the record."""
    started = time.perf_counter()
    outcome: Any
    try:
        outcome = await qa.aask(example.question, example.sources())
    except ConfigError:
        raise  # every example would fail the same way
    except DocQAError as error:
        outcome = error
    except Exception as error:  # an unexpected failure on one example must not lose the others
        logger.warning("%s [%s] failed unexpectedly", example.id, qa.settings.strategy, exc_info=True)
        outcome = error
    seconds = time.perf_counter() - started
    return build_record(example, qa.settings.strategy, outcome, seconds, qa.settings.chunking.chunk_tokens)


class _PairRunner:
    """Runs the pending pairs at most ``concurrency`` at a time, recording each as it finishes."""

    def __init__(
        self, qas: dict[tuple[str, int | None], DocQA], writer: ResultsWriter, progress: EvalProgress, on_progress: Any
    ) -> None:
        self.qas, self.writer, self.on_progress = qas, writer, on_progress
        self.done, self.total, self.errors = progress.done, progress.total, 0

    async def run(self, pending: Sequence[Pair], concurrency: int) -> None:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(example: Example, strategy: str, chunk_tokens: int | None) -> None:
            async with semaphore:
                record = await answer_example(self.qas[(strategy, chunk_tokens)], example)
            self.writer.append(record)
            self.done += 1
            self.errors += record["error"] is not None
            if self.on_progress is not None:
                self.on_progress(EvalProgress(self.done, self.total, record))

        try:
            async with asyncio.TaskGroup() as group:
                for example, strategy, chunk_tokens in pending:
                    group.create_task(one(example, strategy, chunk_tokens))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None  # one typed error for the caller, the others were cancelled


def all_pairs(examples: Sequence[Example], strategies: Sequence[str], chunk_sizes: Sequence[int] | None) -> list[Pair]:
    """Every (example, strategy, chunk size) of a run; chunk sizes multiply only ``CHUNKED_STRATEGIES``."""
    return [
        (example, strategy, size)
        for example in examples
        for strategy in strategies
        for size in (chunk_sizes if chunk_sizes and strategy in CHUNKED_STRATEGIES else [None])
    ]


def _pending_pairs(out_dir: Path, pairs: Sequence[Pair], retry_errors: bool) -> list[Pair]:
    done = {record_key(r) for r in read_records(out_dir) if not (retry_errors and r["error"] is not None)}
    return [(e, s, c) for e, s, c in pairs if (e.id, s, c) not in done]


def _pair_settings(settings: Settings, strategy: str, chunk_tokens: int | None) -> Settings:
    chunking = settings.chunking.model_copy(update={"chunk_tokens": chunk_tokens})
    return settings.model_copy(update={"strategy": strategy, "chunking": chunking})


async def _run_pending(
    pending: Sequence[Pair],
    settings: Settings,
    out_dir: Path,
    backend: Backend,
    concurrency: int,
    progress: EvalProgress,
    on_progress: Callable[[EvalProgress], None] | None,
) -> tuple[int, int, int]:
    """Run the pairs with ``backend`` answering through the run's response cache.

    Returns the number of failed pairs, of cache hits, and of model calls made (cache misses).
    """
    cache = SQLiteResponseCache(out_dir / CACHE_FILE)
    previous_cache = backend.chat_model.cache
    backend.chat_model.cache = cache
    writer = ResultsWriter(out_dir / RESULTS_FILE)
    variants = dict.fromkeys((strategy, size) for _, strategy, size in pending)
    qas = {(s, c): DocQA(_pair_settings(settings, s, c), backend=backend) for s, c in variants}
    runner = _PairRunner(qas, writer, progress, on_progress)
    try:
        await runner.run(pending, concurrency)
    finally:
        backend.chat_model.cache = previous_cache
        writer.close()
        cache.close()
    return runner.errors, cache.hits, cache.misses


async def arun_eval(
    datasets: Sequence[str | Path],
    strategies: Sequence[str],
    limit: int | None,
    seed: int,
    settings: Settings,
    out_dir: str | Path,
    concurrency: int = 1,
    on_progress: Callable[[EvalProgress], None] | None = None,
    *,
    backend_factory: BackendFactory | None = None,
    retry_errors: bool = False,
    report: bool = True,
    chunk_sizes: Sequence[int] | None = None,
) -> EvalSummary:
    """The async form of :func:`run_eval`."""
    out_dir = Path(out_dir)
    strategies = check_options(strategies, limit, settings, concurrency)
    sizes = check_chunk_sizes(chunk_sizes, settings)
    examples = select_examples(datasets, limit, seed)
    check_dependencies(examples, report)
    with run_lock(out_dir):
        invocation = {
            "datasets": [str(d) for d in datasets], "strategies": strategies, "limit": limit, "chunk_sizes": sizes,
        }  # fmt: skip
        prepare_run_dir(out_dir, run_fingerprint(settings, seed), invocation)
        pairs = all_pairs(examples, strategies, sizes)
        pending = _pending_pairs(out_dir, pairs, retry_errors)
        total = len(pairs)
        progress = EvalProgress(total - len(pending), total, None)
        if on_progress is not None:
            on_progress(progress)
        errors = hits = misses = 0
        if pending:  # building the backend loads a local model: only when there is work
            backend = (backend_factory or (lambda s: create_backend(s.backend)))(settings)
            if sizes is None and any(strategy in CHUNKED_STRATEGIES for _, strategy, _ in pending):
                hold_default_chunk(out_dir, *default_chunk_tokens(backend, settings.chunking))
            errors, hits, misses = await _run_pending(
                pending, settings, out_dir, backend, concurrency, progress, on_progress
            )
        report_path = _write_report(out_dir) if report else None
    return EvalSummary(out_dir, len(examples), total, progress.done, len(pending), errors, hits, misses, report_path)


def _write_report(out_dir: Path) -> Path:
    from eval.report import write_report

    return write_report(out_dir)


def run_eval(
    datasets: Sequence[str | Path],
    strategies: Sequence[str],
    limit: int | None,
    seed: int,
    settings: Settings,
    out_dir: str | Path,
    concurrency: int = 1,
    on_progress: Callable[[EvalProgress], None] | None = None,
    *,
    backend_factory: BackendFactory | None = None,
    retry_errors: bool = False,
    report: bool = True,
    chunk_sizes: Sequence[int] | None = None,
) -> EvalSummary:
    """Run ``strategies`` on ``limit`` examples per dataset (sampled with ``seed``) into ``out_dir``.

    With ``chunk_sizes`` (e.g. ``[512, 1024, 2048]``), ``coa`` and ``coa-rag`` run once per size and
    the report shows score against chunk size; without, they read with ``settings.chunking.chunk_tokens``
    or the model's default.

    Resumes a run already in ``out_dir`` (refusing one made with other settings or seed); with
    ``retry_errors`` the pairs that failed before are run again. ``concurrency`` pairs run at once
    (remote backends only). ``on_progress`` sees an ``EvalProgress`` first and after every pair.
    Writes ``report.md`` and the plots at the end unless ``report`` is False.
    """
    job = arun_eval(
        datasets, strategies, limit, seed, settings, out_dir, concurrency, on_progress,
        backend_factory=backend_factory, retry_errors=retry_errors, report=report, chunk_sizes=chunk_sizes,
    )  # fmt: skip
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    with ThreadPoolExecutor(max_workers=1) as pool:  # inside a running loop (e.g. Jupyter)
        return pool.submit(asyncio.run, job).result()
