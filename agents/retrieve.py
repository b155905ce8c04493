"""The retrieve node: index the passages, rank them for the question, and plan what gets read.

``rag`` and ``rag-reorder`` give one answering call the best passages that fit its window (in
score order, or best first and second-best last). ``coa-rag`` gives the workers more passages
than one window holds, in document order, packed into readings of at most a chunk budget each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from agents.errors import InputError
from agents.materials import render_block
from agents.nodes import (
    PipelineContext,
    check_worker_count,
    single_call_budget,
    take_while_fits,
    worker_budget,
)
from agents.state import PipelineState
from retrieval.documents import Chunk, Document
from retrieval.reorder import PassageOrder, ScoredPassage, order_passages


def rank_passages(
    question: str, documents: Sequence[Document], context: PipelineContext, k: int
) -> tuple[list[ScoredPassage], int]:
    """The ``k`` best passages for ``question``, best first, and how many passages there are."""
    from retrieval.embeddings import load_embedder
    from retrieval.index import PassageIndex

    settings = context.settings.retrieval
    embedder = load_embedder(settings.embedding_model)
    index = PassageIndex.build(
        documents,
        embedder,
        passage_tokens=settings.passage_tokens,
        cache_dir=settings.index_dir.expanduser(),
    )
    ranked = index.search(question, k)
    if settings.lexical:
        from retrieval.lexical import bm25_rank, reciprocal_rank_fusion

        ranked = reciprocal_rank_fusion([ranked, bm25_rank(index.passages, question, k)], k)
    return ranked, len(index)


def pack_readings(passages: Sequence[Chunk], budget: int, count_tokens: Any) -> list[list[Chunk]]:
    """Consecutive passages grouped so that each group's rendered blocks fit ``budget`` tokens."""
    readings: list[list[Chunk]] = []
    used = budget + 1
    for passage in passages:
        cost = count_tokens(render_block(passage)) + 1
        if used + cost > budget or not readings:
            readings.append([])
            used = 0
        readings[-1].append(passage)
        used += cost
    return readings


def retrieve_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    started = time.perf_counter()
    question, documents, strategy = state["question"], state["documents"], context.settings.strategy
    if not question:
        raise InputError(
            f"the {strategy} strategy needs a question to retrieve passages for",
            help="ask a question, or summarize with --strategy coa or full",
        )
    count = context.backend.count_tokens
    if strategy == "coa-rag":
        ranked, total = rank_passages(question, documents, context, context.settings.retrieval.coa_top_k)
        budget = worker_budget(question, documents, context)
        in_order = [hit.chunk for hit in order_passages(ranked, "document")]
        readings = pack_readings(in_order, budget.tokens, count)
        check_worker_count(len(readings), budget.tokens, context)
        update: dict[str, Any] = {"readings": readings}
    else:
        ranked, total = rank_passages(question, documents, context, context.settings.retrieval.top_k)
        budget = single_call_budget(question, documents, context)
        fitting = take_while_fits([hit.chunk for hit in ranked], budget.tokens, count)
        kept = ranked[: len(fitting)]
        order: PassageOrder = "long-context" if strategy == "rag-reorder" else "score"
        update = {"context": [hit.chunk for hit in order_passages(kept, order)]}
    timings = {"retrieve_s": time.perf_counter() - started}
    return update | {"passages": ranked, "n_passages": total, "budget": budget.tokens, "timings": timings}
