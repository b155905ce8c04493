"""Token-aware chunking: contiguous runs of whole sentences, in source order, within a budget.

Chunks of one document cover its text exactly once: concatenating their texts gives back the
document. A sentence longer than the budget is split at word boundaries (a word longer than the
budget at characters); nothing is ever dropped. Every chunk's length is checked with the
backend's own tokenizer, so the budget holds for the real model, not an estimate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.documents import Chunk, Document

CountTokens = Callable[[str], int]

# A sentence ends at . ! ? or … (optionally followed by closing quotes or brackets) plus
# whitespace, or at a blank line. The whitespace stays with the sentence before it.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])[\"'\u201d\u2019)\]]*\s+|\n[ \t]*\n\s*")
_WORD = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences in ``text``; together they cover it exactly.

    >>> text = "One. Two!\\n\\nThree"
    >>> [text[s:e] for s, e in split_sentences(text)]
    ['One. ', 'Two!\\n\\n', 'Three']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start and match.start() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        if spans and not text[start:].strip():
            spans[-1] = (spans[-1][0], len(text))
        else:
            spans.append((start, len(text)))
    return spans


def _split_oversize(text: str, start: int, end: int, budget: int, count: CountTokens) -> list[_Span]:
    """Cut ``text[start:end]`` at word boundaries (characters if need be) into spans within budget."""
    pieces: list[_Span] = []
    for match in _WORD.finditer(text, start, end):
        tokens = count(match.group())
        if tokens <= budget:
            pieces.append(_Span(match.start(), match.end(), tokens))
        else:
            pieces.extend(_split_characters(text, match.start(), match.end(), budget, count))
    return _pack(text, pieces, budget, count)


def _split_characters(text: str, start: int, end: int, budget: int, count: CountTokens) -> list[_Span]:
    """Cut one over-long word into the longest prefixes that fit, by binary search."""
    spans: list[_Span] = []
    while start < end:
        low, high = start + 1, end
        while low < high:
            mid = (low + high + 1) // 2
            if count(text[start:mid]) <= budget:
                low = mid
            else:
                high = mid - 1
        spans.append(_Span(start, low, count(text[start:low])))
        start = low
    return spans


def _pack(text: str, units: Sequence[_Span], budget: int, count: CountTokens) -> list[_Span]:
    """Greedily join consecutive units while the joined text stays within budget."""
    packed: list[_Span] = []
    i = 0
    while i < len(units):
        j, total = i + 1, units[i].tokens
        while j < len(units) and total + units[j].tokens <= budget:
            total += units[j].tokens
            j += 1
        # Token counts of parts need not add up to the count of the whole: check the real text.
        while True:
            tokens = count(text[units[i].start : units[j - 1].end]) if j - i > 1 else units[i].tokens
            if tokens <= budget or j - i == 1:
                break
            j -= 1
        packed.append(_Span(units[i].start, units[j - 1].end, tokens))
        i = j
    return packed


def chunk_text(text: str, budget: int, count: CountTokens) -> list[tuple[int, int, int]]:
    """Cut ``text`` into ``(start, end, tokens)`` chunks of whole sentences, each within ``budget``.

    >>> words = lambda s: len(s.split())
    >>> text = "A b c. D e. F g h i."
    >>> [text[s:e] for s, e, _ in chunk_text(text, 5, words)]
    ['A b c. D e. ', 'F g h i.']
    """
    if budget < 1:
        raise ValueError(f"chunk budget must be positive, got {budget}")
    units: list[_Span] = []
    for start, end in split_sentences(text):
        tokens = count(text[start:end])
        if tokens <= budget:
            units.append(_Span(start, end, tokens))
        else:
            units.extend(_split_oversize(text, start, end, budget, count))
    return [(span.start, span.end, span.tokens) for span in _pack(text, units, budget, count)]


def chunks_from_spans(
    documents: Sequence[Document], spans: Sequence[Sequence[tuple[int, int, int]]], prefix: str = "c"
) -> list[Chunk]:
    """``Chunk`` objects for each document's ``(start, end, tokens)`` spans, numbered over the set.

    >>> doc = Document("a.txt", "One. Two.")
    >>> [(c.id, c.text) for c in chunks_from_spans([doc], [[(0, 5, 2), (5, 9, 2)]], prefix="p")]
    [('p0', 'One. '), ('p1', 'Two.')]
    """
    chunks: list[Chunk] = []
    for doc_index, (document, doc_spans) in enumerate(zip(documents, spans, strict=True)):
        for start, end, tokens in doc_spans:
            page_start, page_end = document.pages_between(start, end)
            chunks.append(
                Chunk(
                    id=f"{prefix}{len(chunks)}",
                    index=len(chunks),
                    source=document.source,
                    text=document.text[start:end],
                    char_start=start,
                    char_end=end,
                    n_tokens=tokens,
                    page_start=page_start,
                    page_end=page_end,
                    document_index=doc_index,
                )
            )
    return chunks


def chunk_documents(documents: Sequence[Document], budget: int, count: CountTokens, prefix: str = "c") -> list[Chunk]:
    """Chunks of all documents in reading order, ids ``c0, c1, …``; a chunk never spans two documents."""
    return chunks_from_spans(documents, [chunk_text(d.text, budget, count) for d in documents], prefix)
