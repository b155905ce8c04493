"""The settings sidebar: which model, which strategy, chunk size and passages, turned into ``Settings``.

The API key is typed into a password field and goes only into the ``Settings`` of the run (as a
``SecretStr``); it is never shown, logged or written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import streamlit as st
from pydantic import SecretStr, ValidationError

from agents.settings import STRATEGIES, RetrievalSettings, Settings
from app.progress import RETRIEVAL_STRATEGIES

ModelChoice = Literal["embedded", "gguf", "openai"]

MODEL_LABELS: dict[ModelChoice, str] = {
    "embedded": "Embedded model (offline)",
    "gguf": "Local GGUF file",
    "openai": "OpenAI-compatible endpoint",
}
STRATEGY_LABELS = {
    "coa": "coa · chain of workers",
    "full": "full · one call",
    "rag": "rag · best passages",
    "rag-reorder": "rag-reorder · reordered passages",
    "coa-rag": "coa-rag · workers on passages",
}
STRATEGY_HELP = {
    "coa": "Chain-of-Agents: workers read every chunk in order, each passing a note to the next; "
    "a manager answers from the last note.",
    "full": "One model call over as much of the text as fits the window (the rest is cut).",
    "rag": "One model call over the passages that best match the question, best first.",
    "rag-reorder": "The same passages, with the best at both ends of the prompt, where models read best.",
    "coa-rag": "Workers read only the passages that best match the question, in document order.",
}
_DEFAULTS = RetrievalSettings()


@dataclass(frozen=True)
class SettingsChoices:
    """What the sidebar's widgets hold; empty strings and ``None`` mean "the default"."""

    model: ModelChoice = "embedded"
    model_path: str = ""
    base_url: str = ""
    model_name: str = ""
    api_key: SecretStr | None = None
    context_window: int | None = None
    strategy: str = "coa"
    chunk_tokens: int | None = None
    passages: int | None = None


def build_settings(choices: SettingsChoices, index_dir: Path) -> Settings:
    """The pipeline's settings; raises pydantic's ``ValidationError`` on an impossible value.

    >>> build_settings(SettingsChoices(strategy="rag", passages=5), Path("/tmp/i")).retrieval.top_k
    5
    """
    backend: dict[str, Any] = {"kind": "openai" if choices.model == "openai" else "llamacpp"}
    if choices.model == "gguf":
        backend["model_path"] = Path(choices.model_path.strip()).expanduser()
    if choices.model == "openai":
        backend |= {"base_url": choices.base_url.strip() or None, "model": choices.model_name.strip() or None}
        if choices.api_key is not None and choices.api_key.get_secret_value():
            backend["api_key"] = choices.api_key
    if choices.context_window is not None:
        backend["context_window"] = choices.context_window
    retrieval: dict[str, Any] = {"index_dir": index_dir}
    if choices.passages is not None:
        retrieval["coa_top_k" if choices.strategy == "coa-rag" else "top_k"] = choices.passages
    fields: dict[str, Any] = {"strategy": choices.strategy, "backend": backend, "retrieval": retrieval}
    if choices.chunk_tokens is not None:
        fields["chunking"] = {"chunk_tokens": choices.chunk_tokens}
    return Settings(**fields)


def render_sidebar(index_dir: Path) -> Settings | None:
    """Draw the settings; returns them, or ``None`` (with a message) when they cannot work."""
    with st.sidebar:
        st.header("Settings")
        model = _model_widgets()
        reading = _reading_widgets()
        if model["model"] == "gguf" and not model["model_path"].strip():
            st.info("Enter the path of a GGUF model file.", icon=":material/info:")
            return None
        try:
            return build_settings(SettingsChoices(**model, **reading), index_dir)
        except ValidationError as error:
            # Field and reason only: str(error) would quote the input, which may be the API key.
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            st.error(f"These settings cannot work: {problems}")
            return None


def _model_widgets() -> dict[str, Any]:
    """The model choice and the fields that choice needs."""
    model: ModelChoice = st.radio("Model", list(MODEL_LABELS), format_func=MODEL_LABELS.__getitem__, key="model")
    if model == "embedded":
        st.caption("SmolLM2-135M-Instruct, in this process: no key, no network. A demo model, too small to "
                   "answer reliably; use a real GGUF file or endpoint for real answers.")  # fmt: skip
        return {"model": model}
    if model == "gguf":
        path = st.text_input("GGUF file", key="model_path", placeholder="~/models/qwen2.5-7b-instruct-q4_k_m.gguf")
        return {"model": model, "model_path": path, "context_window": _context_window("the file's own")}
    base_url = st.text_input("Base URL", key="base_url", placeholder="https://api.openai.com/v1")
    name = st.text_input("Model name", key="model_name", placeholder="gpt-4o-mini")
    key = st.text_input("API key", type="password", key="api_key", help="Kept in this session's memory only.")
    return {
        "model": model,
        "base_url": base_url,
        "model_name": name,
        "api_key": SecretStr(key),
        "context_window": _context_window("8192"),
    }


def _context_window(default: str) -> int | None:
    value = st.number_input(
        "Context window (tokens)", min_value=256, max_value=1_048_576, value=None, step=1024,
        placeholder=f"default: {default}", key="context_window",
    )  # fmt: skip
    return int(value) if value is not None else None


def _reading_widgets() -> dict[str, Any]:
    """Strategy, chunk size and, for retrieval strategies, the number of passages."""
    strategy = st.selectbox("Strategy", STRATEGIES, format_func=STRATEGY_LABELS.__getitem__, key="strategy")
    st.caption(STRATEGY_HELP[strategy])
    chunk_tokens = st.number_input(
        "Chunk size (tokens)", min_value=32, max_value=32_768, value=None, step=64, key="chunk_tokens",
        placeholder="auto: calibrated, else 512 embedded, 1024 GGUF",
        help="The main accuracy knob: small models read far less than their window. Empty means the model's "
        "calibrated size (docqa calibrate) if it has one, else the backend's default.",
    )  # fmt: skip
    passages = None
    if strategy in RETRIEVAL_STRATEGIES:
        field = "coa_top_k" if strategy == "coa-rag" else "top_k"
        passages = st.number_input(
            "Passages to retrieve", min_value=1, max_value=500, value=getattr(_DEFAULTS, field), key=field
        )
    return {
        "strategy": strategy,
        "chunk_tokens": int(chunk_tokens) if chunk_tokens is not None else None,
        "passages": int(passages) if passages is not None else None,
    }
