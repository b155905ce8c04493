"""Turn uploaded files into documents, one at a time, so one bad file never stops the others."""

from __future__ import annotations

from dataclasses import dataclass

from agents.backends import approximate_token_counter
from agents.errors import DocQAError, InputError
from app.limits import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from retrieval.documents import Document
from retrieval.loaders import load_bytes


@dataclass(frozen=True)
class Upload:
    """One file as the browser sent it."""

    file_id: str
    """Streamlit's id for this upload; the same file uploaded twice gets two ids."""
    name: str
    data: bytes


@dataclass(frozen=True)
class LoadedFile:
    """A file that loaded, with what the documents table shows about it."""

    file_id: str
    document: Document
    size_bytes: int
    tokens: int
    """Length in cl100k tokens: an estimate for sizing, the pipeline counts with the model's tokenizer."""

    @property
    def pages(self) -> int | None:
        """Page count for formats with pages (PDF), else ``None``."""
        return len(self.document.pages) or None


@dataclass(frozen=True)
class FailedFile:
    """A file that did not load, and why (a one-line message that names the file)."""

    file_id: str
    name: str
    message: str


def load_upload(upload: Upload) -> LoadedFile | FailedFile:
    """Load one upload, or say why it cannot be used (too large, unsupported, encrypted, no text)."""
    try:
        if len(upload.data) > MAX_UPLOAD_BYTES:
            raise InputError(
                f"{upload.name}: file is {format_size(len(upload.data))}, larger than the {MAX_UPLOAD_MB} MB limit",
                help="split the document into smaller files",
            )
        document = load_bytes(upload.name, upload.data)
    except DocQAError as error:
        return FailedFile(upload.file_id, upload.name, str(error))
    tokens = approximate_token_counter()(document.text)
    return LoadedFile(upload.file_id, document, len(upload.data), tokens)


def format_size(n_bytes: int) -> str:
    """A file size for people.

    >>> format_size(512), format_size(2048), format_size(5 * 1024 * 1024)
    ('512 B', '2.0 KB', '5.0 MB')
    """
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"
