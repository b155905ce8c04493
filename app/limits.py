"""The app's fixed limits and defaults, stated in the UI where the user meets them."""

from __future__ import annotations

MAX_UPLOAD_MB = 50
"""Largest file a user may upload, in megabytes; also passed to Streamlit as ``server.maxUploadSize``."""

MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024

UPLOAD_TYPES = ("pdf", "docx", "txt", "md", "html")
"""The formats the uploader names; the content is checked by magic bytes, not by these."""

POLL_SECONDS = 0.25
"""How often the page refreshes the live progress of a run."""
