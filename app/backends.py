"""The model behind a run. Local models are loaded once per process and shared by all sessions.

``st.cache_resource`` is shared by every session, so it holds only models, keyed by how they
were loaded; never documents, history, or an API key (remote backends are built per run).
"""

from __future__ import annotations

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
    # Every setting that shapes the loaded model is in the key (the API key, unused here, is left out).
    return _local_backend(backend.model_dump_json(exclude={"api_key"}))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _local_backend(backend_json: str) -> Backend:
    return create_backend(BackendSettings.model_validate_json(backend_json))
