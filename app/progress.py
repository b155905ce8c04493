"""What the live progress panel says, computed from the pipeline's events (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.results import (
    AnswerReady,
    DocumentsChunked,
    DocumentsLoaded,
    Note,
    NoteWritten,
    PassagesRetrieved,
    ProgressEvent,
)
from retrieval.documents import Chunk

SINGLE_CALL_STRATEGIES = frozenset({"full", "rag", "rag-reorder"})
"""Strategies where one model call reads everything (no chain of workers)."""
RETRIEVAL_STRATEGIES = frozenset({"rag", "rag-reorder", "coa-rag"})
"""Strategies that retrieve passages first (and so take a number of passages)."""


@dataclass(frozen=True)
class ProgressView:
    """The state of a run for display: a status line, a fraction done and the notes so far."""

    status: str
    fraction: float
    """From 0 to 1, over the workers (or the single call)."""
    notes: list[Note] = field(default_factory=list)


@dataclass
class _Tally:
    documents: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    passages: int | None = None
    n_workers: int | None = None
    notes: list[Note] = field(default_factory=list)
    answered: bool = False


def describe_progress(events: Sequence[ProgressEvent], strategy: str) -> ProgressView:
    """Summarise ``events`` so far.

    >>> describe_progress([], "coa").status
    'Loading the model and the documents…'
    """
    tally = _tally(events)
    if tally.answered:
        return ProgressView("Answer ready.", 1.0, tally.notes)
    if not tally.chunks and tally.passages is None:
        return ProgressView(_preparing_status(tally, strategy), 0.0, tally.notes)
    if strategy in SINGLE_CALL_STRATEGIES:
        return ProgressView(_single_call_status(tally), 0.5, tally.notes)
    return _chain_view(tally, strategy)


def _tally(events: Sequence[ProgressEvent]) -> _Tally:
    tally = _Tally()
    for event in events:
        if isinstance(event, DocumentsLoaded):
            tally.documents = len(event.documents)
        elif isinstance(event, DocumentsChunked):
            tally.chunks = event.chunks
        elif isinstance(event, PassagesRetrieved):
            tally.passages = len(event.passages)
        elif isinstance(event, NoteWritten):
            tally.notes.append(event.note)
            tally.n_workers = event.n_workers
        elif isinstance(event, AnswerReady):
            tally.answered = True
    return tally


def _preparing_status(tally: _Tally, strategy: str) -> str:
    if not tally.documents:
        return "Loading the model and the documents…"
    if strategy in RETRIEVAL_STRATEGIES:
        return "Embedding the documents and finding the passages that match the question…"
    return "Cutting the documents into chunks…"


def _single_call_status(tally: _Tally) -> str:
    if tally.passages is not None:
        return f"The model is reading the {tally.passages} best passages in one call…"
    return f"The model is reading {len(tally.chunks)} chunk(s) in one call…"


def _chain_view(tally: _Tally, strategy: str) -> ProgressView:
    """Progress of a chain of workers: who reads what now, and the fraction done."""
    done = len(tally.notes)
    total = tally.n_workers or (len(tally.chunks) if strategy == "coa" else None)
    if total is not None and done >= total:
        return ProgressView(f"All {total} workers are done; the manager is writing the answer…", 1.0, tally.notes)
    if total is None:  # coa-rag before its first note: the grouping of passages is not known yet
        return ProgressView("Worker 1 is reading the retrieved passages…", 0.0, tally.notes)
    where = tally.chunks[done].location if strategy == "coa" and done < len(tally.chunks) else "its passages"
    return ProgressView(f"Worker {done + 1} of {total} is reading {where}…", done / total, tally.notes)
