"""The model behind a run. Local models are loaded once per process and shared by all sessions.

``st.cache_resource`` is shared by every session, so it holds only models, keyed by how they
were loaded; never documents, history, or an API key (remote backends are built per run).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from agents.backends import Backend, create_backend
from agents.settings import BackendSettings, Settings


def backend_for(settings: Settings) -> Backend | None:
    """The backend a run with ``settings`` uses, or ``None`` to let ``DocQA`` build it from the settings.

    Tests replace this function to inject a scripted fake model.
    """
    backend = settings.backend
    if backend.kind != "llamacpp":
        return None  # cheap to build, and its key must not enter a cache shared by all sessions
    model_path = str(backend.model_path.expanduser()) if backend.model_path else None
    return _local_backend(model_path, backend.context_window, backend.temperature, backend.seed, backend.n_threads)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _local_backend(
    model_path: str | None, context_window: int | None, temperature: float, seed: int, n_threads: int | None
) -> Backend:
    settings = BackendSettings(
        kind="llamacpp",
        model_path=Path(model_path) if model_path else None,
        context_window=context_window,
        temperature=temperature,
        seed=seed,
        n_threads=n_threads,
    )
    return create_backend(settings)
