"""Everything one browser session owns: its documents, its conversation, its index and its run.

It lives in ``st.session_state``, which Streamlit keeps per session, so no user's documents,
history or index are ever visible to another session. ``st.cache_resource`` (shared by all
sessions) holds only models; see :mod:`app.backends`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from agents.results import Answer, Note
from app.runner import PipelineRun
from app.uploads import FailedFile, LoadedFile

_SESSION_KEY = "docqa_session"


@dataclass
class Turn:
    """One question and what came of it."""

    question: str
    strategy: str
    documents: list[str]
    answer: Answer | None = None
    error: str | None = None
    """A one-line message when the run failed."""
    stopped: bool = False
    """True when the user stopped the run before the answer."""
    partial_notes: list[Note] = field(default_factory=list)
    """Notes written before a stop or a failure."""


@dataclass
class SessionData:
    """One session's documents, conversation, index folder and the run in progress."""

    files: dict[str, LoadedFile | FailedFile] = field(default_factory=dict)
    """Every upload of this session by Streamlit file id, loaded once (a rerun does not reload)."""
    history: list[Turn] = field(default_factory=list)
    run: PipelineRun | None = None
    """The run in progress, if any; its turn is ``history[-1]``."""
    index_dir: tempfile.TemporaryDirectory[str] = field(
        default_factory=lambda: tempfile.TemporaryDirectory(prefix="docqa-ui-index-")
    )
    """This session's embedding index; deleted when the session's state is dropped."""

    @property
    def index_path(self) -> Path:
        """Where retrieval strategies cache this session's embeddings."""
        return Path(self.index_dir.name)


def current_session() -> SessionData:
    """This browser session's data, created on its first run."""
    if _SESSION_KEY not in st.session_state:
        st.session_state[_SESSION_KEY] = SessionData()
    session: SessionData = st.session_state[_SESSION_KEY]
    return session
