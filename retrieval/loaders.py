"""Read input files (text, Markdown, PDF, DOCX, HTML) into :class:`Document` objects.

There is one extractor per format; each takes the file's bytes and returns the text and, for
PDFs, the page spans. :func:`load_document` picks the extractor by extension, :func:`load_bytes`
(for uploads) by the content's magic bytes, checked against the name's extension.

Text is normalised lightly: ``\\r\\n`` becomes ``\\n`` and trailing spaces of lines are removed.
Nothing else is rewritten, so offsets and page spans refer to ``Document.text``.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import docx
from bs4 import BeautifulSoup
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from lxml.etree import LxmlError
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from agents.errors import (
    EmptyDocumentError,
    InputError,
    MissingDependencyError,
    UnreadableFileError,
    UnsupportedFileError,
)
from retrieval.documents import SUPPORTED_SUFFIXES, Document, PageSpan

Extracted = tuple[str, tuple[PageSpan, ...]]
"""An extractor's result: the normalised text and its page spans (empty without pages)."""

PAGE_SEPARATOR = "\n\n"
"""What joins the texts of consecutive PDF pages."""

_FAMILIES: dict[str, str] = {
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}
"""The format family of each supported extension."""

_ACCEPTED_CONTENT: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "html"}),  # HTML source is still readable as plain text
    "pdf": frozenset({"pdf"}),
    "docx": frozenset({"docx"}),
    "html": frozenset({"html", "text"}),  # fragments without <html> are detected as text
}
"""For each extension family, the detected content kinds that :func:`load_bytes` accepts."""

# pypdf raises more than PyPdfError on damaged files (bad xref tables, truncated streams).
_PDF_ERRORS: tuple[type[Exception], ...] = (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError)
_DOCX_ERRORS: tuple[type[Exception], ...] = (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, LxmlError)
_HTML_START = re.compile(r"\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html)", re.IGNORECASE | re.DOTALL)
_BLANK_RUNS = re.compile(r"\n{3,}")
_DROPPED_TAGS = ("script", "style", "noscript", "template")
_SUPPORTED = ", ".join(SUPPORTED_SUFFIXES)
_ENCRYPTED_HELP = "remove the password first, e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`"


def load_document(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Document:
    """Read the file at ``path`` and extract its text, choosing the format by extension.

    Raises ``UnreadableFileError`` (missing, a directory, unreadable, corrupt, encrypted),
    ``UnsupportedFileError`` (unknown extension), ``EmptyDocumentError`` (no text) and
    ``InputError`` (larger than ``max_bytes``).
    """
    file = Path(path)
    try:
        found = file.exists()
    except OSError as error:  # e.g. a whole text passed where a path belongs: "File name too long"
        shown = str(path) if len(str(path)) <= 80 else f"{str(path)[:60]}… ({len(str(path)):,} characters)"
        raise UnreadableFileError(
            f"{shown}: not a usable file path ({error.strerror or error})",
            help="pass a path, or pass text as Document(source='name.txt', text=...)",
        ) from error
    if not found:
        raise UnreadableFileError(f"{path}: file not found", help="check the path and the spelling of the file name")
    if file.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a file", help="pass the documents inside it one by one")
    family = _family_of(file.name, str(path))
    try:
        size = file.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(
                f"{path}: file is {size:,} bytes, larger than the limit of {max_bytes:,} bytes",
                help="split the document into smaller files or raise the size limit",
            )
        data = file.read_bytes()
    except OSError as error:
        raise UnreadableFileError(
            f"{path}: cannot be read: {error.strerror or error}", help="check that the file exists and you may read it"
        ) from error
    text, pages = _EXTRACTORS[family](data, str(path))
    return _make_document(file.name, text, pages, str(path))


def load_documents(paths: Iterable[str | os.PathLike[str]]) -> list[Document]:
    """Load each path in order with :func:`load_document`; the first error propagates."""
    return [load_document(path) for path in paths]


def load_bytes(name: str, data: bytes) -> Document:
    """Extract the text of an uploaded file called ``name``, choosing the format by content.

    The content kind (PDF, DOCX, HTML or UTF-8 text) must fit the extension of ``name``; a name
    without an extension takes the detected kind. Raises ``UnsupportedFileError`` on a mismatch
    or unknown content, and the errors of the extractors otherwise. ``Document.path`` is ``None``.
    """
    kind = _detect_kind(data)
    if kind is None:
        raise UnsupportedFileError(
            f"{name}: content is not PDF, DOCX, HTML or UTF-8 text", help=f"upload one of: {_SUPPORTED}"
        )
    if Path(name).suffix:
        family = _family_of(name, name)
        if kind not in _ACCEPTED_CONTENT[family]:
            raise UnsupportedFileError(
                f"{name}: content looks like {kind.upper()}, which does not match the extension {Path(name).suffix!r}",
                help="give the file the extension of its real type, or upload the right file",
            )
        kind = family
    text, pages = _EXTRACTORS[kind](data, name)
    return _make_document(name, text, pages, None)


def _detect_kind(data: bytes) -> str | None:
    """Content kind of ``data`` from its magic bytes: ``pdf``, ``docx``, ``html``, ``text`` or ``None``."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(data) else None
    head = data[:2048].removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    if _HTML_START.match(head):
        return "html"
    return "text" if _as_utf8(data) is not None else None


def _is_docx(data: bytes) -> bool:
    """Whether ``data`` is a zip archive holding ``word/document.xml``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _family_of(name: str, label: str) -> str:
    """The format family of ``name``'s extension, or ``UnsupportedFileError``."""
    suffix = Path(name).suffix.lower()
    if suffix not in _FAMILIES:
        raise UnsupportedFileError(
            f"{label}: unsupported file type {suffix or '(no extension)'!r}",
            help=f"docqa reads {_SUPPORTED}; convert the file to one of these",
        )
    return _FAMILIES[suffix]


def _make_document(source: str, text: str, pages: tuple[PageSpan, ...], path: str | None) -> Document:
    """Build the ``Document``, or raise ``EmptyDocumentError`` if ``text`` is only whitespace."""
    if not text.strip():
        raise EmptyDocumentError(
            f"{path or source}: no extractable text",
            help="for a scanned PDF run OCR first, e.g. `ocrmypdf in.pdf out.pdf`; otherwise check the file's content",
        )
    return Document(source=source, text=text, pages=pages, path=path)


def _normalise(text: str) -> str:
    """Turn ``\\r\\n`` into ``\\n`` and strip trailing spaces and tabs of each line."""
    return "\n".join(line.rstrip(" \t") for line in text.replace("\r\n", "\n").split("\n"))


def _as_utf8(data: bytes) -> str | None:
    """``data`` decoded as UTF-8 (a BOM is dropped), or ``None`` if invalid or holding NUL bytes."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _extract_text(data: bytes, label: str) -> Extracted:
    """Plain text or Markdown: UTF-8 with an optional BOM."""
    text = _as_utf8(data)
    if text is None:
        raise UnreadableFileError(
            f"{label}: does not look like UTF-8 text (invalid UTF-8 or NUL bytes)",
            help="save the file as UTF-8 text, or give a binary document its real extension",
        )
    return _normalise(text), ()


def _extract_pdf(data: bytes, label: str) -> Extracted:
    """PDF via pypdf: page texts joined by :data:`PAGE_SEPARATOR`, one span per page."""
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(reader, label)
        texts = [_normalise(page.extract_text() or "") for page in reader.pages]
    except DependencyError as error:
        raise MissingDependencyError(
            f"{label}: encrypted PDF needs an extra package to decrypt: {error}",
            help="install it with `pip install cryptography`, or remove the password (qpdf --decrypt)",
        ) from error
    except _PDF_ERRORS as error:
        raise UnreadableFileError(
            f"{label}: is not a valid PDF: {error}",
            help="check that the file is a complete PDF; re-export or re-download it",
        ) from error
    spans: list[PageSpan] = []
    start = 0
    for number, text in enumerate(texts, start=1):
        spans.append(PageSpan(number, start, start + len(text)))
        start += len(text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(texts), tuple(spans)


def _decrypt(reader: PdfReader, label: str) -> None:
    """Open an encrypted PDF with the empty user password, or raise ``UnreadableFileError``."""
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise UnreadableFileError(f"{label}: encrypted PDF (needs a password)", help=_ENCRYPTED_HELP)


def _extract_docx(data: bytes, label: str) -> Extracted:
    """DOCX via python-docx: paragraphs and table rows (cells joined by tabs), one per line."""
    try:
        document = docx.Document(io.BytesIO(data))
        lines = list(_docx_lines(document.iter_inner_content()))
    except _DOCX_ERRORS as error:
        raise UnreadableFileError(
            f"{label}: is not a valid DOCX file: {error}", help="re-save it from Word or LibreOffice as .docx"
        ) from error
    return _normalise("\n".join(lines)), ()


def _docx_lines(blocks: Iterable[Paragraph | Table]) -> Iterator[str]:
    """Lines of text for body blocks in order; a table gives one line per row."""
    for block in blocks:
        if isinstance(block, Paragraph):
            yield block.text
            continue
        for row in block.rows:
            cells: list[_Cell] = []
            for cell in row.cells:
                if not cells or cell is not cells[-1]:  # a merged cell repeats across its columns
                    cells.append(cell)
            yield "\t".join("\n".join(_docx_lines(cell.iter_inner_content())) for cell in cells)


def _extract_html(data: bytes, label: str) -> Extracted:
    """HTML via BeautifulSoup: visible text and the title, without scripts and styles."""
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    text = _normalise(soup.get_text("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n"), ()


_EXTRACTORS: dict[str, Callable[[bytes, str], Extracted]] = {
    "text": _extract_text,
    "pdf": _extract_pdf,
    "docx": _extract_docx,
    "html": _extract_html,
}
"""The extractor for each format family."""

__all__ = ["load_bytes", "load_document", "load_documents"]
