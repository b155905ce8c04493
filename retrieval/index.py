"""A FAISS index of passages, with its embeddings cached on disk one document at a time.

Passages are contiguous runs of whole sentences cut to the embedder's passage budget, so every
wordpiece of a passage is embedded (see ``retrieval.embeddings``). Similarity is cosine: the
vectors have unit length and ``faiss.IndexFlatIP`` takes inner products, exactly, no approximation.

Cache layout, one folder per document under ``cache_dir``::

    <cache_dir>/<key>/manifest.json    format, model, dimension, passage budget, count, checksums
    <cache_dir>/<key>/passages.json    {"spans": [[char_start, char_end, n_tokens], ...]}
    <cache_dir>/<key>/vectors.npy      float32 array (count, dimension)

``key`` is the sha256 of the document text, the embedder name, the passage budget and
:data:`FORMAT_VERSION`. An entry holds no file name, so a renamed or re-uploaded document still
hits; its provenance (source, pages, document position) is taken from the document given now.
An entry is written to a temporary folder and moved into place with ``os.replace``, so readers
see a whole entry or none. A corrupt or mismatched entry is logged, deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.errors import MissingDependencyError
from retrieval.chunking import chunk_documents, chunk_text, chunks_from_spans
from retrieval.documents import Chunk, Document
from retrieval.embeddings import Embedder, ProgressCallback
from retrieval.reorder import ScoredPassage

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the cache layout or the passage splitting changes: old entries then miss, not mislead."""

_MANIFEST, _PASSAGES, _VECTORS = "manifest.json", "passages.json", "vectors.npy"

Span = tuple[int, int, int]
"""``(char_start, char_end, n_tokens)`` of one passage within its document."""


def split_passages(documents: Sequence[Document], embedder: Embedder, passage_tokens: int | None = None) -> list[Chunk]:
    """Passages of all documents in reading order, ids ``p0, p1, …``, each embeddable whole.

    ``passage_tokens`` may lower the embedder's :attr:`~retrieval.embeddings.Embedder.passage_budget`,
    never raise it.
    """
    return chunk_documents(documents, passage_budget(embedder, passage_tokens), embedder.count_tokens, prefix="p")


def passage_budget(embedder: Embedder, passage_tokens: int | None = None) -> int:
    """Wordpieces allowed per passage: ``passage_tokens`` capped at what the embedder embeds whole."""
    if passage_tokens is not None and passage_tokens < 1:
        raise ValueError(f"passage_tokens must be positive, got {passage_tokens}")
    return min(passage_tokens or embedder.passage_budget, embedder.passage_budget)


def cache_key(text: str, embedder_name: str, budget: int) -> str:
    """The cache folder name of a document's passages: a sha256 over everything they depend on."""
    digest = hashlib.sha256()
    header = {"format": FORMAT_VERSION, "model": embedder_name, "passage_budget": budget}
    digest.update(json.dumps(header, sort_keys=True).encode("utf-8") + b"\0")
    digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class _Entry:
    """One document's passages (as spans of its text) and their embeddings, row per passage."""

    spans: list[Span]
    vectors: np.ndarray


class _CorruptEntry(Exception):
    """A cache entry that must not be used; the message says why."""


class PassageIndex:
    """Passages of a set of documents and a FAISS index of their embeddings.

    Build one with :meth:`build`; :meth:`search` returns passages best-first by cosine similarity::

        index = PassageIndex.build([document], load_embedder(), cache_dir=Path(".docqa-cache"))
        [(hit.chunk.id, round(hit.score, 2)) for hit in index.search("When was the light first lit?", 2)]
        # [('p2', 0.52), ('p13', 0.5)] for samples/harbor_light_report.md
    """

    def __init__(self, passages: Sequence[Chunk], vectors: np.ndarray, embedder: Embedder, *, embedded_count: int = 0):
        if vectors.shape != (len(passages), embedder.dimension):
            raise ValueError(f"vectors of shape {vectors.shape} do not fit {len(passages)} passages")
        faiss = _import_faiss()
        self._passages = list(passages)
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._faiss_index = faiss.IndexFlatIP(embedder.dimension)
        self._faiss_index.add(self._vectors)
        self.embedder = embedder
        """The model that embedded the passages; queries must use the same one."""
        self.embedded_count = embedded_count
        """How many passages :meth:`build` embedded, rather than loaded from the cache."""

    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        embedder: Embedder,
        *,
        passage_tokens: int | None = None,
        cache_dir: Path | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> PassageIndex:
        """Split, embed and index ``documents``, reusing and filling the cache in ``cache_dir`` if given.

        Only documents without a usable cache entry are embedded; ``on_progress(done, total)``
        counts their passages.
        """
        budget = passage_budget(embedder, passage_tokens)
        keys = [cache_key(document.text, embedder.name, budget) for document in documents]
        entries: dict[str, _Entry] = {}
        if cache_dir is not None:
            for key, document in zip(keys, documents, strict=True):
                entry = _load_entry(Path(cache_dir) / key, document.text, embedder, budget)
                if entry is not None:
                    entries[key] = entry
        missing = {key: document for key, document in zip(keys, documents, strict=True) if key not in entries}
        new_entries = _embed_documents(list(missing.values()), embedder, budget, on_progress)
        for key, entry in zip(missing, new_entries, strict=True):
            entries[key] = entry
            if cache_dir is not None:
                _write_entry(Path(cache_dir) / key, entry, missing[key].text, embedder, budget)
        passages = chunks_from_spans(documents, [entries[key].spans for key in keys], prefix="p")
        vectors = np.concatenate([entries[key].vectors for key in keys] or [np.zeros((0, embedder.dimension))])
        embedded = sum(len(entry.spans) for entry in new_entries)
        return cls(passages, vectors.astype(np.float32), embedder, embedded_count=embedded)

    @property
    def passages(self) -> list[Chunk]:
        """All passages in reading order (document by document), ids ``p0, p1, …``."""
        return list(self._passages)

    @property
    def vectors(self) -> np.ndarray:
        """The passages' embeddings, row ``i`` for passage ``i`` (a read-only view)."""
        view = self._vectors.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return len(self._passages)

    def search(self, query: str, k: int) -> list[ScoredPassage]:
        """The ``k`` passages most similar to ``query`` (fewer if the index is smaller), best-first."""
        if k < 1 or not self._passages:
            return []
        query_vector = self.embedder.embed_query(query).reshape(1, -1)
        scores, rows = self._faiss_index.search(query_vector, min(k, len(self._passages)))
        return [
            ScoredPassage(self._passages[row], float(score))
            for score, row in zip(scores[0], rows[0], strict=True)
            if row >= 0
        ]


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:
        raise MissingDependencyError(
            f"dense retrieval needs faiss ({error})", help="pip install 'docqa[retrieval]'"
        ) from error
    return faiss


def _embed_documents(
    documents: Sequence[Document], embedder: Embedder, budget: int, on_progress: ProgressCallback | None
) -> list[_Entry]:
    """Split and embed ``documents`` in one batched pass; one entry per document."""
    spans = [chunk_text(doc.text, budget, embedder.count_tokens) for doc in documents]
    texts = [
        doc.text[start:end] for doc, doc_spans in zip(documents, spans, strict=True) for start, end, _ in doc_spans
    ]
    vectors = embedder.embed(texts, on_progress=on_progress) if texts else np.zeros((0, embedder.dimension), np.float32)
    bounds = np.cumsum([0] + [len(doc_spans) for doc_spans in spans])
    return [_Entry(doc_spans, vectors[bounds[i] : bounds[i + 1]]) for i, doc_spans in enumerate(spans)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_entry(folder: Path, text: str, embedder: Embedder, budget: int) -> _Entry | None:
    """The cached entry in ``folder``, or None if there is none or it is unusable (then it is deleted)."""
    if not folder.exists():
        return None
    try:
        return _read_entry(folder, text, embedder, budget)
    except (_CorruptEntry, OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("index cache entry %s is unusable (%s): deleting and rebuilding it", folder, error)
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _read_entry(folder: Path, text: str, embedder: Embedder, budget: int) -> _Entry:
    """Read and check one entry; raise on anything that does not match what was written."""
    manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    expected = {"format": FORMAT_VERSION, "model": embedder.name, "dimension": embedder.dimension,
                "passage_budget": budget, "text_sha256": _sha256(text.encode("utf-8", "surrogatepass"))}  # fmt: skip
    for field, value in expected.items():
        if manifest.get(field) != value:
            raise _CorruptEntry(f"manifest {field} is {manifest.get(field)!r}, expected {value!r}")
    passages_bytes = (folder / _PASSAGES).read_bytes()
    vector_bytes = (folder / _VECTORS).read_bytes()
    if _sha256(passages_bytes) != manifest["passages_sha256"]:
        raise _CorruptEntry(f"{_PASSAGES} checksum mismatch")
    if _sha256(vector_bytes) != manifest["vectors_sha256"]:
        raise _CorruptEntry(f"{_VECTORS} checksum mismatch")
    spans = _check_spans(json.loads(passages_bytes)["spans"], len(text))
    vectors = np.load(io.BytesIO(vector_bytes), allow_pickle=False)
    if len(spans) != manifest["count"] or vectors.shape != (len(spans), embedder.dimension):
        raise _CorruptEntry(f"{len(spans)} spans, vectors {vectors.shape}, manifest count {manifest['count']}")
    if vectors.dtype != np.float32 or not np.isfinite(vectors).all():
        raise _CorruptEntry(f"vectors of dtype {vectors.dtype} or not finite")
    return _Entry(spans, vectors)


def _check_spans(raw: Any, text_length: int) -> list[Span]:
    """Spans as written: contiguous, covering ``[0, text_length)`` exactly once, as the chunker cuts them."""
    spans = [(int(start), int(end), int(tokens)) for start, end, tokens in raw]
    position = 0
    for start, end, tokens in spans:
        if start != position or end <= start or tokens < 0:
            raise _CorruptEntry(f"passage span {(start, end)} does not continue from {position}")
        position = end
    if position != text_length:
        raise _CorruptEntry(f"passages cover {position} of {text_length} characters")
    return spans


def _write_entry(folder: Path, entry: _Entry, text: str, embedder: Embedder, budget: int) -> None:
    """Write an entry into a temporary folder beside ``folder``, then move it into place atomically."""
    passages_bytes = json.dumps({"spans": entry.spans}).encode("utf-8")
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(entry.vectors, dtype=np.float32), allow_pickle=False)
    vector_bytes = buffer.getvalue()
    manifest = {
        "format": FORMAT_VERSION, "model": embedder.name, "dimension": embedder.dimension,
        "passage_budget": budget, "count": len(entry.spans),
        "text_sha256": _sha256(text.encode("utf-8", "surrogatepass")),
        "passages_sha256": _sha256(passages_bytes), "vectors_sha256": _sha256(vector_bytes),
    }  # fmt: skip
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as error:
        logger.warning("cannot write index cache under %s (%s): continuing without it", folder.parent, error)
        return
    try:
        (staging / _PASSAGES).write_bytes(passages_bytes)
        (staging / _VECTORS).write_bytes(vector_bytes)
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(staging, folder)
    except OSError as error:
        # Another process may have written the same entry first; then ours is not needed.
        if not (folder / _MANIFEST).exists():
            logger.warning("cannot write index cache entry %s (%s): continuing without it", folder, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["FORMAT_VERSION", "PassageIndex", "cache_key", "passage_budget", "split_passages"]
