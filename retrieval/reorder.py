"""Ordering retrieved passages before they reach a model.

Jin et al. ("Long-Context LLMs Meet RAG", arXiv 2410.05983) found that long-context models use
the start and the end of their input best, and that hard negatives hurt most in the middle. So,
with passages sorted best-first, the best goes first, the second-best last, and the rest
alternate inward: ``[d1, d3, d5, …, d6, d4, d2]``. Haystack's ``LostInTheMiddleRanker`` does the
same; LangChain's and LlamaIndex's ``LongContextReorder`` give the mirror image for even k (the
best passage last), which is why this is not delegated to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from retrieval.documents import Chunk

T = TypeVar("T")

PassageOrder = Literal["score", "document", "long-context"]
"""How to order retrieved passages: best-first, reading order, or the long-context order above."""


@dataclass(frozen=True)
class ScoredPassage:
    """A passage and its retrieval score (higher is better; cosine similarity, BM25 or RRF)."""

    chunk: Chunk
    """The passage, with its provenance."""
    score: float
    """The retriever's score for the query; only comparable within one ranking."""


def reorder_for_long_context(items: Sequence[T]) -> list[T]:
    """Items sorted best-first, rearranged so the best come first and last, the weakest in the middle.

    Odd ranks (1st, 3rd, 5th, …) fill the front in order; even ranks (2nd, 4th, …) fill the back
    from the end inward, so the second-best is last.

    >>> reorder_for_long_context([1, 2, 3, 4, 5, 6])
    [1, 3, 5, 6, 4, 2]
    >>> reorder_for_long_context([1, 2, 3])
    [1, 3, 2]
    """
    front = list(items[0::2])
    back = list(items[1::2])
    return front + back[::-1]


def order_passages(scored: Sequence[ScoredPassage], order: PassageOrder) -> list[ScoredPassage]:
    """``scored`` (any order) as the model should read it.

    - ``"score"``: best-first; equal scores keep their given order.
    - ``"document"``: reading order, by document then by position in it.
    - ``"long-context"``: :func:`reorder_for_long_context` of the best-first order.

    >>> from retrieval.documents import Chunk
    >>> def passage(id, start, score):
    ...     return ScoredPassage(Chunk(id, 0, "a.txt", "x", start, start + 1, 1), score)
    >>> ranked = [passage("p0", 0, 0.2), passage("p1", 1, 0.9), passage("p2", 2, 0.5)]
    >>> [p.chunk.id for p in order_passages(ranked, "score")]
    ['p1', 'p2', 'p0']
    >>> [p.chunk.id for p in order_passages(ranked, "long-context")]
    ['p1', 'p0', 'p2']
    """
    if order == "score":
        return sorted(scored, key=lambda passage: -passage.score)
    if order == "document":
        return sorted(scored, key=lambda passage: (passage.chunk.document_index, passage.chunk.char_start))
    if order == "long-context":
        return reorder_for_long_context(order_passages(scored, "score"))
    raise ValueError(f"unknown passage order {order!r}; expected 'score', 'document' or 'long-context'")


__all__ = ["PassageOrder", "ScoredPassage", "order_passages", "reorder_for_long_context"]
