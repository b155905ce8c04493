"""What a run produces: notes, model calls, the answer, and the progress events on the way."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from retrieval.documents import Chunk, Document


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


@dataclass(frozen=True)
class Note:
    """What worker ``index`` passed on after reading ``chunk``."""

    index: int
    chunk: Chunk
    text: str
    kept_previous: bool = False
    """True when the model's output was unusable (empty) and the previous note was kept."""

    def to_dict(self) -> dict[str, Any]:
        chunk = self.chunk
        return {
            "index": self.index,
            "text": self.text,
            "kept_previous": self.kept_previous,
            "source": {
                "chunk_id": chunk.id,
                "file": chunk.source,
                "page_start": chunk.page_start,
                "page_end": chunk.page_end,
                "char_start": chunk.char_start,
                "char_end": chunk.char_end,
                "tokens": chunk.n_tokens,
            },
        }


@dataclass(frozen=True)
class Answer:
    """The result of one question (or one summary) over a set of documents."""

    question: str
    answer: str
    notes: list[Note]
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
            "strategy": "coa",
            "backend": self.backend,
            "documents": self.documents,
            "chunk_budget": self.chunk_budget,
            "notes": [note.to_dict() for note in self.notes],
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
class NoteWritten:
    """Progress: a worker finished; ``note.index + 1`` of ``n_chunks`` are done."""

    note: Note
    n_chunks: int


@dataclass(frozen=True)
class AnswerReady:
    """Progress: the manager wrote the answer. Always the last event."""

    answer: Answer


ProgressEvent = DocumentsLoaded | DocumentsChunked | NoteWritten | AnswerReady
