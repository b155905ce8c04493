"""Loaded documents and the chunks cut from them, with their provenance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpan:
    """The characters ``text[start:end]`` of a document that came from page ``page`` (1-based)."""

    page: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """The text of one input file, with the page each character came from where the format has pages.

    >>> Document(source="a.txt", text="Hello.").pages
    ()
    """

    source: str
    """Display name: the file name for files, or a label given by the caller."""
    text: str
    """The extracted text. Chunks are slices of it, so offsets into it are stable."""
    pages: tuple[PageSpan, ...] = ()
    """Page spans in order, covering ``text``; empty for formats without pages."""
    path: str | None = None
    """Where the document was read from, if it came from a file."""

    def pages_between(self, start: int, end: int) -> tuple[int | None, int | None]:
        """First and last page that overlap ``text[start:end]``; ``(None, None)`` without pages.

        >>> doc = Document("a.pdf", "abcdef", (PageSpan(1, 0, 3), PageSpan(2, 3, 6)))
        >>> doc.pages_between(1, 5)
        (1, 2)
        """
        hits = [span.page for span in self.pages if span.start < max(end, start + 1) and span.end > start]
        if not hits:
            return (None, None)
        return (hits[0], hits[-1])


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of whole sentences from one document, sized to the model's window."""

    id: str
    """Stable id within one run, e.g. ``"c3"``: the chunk's index in reading order."""
    index: int
    """Position in reading order over all documents, from 0."""
    source: str
    """The document's display name."""
    text: str
    """Exactly ``document.text[char_start:char_end]``."""
    char_start: int
    char_end: int
    n_tokens: int
    """Length in the backend's tokens."""
    page_start: int | None = None
    page_end: int | None = None
    document_index: int = 0
    """Which of the run's documents it came from."""

    @property
    def location(self) -> str:
        """Human-readable provenance, e.g. ``"report.pdf p. 3-4, chars 1200-4810"``."""
        where = self.source
        if self.page_start is not None:
            pages = f"{self.page_start}" if self.page_start == self.page_end else f"{self.page_start}-{self.page_end}"
            where += f" p. {pages}"
        return f"{where}, chars {self.char_start}-{self.char_end}"


SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm")
"""File types ``load_document`` reads, by extension."""

__all__ = ["SUPPORTED_SUFFIXES", "Chunk", "Document", "PageSpan"]
