"""The errors docqa raises, and the policy for each.

Every error carries a ``help`` text that tells the user what to do next. The CLI prints
``str(error)`` on one line and exits non-zero; it never shows a traceback for these.

Policy:
- ``InputError``: a document or question that cannot be used. Fail fast, name the file.
- ``ConfigError``: a setting that cannot work (missing model file, missing extra). Fail fast.
- ``TransientBackendError``: timeout, rate limit, 5xx. Retried a bounded number of times by the
  backend, then raised.
- ``ContextOverflowError``: a prompt did not fit the model's window. Not retried: the chunk budget
  is wrong, so the user must lower ``--chunk-tokens`` or raise ``--context-window``.
- ``BackendError``: any other model failure. Not retried.
- Unusable model output (an empty note) is not an error: the previous note is kept and the event
  is recorded in the result.
"""

from __future__ import annotations


class DocQAError(Exception):
    """Base class: a message saying what went wrong and a help text saying what to do."""

    def __init__(self, message: str, *, help: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.help = help

    def __str__(self) -> str:
        return f"{self.message} ({self.help})" if self.help else self.message


class InputError(DocQAError):
    """A document or question that cannot be used."""


class UnsupportedFileError(InputError):
    """The file's type is not one docqa reads."""


class UnreadableFileError(InputError):
    """The file is missing, corrupt or encrypted."""


class EmptyDocumentError(InputError):
    """The file holds no extractable text."""


class TooManyChunksError(InputError):
    """The documents need more workers than the configured cap."""


class ConfigError(DocQAError):
    """A setting that cannot work."""


class MissingDependencyError(ConfigError):
    """An optional package is not installed."""


class BackendError(DocQAError):
    """A model call failed."""


class TransientBackendError(BackendError):
    """A model call failed for a reason that may pass (timeout, rate limit, server error)."""


class ContextOverflowError(BackendError):
    """A prompt did not fit the model's context window."""
