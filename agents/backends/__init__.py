"""Model backends, chosen by name. Vendor packages are imported only when their backend is used."""

from __future__ import annotations

from agents.backends.base import Backend, CountTokens, approximate_token_counter, backend_from_chat_model
from agents.settings import BackendSettings

__all__ = ["Backend", "CountTokens", "approximate_token_counter", "backend_from_chat_model", "create_backend"]


def create_backend(settings: BackendSettings) -> Backend:
    """Build the backend that ``settings.kind`` names."""
    if settings.kind == "llamacpp":
        from agents.backends.llamacpp import create_llamacpp_backend

        return create_llamacpp_backend(settings)
    if settings.kind == "openai":
        from agents.backends.openai_compatible import create_openai_backend

        return create_openai_backend(settings)
    if settings.kind == "transformers":
        from agents.backends.transformers_backend import create_transformers_backend

        return create_transformers_backend(settings)
    raise AssertionError(f"unhandled backend kind {settings.kind!r}")  # settings validation forbids this
