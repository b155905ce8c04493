"""The LangGraph state of one run: what goes in, and what the nodes add."""

from __future__ import annotations

import operator
import os
from typing import Annotated, TypedDict

from agents.results import Citation, ModelCall, Note
from retrieval.documents import Chunk, Document
from retrieval.reorder import ScoredPassage

Source = str | os.PathLike[str] | Document
"""A document to read: a file path, or an already loaded ``Document``."""


def merge_timings(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Reducer: timings from different nodes are merged, later keys win."""
    return {**left, **right}


class InputState(TypedDict):
    """What a caller gives the graph."""

    question: str
    """The question; an empty string asks for a summary of the documents instead."""
    sources: list[Source]
    """The documents, read in this order."""


class PipelineState(InputState, total=False):
    """Everything the nodes produce, added as the run goes."""

    documents: list[Document]
    """The loaded documents, in input order."""
    chunks: list[Chunk]
    """All chunks in reading order (``coa``, ``full``)."""
    passages: list[ScoredPassage]
    """Retrieved passages, best first (retrieval strategies)."""
    n_passages: int
    """How many passages the documents were cut into for retrieval."""
    readings: list[list[Chunk]]
    """What each worker reads: one chunk (``coa``) or several passages (``coa-rag``)."""
    context: list[Chunk]
    """What the single answering call reads (``full``, ``rag``, ``rag-reorder``), in prompt order."""
    budget: int
    """Tokens of text one reading (or the single call) may hold."""
    notes: Annotated[list[Note], operator.add]
    """One note per finished worker, appended; the last one is the current note."""
    calls: Annotated[list[ModelCall], operator.add]
    """Every model call, appended."""
    answer: str
    """The final answer (or summary)."""
    citations: list[Citation]
    """The chunks and passages the answer cites, in order of first mention."""
    dropped_citations: int
    """Cited ids that point to nothing read in this run."""
    timings: Annotated[dict[str, float], merge_timings]
    """Seconds spent per stage, merged."""
