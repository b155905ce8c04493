"""In-process transformers backend with a compressed KV cache (``--backend transformers``).

Loads a llama or qwen2 GGUF file (dequantized to float32; the tokenizer and chat template come from
the same file) or a local Hugging Face folder, never touching the network. The first load of a GGUF
file is slow (transformers parses and dequantizes it in Python: about a minute for SmolLM2 on 2
busy cores), so a converted copy is kept under ``~/.cache/docqa/transformers`` and later loads read
that. The prompt is read by the ``--compression`` method (``agents.compression``), then decoded
token by token: greedy at temperature 0, sampled with ``seed`` otherwise.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

from agents.backends.base import Backend
from agents.backends.llamacpp import embedded_model_path
from agents.backends.messages import chat_result, to_openai_messages
from agents.compression import CacheCompressor, PromptParts, cache_bytes, cache_length, compressor_for
from agents.compression.driver import DecoderDriver
from agents.compression.homer import MAX_MERGE_LEVELS
from agents.errors import ConfigError, ContextOverflowError
from agents.settings import BackendSettings

if TYPE_CHECKING:
    from agents.compression.decoding import Decoded

CONVERTED_DIR = Path("~/.cache/docqa/transformers")
"""Converted copies of GGUF files (safetensors + tokenizer, float32: about 4 bytes per parameter), so
that only the first load is slow. Safe to delete; a copy is remade on the next load."""
DEFAULT_CONTEXT_CAP = 32768
"""Without a configured window, use the model's trained window up to this many tokens."""
HOMER_MAX_CHUNKS = 2**MAX_MERGE_LEVELS
"""``homer`` reads up to this many ``cache_budget``-token chunks in one call (4: see ``MAX_MERGE_LEVELS``)."""
MATERIAL_OPEN = re.compile(r"^<(?:document |notes>)", re.MULTILINE)
MATERIAL_CLOSE = re.compile(r"^</(?:document|notes)>", re.MULTILINE)
"""Where docqa's quoted material (``agents.materials``: document blocks, notes) starts and ends a line:
the context that HOMER chunks. Mentions of the markers inside a line, as in the system prompt, do not count."""
FALLBACK_PREFIX_TOKENS, FALLBACK_SUFFIX_TOKENS = 16, 64
"""Without document markers: the prompt's first and last tokens stand for instruction and question."""


@dataclass
class LoadedModel:
    """A transformers model, its tokenizer, and the lock that serialises calls to it."""

    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def end_ids(self) -> set[int]:
        """Token ids that end a turn: the tokenizer's and generation config's EOS, ``<|im_end|>``, ``<|eot_id|>``."""
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids |= set(configured) if isinstance(configured, list) else {configured}
        vocab = self.tokenizer.get_vocab()
        ids |= {vocab[token] for token in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>") if token in vocab}
        return {int(token) for token in ids if token is not None}

    def prompt_parts(self, messages: list[dict[str, str]]) -> PromptParts:
        """The chat-templated prompt, tokenized and split into instruction, documents and question."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return split_prompt(text, encoded["input_ids"], encoded["offset_mapping"])


def split_prompt(text: str, ids: list[int], offsets: list[tuple[int, int]]) -> PromptParts:
    r"""Instruction = tokens before the first block of material, question = tokens after the last one.

    Blocks are ``<document …>`` or ``<notes>`` at the start of a line, closed by ``</document>`` or
    ``</notes>`` at the start of a line. Without any, the first 16 and last 64 tokens (at most an
    eighth and a quarter of the prompt) play those parts.

    >>> text = "mention <document> here\n<document id=a>\nx\n</document>\ncd"
    >>> split_prompt(text, [1, 2, 3, 4, 5], [(0, 24), (24, 40), (40, 42), (42, 53), (53, 56)])
    PromptParts(ids=[1, 2, 3, 4, 5], prefix_len=1, suffix_len=1)
    """
    opening = MATERIAL_OPEN.search(text)
    closings = list(MATERIAL_CLOSE.finditer(text))
    if opening and closings and closings[-1].start() > opening.start():
        start, end = opening.start(), text.index(">", closings[-1].start()) + 1
        prefix_len = sum(1 for begin, _ in offsets if begin < start)
        suffix_len = sum(1 for begin, _ in offsets if begin >= end)
        return PromptParts(list(ids), prefix_len, suffix_len)
    prefix_len = min(FALLBACK_PREFIX_TOKENS, len(ids) // 8)
    return PromptParts(list(ids), prefix_len, min(FALLBACK_SUFFIX_TOKENS, len(ids) // 4))


def converted_copy(path: Path) -> Path:
    """Where the converted copy of GGUF file ``path`` lives: named by its content, not its date.

    The same file reinstalled or copied elsewhere (a fresh virtual environment, a re-download) maps
    to the same copy, so copies do not pile up; a changed file gets a new one. Hashing reads the
    file once (about a second per GB).
    """
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return CONVERTED_DIR.expanduser() / f"{path.stem}-{digest[:16]}"


def _from_pretrained(folder: Path, gguf_file: str | None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options: dict[str, Any] = {"local_files_only": True} | ({"gguf_file": gguf_file} if gguf_file else {})
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **options)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=torch.float32, attn_implementation="sdpa", **options
        )
    except (OSError, ValueError, KeyError) as error:  # what transformers raises for files it cannot read
        raise ConfigError(
            f"transformers could not load {folder / (gguf_file or '')}: {error}",
            help="pass --model-path to a llama or qwen2 GGUF file, or to a local Hugging Face model folder",
        ) from error
    return LoadedModel(model.eval(), tokenizer)


def _load_gguf(path: Path) -> LoadedModel:
    """Load a GGUF file through its converted copy, making the copy on first use."""
    copy = converted_copy(path)
    if (copy / "config.json").is_file():
        return _from_pretrained(copy, None)
    loaded = _from_pretrained(path.parent, path.name)
    copy.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=copy.parent, prefix=".converting-"))
    # The weights are already dequantized floats: drop the GGUF marker that makes transformers refuse to save.
    loaded.model.hf_quantizer = None
    if hasattr(loaded.model.config, "quantization_config"):
        del loaded.model.config.quantization_config
    try:  # write elsewhere, then rename: a concurrent or interrupted load never sees half a copy
        loaded.model.save_pretrained(staging)
        loaded.tokenizer.save_pretrained(staging)
        staging.rename(copy)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race, or the disk is full
    return loaded


_LOADED: dict[Path, LoadedModel] = {}


def load_model(path: Path) -> LoadedModel:
    """Load a GGUF file or model folder once per process; later calls reuse it."""
    if path not in _LOADED:
        if path.is_dir():
            _LOADED[path] = _from_pretrained(path, None)
        elif path.is_file():
            _LOADED[path] = _load_gguf(path)
        else:
            raise ConfigError(f"model not found: {path}", help="pass --model-path to a .gguf file or a model folder")
    return _LOADED[path]


@dataclass(frozen=True)
class CallStats:
    """What the last call cost: for benchmarks and tests."""

    prompt_tokens: int
    cached_positions: int
    """Positions per layer in the cache right after the prompt was read."""
    cache_bytes: int
    prefill_seconds: float
    decode_seconds: float
    generated_tokens: int


class TransformersChatModel(BaseChatModel):
    """A LangChain chat model over a transformers model whose KV cache a ``CacheCompressor`` manages."""

    model_path: str
    compression: str = "none"
    context_window: int
    temperature: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    _loaded: LoadedModel = PrivateAttr()
    _driver: DecoderDriver = PrivateAttr()
    _compressor: CacheCompressor = PrivateAttr()
    _last_stats: CallStats | None = PrivateAttr(default=None)

    def __init__(self, loaded: LoadedModel, compressor: CacheCompressor, **data: Any) -> None:
        super().__init__(**data)
        self._loaded = loaded
        self._driver = DecoderDriver(loaded.model)  # fails fast on an architecture it cannot drive
        self._compressor = compressor

    @property
    def _llm_type(self) -> str:
        return "transformers"

    @property
    def last_stats(self) -> CallStats | None:
        """Cache size and timings of the most recent call."""
        return self._last_stats

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = self._loaded.prompt_parts(to_openai_messages(messages))
        max_tokens = int(kwargs.get("max_tokens", self.max_tokens))
        if len(prompt.ids) + max_tokens > self.context_window:
            raise ContextOverflowError(
                f"a {len(prompt.ids)}-token prompt plus {max_tokens} output tokens exceed "
                f"the {self.context_window}-token window of {self.compression!r}",
                help="lower --chunk-tokens, or use --compression homer to read longer inputs",
            )
        with self._loaded.lock:
            text, decoded = self._run(prompt, max_tokens, stop, float(kwargs.get("temperature", self.temperature)))
        return chat_result(text, len(prompt.ids), len(decoded.tokens), decoded.finish_reason)

    def _run(
        self, prompt: PromptParts, max_tokens: int, stop: list[str] | None, temperature: float
    ) -> tuple[str, Decoded]:
        import torch

        from agents.compression.decoding import decode

        tokenizer, driver = self._loaded.tokenizer, self._driver
        with torch.inference_mode():
            started = time.perf_counter()
            state = self._compressor.prefill(driver, prompt)
            read = time.perf_counter()
            positions, size = cache_length(state.cache), cache_bytes(state.cache)
            hit_stop = (lambda tokens: any(s in tokenizer.decode(tokens) for s in stop)) if stop else None
            decoded = decode(
                driver, state, max_tokens, end_ids=self._loaded.end_ids(),
                temperature=temperature, repeat_penalty=self.repeat_penalty, seed=self.seed, should_stop=hit_stop,
            )  # fmt: skip
        text = tokenizer.decode(decoded.tokens, skip_special_tokens=True)
        for marker in stop or []:
            text = text.split(marker, 1)[0]
        self._last_stats = CallStats(
            len(prompt.ids), positions, size, read - started, time.perf_counter() - read, len(decoded.tokens)
        )
        return text, decoded


def readable_window(compression: str, model_window: int, cache_budget: int) -> int:
    """Tokens one call can read. ``homer`` reads 4 budget-sized chunks, even past the model's window
    (positions stay within a chunk), and no more even where the model's window is larger: to read
    more, raise ``cache_budget``. The others read what the model reads (snapkv, fp8 and quantized only hold
    less while decoding).

    >>> readable_window("homer", 32768, 1024), readable_window("homer", 8192, 4096)
    (4096, 16384)
    >>> readable_window("snapkv", 8192, 1024)
    8192
    """
    if compression == "homer":
        return HOMER_MAX_CHUNKS * cache_budget
    return model_window


def create_transformers_backend(settings: BackendSettings) -> Backend:
    """The transformers backend for ``settings.model_path`` (embedded SmolLM2 GGUF when unset)."""
    embedded = settings.model_path is None
    path = embedded_model_path() if embedded else Path(settings.model_path).expanduser()  # type: ignore[arg-type]
    if settings.n_threads:
        import torch

        torch.set_num_threads(settings.n_threads)  # process-wide, as torch has no per-model setting
    loaded = load_model(path.resolve())
    trained = int(getattr(loaded.model.config, "max_position_embeddings", 0) or DEFAULT_CONTEXT_CAP)
    model_window = settings.context_window or min(trained, DEFAULT_CONTEXT_CAP)
    window = readable_window(settings.compression, model_window, settings.cache_budget)
    compressor = compressor_for(settings.compression, settings.cache_budget)
    chat_model = TransformersChatModel(
        loaded, compressor, model_path=str(path), compression=settings.compression, context_window=window,
        temperature=settings.temperature, repeat_penalty=settings.repeat_penalty or 1.0, seed=settings.seed,
    )  # fmt: skip
    # As for llama.cpp: small local models read far less than their window (see DESIGN.md). HOMER
    # reads each worker's chunk as merged budget-sized pieces, so it can take two budgets at once.
    recommended = 512 if embedded else 1024
    if settings.compression == "homer":
        recommended = max(recommended, 2 * settings.cache_budget)
    suffix = "" if settings.compression == "none" else f"+{settings.compression}"
    return Backend(
        name=f"transformers:{path.name}{suffix}",
        chat_model=chat_model,
        context_window=window,
        count_tokens=loaded.count_tokens,
        recommended_chunk_tokens=min(recommended, window),
    )
