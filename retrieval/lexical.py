"""Lexical retrieval (BM25) and reciprocal rank fusion with dense results.

Dense embeddings blur exact strings: a part number, a code word or a date may rank low even in
the passage that holds it. BM25 scores exact term matches, so fusing both rankings finds such
passages without losing the paraphrase matches that dense retrieval is good at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.errors import MissingDependencyError
from retrieval.documents import Chunk
from retrieval.reorder import ScoredPassage


def bm25_rank(passages: Sequence[Chunk], query: str, k: int) -> list[ScoredPassage]:
    """The ``k`` passages that score highest for ``query`` under BM25, best-first.

    English stopwords are dropped and text is lowercased. Passages sharing no term with the
    query score 0 and are left out, so fewer than ``k`` may come back.
    """
    if k < 1 or not passages:
        return []
    bm25s = _import_bm25s()
    retriever = bm25s.BM25()
    corpus_tokens = bm25s.tokenize([passage.text for passage in passages], stopwords="en", show_progress=False)
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
    rows, scores = retriever.retrieve(query_tokens, k=min(k, len(passages)), show_progress=False)
    return [
        ScoredPassage(passages[int(row)], float(score))
        for row, score in zip(rows[0], scores[0], strict=True)
        if score > 0
    ]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[ScoredPassage]], k: int, c: int = 60) -> list[ScoredPassage]:
    """Fuse best-first rankings into one: each passage scores ``Σ 1/(c + rank)``, rank from 1.

    Passages are the same when their chunk ids are; the fused list keeps the first one seen,
    with the fused score. Equal scores keep the order of first appearance (ranking by ranking).

    >>> from retrieval.documents import Chunk
    >>> def ranked(*ids):
    ...     return [ScoredPassage(Chunk(i, 0, "a.txt", "x", 0, 1, 1), 1.0) for i in ids]
    >>> fused = reciprocal_rank_fusion([ranked("a", "b"), ranked("b", "c")], k=3, c=1)
    >>> [(p.chunk.id, round(p.score, 3)) for p in fused]
    [('b', 0.833), ('a', 0.5), ('c', 0.333)]
    """
    fused: dict[str, ScoredPassage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, start=1):
            seen = fused.get(passage.chunk.id)
            total = (seen.score if seen else 0.0) + 1.0 / (c + rank)
            fused[passage.chunk.id] = ScoredPassage(seen.chunk if seen else passage.chunk, total)
    return sorted(fused.values(), key=lambda passage: -passage.score)[: max(k, 0)]


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError as error:
        raise MissingDependencyError(f"BM25 retrieval needs bm25s ({error})", help="pip install bm25s") from error
    return bm25s


__all__ = ["bm25_rank", "reciprocal_rank_fusion"]
