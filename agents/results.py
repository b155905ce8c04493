"""What a run produces: notes, model calls, the answer, and the progress events on the way."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from retrieval.documents import Chunk, Document
from retrieval.reorder import ScoredPassage


@dataclass(frozen=True)
class ModelCall:
    """One model call and what it cost."""

    role: Literal["worker", "manager"]
    index: int
    """Worker number (from 0), or 0 for the manager."""
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    retries: int = 0


def source_dict(chunk: Chunk) -> dict[str, Any]:
    """Where a chunk or passage came from, for JSON output."""
    return {
        "id": chunk.id,
        "file": chunk.source,
        "page_start": chunk.page_start,
        "page_end": chunk.page_end,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "tokens": chunk.n_tokens,
    }


@dataclass(frozen=True)
class Note:
    """What worker ``index`` passed on after reading ``sources`` (one chunk, or several passages)."""

    index: int
    sources: list[Chunk]
    text: str
    kept_previous: bool = False
    """True when the model's output was unusable (empty) and the previous note was kept."""

    @property
    def location(self) -> str:
        """Where the worker read, e.g. ``"report.pdf p. 3, chars 1200-4810"`` or ``"3 passages: …"``."""
        if len(self.sources) == 1:
            return self.sources[0].location
        return f"{len(self.sources)} passages: " + "; ".join(chunk.location for chunk in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "kept_previous": self.kept_previous,
            "sources": [source_dict(chunk) for chunk in self.sources],
        }


@dataclass(frozen=True)
class Citation:
    """A chunk or passage the answer cites by id, with the text it points to."""

    id: str
    chunk: Chunk

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.chunk.source, "page": self.chunk.page_start, "text": self.chunk.text}


@dataclass(frozen=True)
class Answer:
    """The result of one question (or one summary) over a set of documents."""

    question: str
    answer: str
    strategy: str
    notes: list[Note]
    """One per worker (``coa``, ``coa-rag``); empty for single-call strategies."""
    context: list[Chunk]
    """What the single call read (``full``, ``rag``, ``rag-reorder``), in prompt order."""
    citations: list[Citation]
    dropped_citations: int
    """Ids the model cited that point to no chunk or passage of this run; never shown as sources."""
    calls: list[ModelCall]
    documents: list[str]
    backend: str
    chunk_budget: int
    timings: dict[str, float] = field(default_factory=dict)
    """``load_s``, ``chunk_s``, ``model_s`` (inside model calls), ``overhead_s`` and ``total_s``."""

    @property
    def usage(self) -> dict[str, int]:
        """Token and call totals over the whole run."""
        return {
            "prompt_tokens": sum(c.prompt_tokens for c in self.calls),
            "completion_tokens": sum(c.completion_tokens for c in self.calls),
            "model_calls": len(self.calls),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: the CLI's ``--json`` output."""
        return {
            "question": self.question,
            "answer": self.answer,
            "strategy": self.strategy,
            "citations": [citation.to_dict() for citation in self.citations],
            "dropped_citations": self.dropped_citations,
            "backend": self.backend,
            "documents": self.documents,
            "chunk_budget": self.chunk_budget,
            "notes": [note.to_dict() for note in self.notes],
            "context": [source_dict(chunk) for chunk in self.context],
            "usage": self.usage,
            "calls": [asdict(call) for call in self.calls],
            "timings": self.timings,
        }


@dataclass(frozen=True)
class DocumentsLoaded:
    """Progress: every document was read."""

    documents: list[Document]


@dataclass(frozen=True)
class DocumentsChunked:
    """Progress: the documents were cut into ``len(chunks)`` chunks of at most ``budget`` tokens."""

    chunks: list[Chunk]
    budget: int


@dataclass(frozen=True)
class PassagesRetrieved:
    """Progress: retrieval picked these passages (best first) out of ``n_passages``."""

    passages: list[ScoredPassage]
    n_passages: int


@dataclass(frozen=True)
class NoteWritten:
    """Progress: a worker finished; ``note.index + 1`` of ``n_workers`` are done."""

    note: Note
    n_workers: int


@dataclass(frozen=True)
class AnswerReady:
    """Progress: the manager wrote the answer. Always the last event."""

    answer: Answer


ProgressEvent = DocumentsLoaded | DocumentsChunked | PassagesRetrieved | NoteWritten | AnswerReady
