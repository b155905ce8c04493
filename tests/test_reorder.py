"""Reordering retrieved passages (Jin et al. 2024) and reciprocal rank fusion: pure functions, literal expectations."""

from __future__ import annotations

import pytest

from retrieval.documents import Chunk
from retrieval.lexical import reciprocal_rank_fusion
from retrieval.reorder import ScoredPassage, order_passages, reorder_for_long_context


@pytest.mark.parametrize(
    ("ranked", "expected"),
    [
        ([], []),
        ([1], [1]),
        ([1, 2], [1, 2]),
        ([1, 2, 3], [1, 3, 2]),
        ([1, 2, 3, 4], [1, 3, 4, 2]),
        ([1, 2, 3, 4, 5], [1, 3, 5, 4, 2]),
        ([1, 2, 3, 4, 5, 6], [1, 3, 5, 6, 4, 2]),
        ([1, 2, 3, 4, 5, 6, 7], [1, 3, 5, 7, 6, 4, 2]),
    ],
)
def test_reorder_for_long_context_puts_best_first_and_second_best_last(ranked: list[int], expected: list[int]) -> None:
    assert reorder_for_long_context(ranked) == expected


def test_reorder_for_long_context_is_not_langchains_mirror_for_even_k() -> None:
    # LangChain's LongContextReorder gives [2, 4, 3, 1] here: the best passage last.
    assert reorder_for_long_context(["d1", "d2", "d3", "d4"]) == ["d1", "d3", "d4", "d2"]


def test_reorder_for_long_context_keeps_every_item_once() -> None:
    items = [f"d{i}" for i in range(1, 12)]
    assert sorted(reorder_for_long_context(items)) == sorted(items)
    assert reorder_for_long_context(tuple(items))[0] == "d1"


def _passage(id: str, score: float, document_index: int = 0, char_start: int = 0) -> ScoredPassage:
    chunk = Chunk(id, 0, f"doc{document_index}.txt", "text", char_start, char_start + 4, 1, None, None, document_index)
    return ScoredPassage(chunk, score)


# Retrieved in no particular order: p-ids name reading order, scores say the retriever's ranking
# (best p3 0.9, then p0 0.8, p4 0.7, p1 0.6, p2 0.5).
RETRIEVED = [
    _passage("p4", 0.7, document_index=1, char_start=0),
    _passage("p1", 0.6, document_index=0, char_start=100),
    _passage("p3", 0.9, document_index=0, char_start=300),
    _passage("p0", 0.8, document_index=0, char_start=0),
    _passage("p2", 0.5, document_index=0, char_start=200),
]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("score", ["p3", "p0", "p4", "p1", "p2"]),
        ("document", ["p0", "p1", "p2", "p3", "p4"]),
        ("long-context", ["p3", "p4", "p2", "p1", "p0"]),
    ],
)
def test_order_passages(order: str, expected: list[str]) -> None:
    ordered = order_passages(RETRIEVED, order)  # type: ignore[arg-type]
    assert [passage.chunk.id for passage in ordered] == expected
    assert RETRIEVED[0].chunk.id == "p4"  # the input is not sorted in place


def test_order_passages_by_score_keeps_given_order_for_ties() -> None:
    tied = [_passage("a", 0.5), _passage("b", 0.9), _passage("c", 0.5)]
    assert [p.chunk.id for p in order_passages(tied, "score")] == ["b", "a", "c"]


def test_order_passages_rejects_unknown_order() -> None:
    with pytest.raises(ValueError, match="unknown passage order"):
        order_passages(RETRIEVED, "random")  # type: ignore[arg-type]


def test_reciprocal_rank_fusion_hand_worked() -> None:
    dense = [_passage("a", 0.91), _passage("b", 0.80), _passage("c", 0.42)]
    lexical = [_passage("c", 12.0), _passage("d", 7.5), _passage("a", 1.0)]
    # c=60, ranks from 1:
    #   a: 1/61 + 1/63 = 0.0322665...   c: 1/63 + 1/61 = 0.0322665...  (tie: a was seen first)
    #   b: 1/62 = 0.0161290...          d: 1/62 = 0.0161290...         (tie: b was seen first)
    fused = reciprocal_rank_fusion([dense, lexical], k=4)
    assert [p.chunk.id for p in fused] == ["a", "c", "b", "d"]
    assert [p.score for p in fused] == pytest.approx([1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 1 / 62, 1 / 62])
    assert fused[0].score == pytest.approx(0.0322665, abs=1e-7)
    assert fused[2].score == pytest.approx(0.0161290, abs=1e-7)


def test_reciprocal_rank_fusion_small_c_and_cut_to_k() -> None:
    first = [_passage("x", 1.0), _passage("y", 1.0), _passage("z", 1.0)]
    second = [_passage("z", 1.0), _passage("y", 1.0)]
    # c=1: x = 1/2; y = 1/3 + 1/3 = 0.6667; z = 1/4 + 1/2 = 0.75
    fused = reciprocal_rank_fusion([first, second], k=2, c=1)
    assert [(p.chunk.id, round(p.score, 4)) for p in fused] == [("z", 0.75), ("y", 0.6667)]


def test_reciprocal_rank_fusion_of_nothing() -> None:
    assert reciprocal_rank_fusion([], k=5) == []
    assert reciprocal_rank_fusion([[], []], k=5) == []
    assert reciprocal_rank_fusion([[_passage("a", 1.0)]], k=0) == []
