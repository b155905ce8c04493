"""One validated settings object for the whole pipeline.

Values come, in order of precedence, from keyword arguments (the CLI and UI pass theirs this way),
environment variables prefixed ``DOCQA_`` with ``__`` between sections
(e.g. ``DOCQA_CHUNKING__CHUNK_TOKENS=800``), and the defaults below. For the OpenAI-compatible
backend, the usual ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` fill the base URL and key when no
docqa setting gives them. This module is the only place that reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BackendKind = Literal["llamacpp", "openai", "transformers"]
KVCacheType = Literal["f16", "q8_0", "q4_0"]
Compression = Literal["none", "fp8", "quantized", "snapkv", "homer"]
Strategy = Literal["coa", "full", "rag", "rag-reorder", "coa-rag"]
STRATEGIES: tuple[Strategy, ...] = ("coa", "full", "rag", "rag-reorder", "coa-rag")
"""``coa``: Chain-of-Agents over every chunk. ``full``: as much of the text as fits one window.
``rag``: the top passages that fit one window, best first. ``rag-reorder``: the same passages,
best first and second-best last (Jin et al. 2024). ``coa-rag``: workers read only retrieved
passages, in document order."""
DEFAULT_INDEX_DIR = Path("~/.cache/docqa/index")
DEFAULT_CALIBRATION_FILE = Path("~/.cache/docqa/calibration.json")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendSettings(_Section):
    """Which model answers, and how it is reached."""

    kind: BackendKind = "llamacpp"
    """``llamacpp``: a GGUF file run in-process; ``openai``: any OpenAI-compatible endpoint;
    ``transformers``: a GGUF file or Hugging Face folder run by transformers, with a compressed cache."""
    model_path: Path | None = None
    """GGUF file (or, for ``transformers``, a model folder); unset means the embedded SmolLM2-135M-Instruct."""
    model: str | None = None
    """Model name sent to an OpenAI-compatible endpoint (e.g. ``gpt-4o-mini``)."""
    base_url: str | None = None
    """Endpoint URL, e.g. ``http://127.0.0.1:8000/v1``; unset means OpenAI's own."""
    api_key: SecretStr | None = None
    """Key for the endpoint. Never logged or written to disk."""
    context_window: int | None = Field(default=None, ge=256)
    """Model window in tokens; unset means the GGUF file's own, or 8192 for remote models."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, ge=1.0, le=2.0)
    """Penalty on the tokens a reply has written so far (llama.cpp's ``repeat_penalty``, over its last
    64 tokens: a positive logit is divided by it, a negative one multiplied); 1.0 is none. Small models
    decoding greedily can loop ("[c2] [c2] [c2] …"); 1.1 is the usual cure. Unset means none for local
    models, and the endpoint's own default for remote ones, which are sent it only when it is set (as
    ``repeat_penalty``: llama.cpp servers read it, default 1.1; OpenAI's own API refuses it)."""
    seed: int = 0
    timeout_s: float = Field(default=300.0, gt=0)
    """Per-call timeout for remote models."""
    max_retries: int = Field(default=3, ge=0, le=10)
    """Retries for transient failures (timeouts, rate limits, server errors)."""
    n_threads: int | None = Field(default=None, ge=1)
    """CPU threads for local models; unset means every core."""
    kv_type: KVCacheType = "f16"
    """llama.cpp KV-cache type for keys and values. ``q8_0`` halves the cache (measured from 2k to 32k
    tokens: kept every passkey, read prompts 2x to 5x slower on a CPU); ``q4_0`` quarters it and lost
    passkeys at every length."""
    flash_attn: bool = True
    """llama.cpp flash attention; ``q8_0`` and ``q4_0`` need it. Measured with an f16 cache on a CPU
    (``bench/kv_compression.py``, Qwen2.5-Coder-0.5B): it never holds a whole attention matrix, so the
    peak memory is 0.95x at 2k tokens, 0.86x at 4k, 0.73x at 8k, 0.58x at 16k and 0.45x at 32k of what
    it is without, at 0.91x to 1.08x the prompt speed. Off reproduces the answers of docqa before
    25 November 2026, when it became the default."""
    compression: Compression = "none"
    """KV-cache compression for the ``transformers`` backend. ``snapkv`` keeps the ``cache_budget``
    positions the question attends to; ``homer`` merges up to 4 chunks into that budget and reads past
    the model's window; ``fp8`` and ``quantized`` keep every position in 8-bit floats (a quarter of the
    float32 cache) and 4-bit integers (a sixth). Measured on Qwen2.5-Coder-0.5B (``bench/``): ``snapkv``
    changed 1 of 20 real answers, ``fp8`` kept every passkey but changed 7 of 20 answers, and
    ``quantized`` lost passkeys at every length (all of them at 16k and 32k)."""
    cache_budget: int = Field(default=1024, ge=16)
    """Cached tokens kept by ``snapkv`` and ``homer`` (per layer and head). ``homer`` reads up to 4 chunks of
    this size in one call, so raise it to read more in one call."""


class ChunkingSettings(_Section):
    """How documents are cut into chunks for the workers."""

    chunk_tokens: int | None = Field(default=None, ge=32)
    """Cap on a chunk's size in tokens, below the budget the window allows. Small models read far
    less than their nominal window, so this is the main accuracy knob. Unset means the model's
    calibrated effective window (``docqa calibrate``) if one is stored, else the backend's
    recommendation (512 for the embedded SmolLM2, 1024 for other local GGUF models, the whole
    budget for remote models)."""
    use_calibration: bool = True
    """Let a stored calibration set the chunk size when ``chunk_tokens`` is unset."""
    calibration_file: Path = DEFAULT_CALIBRATION_FILE
    """Where ``docqa calibrate`` stores each model's effective window."""


class WorkerSettings(_Section):
    """The Chain-of-Agents workers."""

    max_tokens: int = Field(default=256, ge=16)
    """Longest note a worker may write. The next worker's prompt reserves as much for it."""
    max_workers: int = Field(default=200, ge=1)
    """Refuse documents that need more chunks than this (one model call each)."""


class RetrievalSettings(_Section):
    """Passages, embeddings and the index, for the retrieval strategies."""

    embedding_model: str | None = None
    """A sentence-transformers model name or folder; unset means the bundled all-MiniLM-L6-v2."""
    passage_tokens: int | None = Field(default=None, ge=16)
    """Passage size in the embedder's tokens; unset (and never more than) what it embeds whole."""
    top_k: int = Field(default=8, ge=1)
    """Passages for ``rag`` and ``rag-reorder`` (fewer if they do not fit the window)."""
    coa_top_k: int = Field(default=24, ge=1)
    """Passages the workers read in ``coa-rag``."""
    lexical: bool = False
    """Fuse BM25 with the dense ranking (reciprocal-rank fusion); helps with names, numbers, codes."""
    index_dir: Path = DEFAULT_INDEX_DIR
    """Where embeddings are cached, one entry per document, embedder and passage size."""


class ManagerSettings(_Section):
    """The manager that writes the final answer."""

    max_tokens: int = Field(default=384, ge=16)
    """Longest answer the manager may write."""


class Settings(BaseSettings):
    """Everything docqa can be told. Build once and pass it in; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="DOCQA_", env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    strategy: Strategy = "coa"
    """How the documents are read; see ``STRATEGIES``."""
    backend: BackendSettings = BackendSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    workers: WorkerSettings = WorkerSettings()
    manager: ManagerSettings = ManagerSettings()
    prompts_dir: Path | None = None
    """Folder with prompt files that replace the bundled ones of the same name."""

    @model_validator(mode="after")
    def _openai_environment(self) -> Settings:
        if self.backend.kind == "openai":
            if self.backend.base_url is None and os.environ.get("OPENAI_BASE_URL"):
                self.backend.base_url = os.environ["OPENAI_BASE_URL"]
            if self.backend.api_key is None and os.environ.get("OPENAI_API_KEY"):
                self.backend.api_key = SecretStr(os.environ["OPENAI_API_KEY"])
        return self
