"""docqa's pipeline and public API.

Typical use: ``DocQA(Settings()).ask("What is it about?", ["report.pdf"]).answer``.

Names are imported on first use so that ``import agents.errors`` (used by the loaders) stays
light and free of import cycles.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DocQA": "agents.api",
    "Settings": "agents.settings",
    "Answer": "agents.results",
    "Note": "agents.results",
    "ModelCall": "agents.results",
    "ProgressEvent": "agents.results",
    "DocumentsLoaded": "agents.results",
    "DocumentsChunked": "agents.results",
    "NoteWritten": "agents.results",
    "AnswerReady": "agents.results",
    "Backend": "agents.backends",
    "backend_from_chat_model": "agents.backends",
    "create_backend": "agents.backends",
    "DocQAError": "agents.errors",
    "Document": "retrieval.documents",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
