"""Prompt templates, kept as text files beside this module and checked when they are loaded.

Each template uses ``{name}`` placeholders (``{{`` and ``}}`` for literal braces). The set of
placeholders of every template is fixed below; a file that uses another name, or leaves a
required one out, is refused at load time, so a typo never reaches a model. A folder given in
settings (``prompts_dir``) may replace any of the files.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agents.errors import ConfigError

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "worker": frozenset({"question", "previous_note", "documents", "position"}),
    "worker_summary": frozenset({"previous_note", "documents", "position"}),
    "manager": frozenset({"question", "note"}),
    "manager_summary": frozenset({"note"}),
    "answer": frozenset({"question", "documents"}),
    "answer_summary": frozenset({"documents"}),
}
"""Template name -> the placeholders its file must use, exactly."""


@dataclass(frozen=True)
class PromptTemplate:
    """A template whose placeholders have been checked."""

    name: str
    text: str

    def render(self, **values: str) -> str:
        """Fill every placeholder; a missing or unknown value is a programming error.

        >>> PromptTemplate("manager_summary", "Notes: {note}").render(note="x")
        'Notes: x'
        """
        expected = PLACEHOLDERS[self.name]
        if set(values) != expected:
            raise KeyError(f"prompt {self.name!r} takes {sorted(expected)}, got {sorted(values)}")
        return self.text.format(**values)


def _placeholders(text: str, origin: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as error:
        raise ConfigError(
            f"prompt file {origin} is not a valid template: {error}",
            help="use {name} for placeholders and {{ }} for literal braces",
        ) from error


def load_prompt(name: str, override_dir: Path | None = None) -> PromptTemplate:
    """Read ``name.txt`` from ``override_dir`` if it has one, else the bundled file, and check it."""
    if name not in PLACEHOLDERS:
        raise ConfigError(f"unknown prompt {name!r}", help=f"known prompts: {', '.join(PLACEHOLDERS)}")
    override = override_dir / f"{name}.txt" if override_dir is not None else None
    if override is not None and override.is_file():
        text, origin = override.read_text(encoding="utf-8"), str(override)
    else:
        text, origin = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8"), f"{name}.txt"
    found, expected = _placeholders(text, origin), PLACEHOLDERS[name]
    if found != expected:
        missing, unknown = sorted(expected - found), sorted(found - expected)
        raise ConfigError(
            f"prompt file {origin} has the wrong placeholders (missing: {missing}, unknown: {unknown})",
            help=f"the {name} prompt must use exactly {sorted(expected)}",
        )
    return PromptTemplate(name, text.strip())


@dataclass(frozen=True)
class Prompts:
    """All templates the pipeline uses."""

    system: PromptTemplate
    worker: PromptTemplate
    worker_summary: PromptTemplate
    manager: PromptTemplate
    manager_summary: PromptTemplate
    answer: PromptTemplate
    answer_summary: PromptTemplate


def load_prompts(override_dir: Path | None = None) -> Prompts:
    """Load and check every template."""
    return Prompts(**{name: load_prompt(name, override_dir) for name in PLACEHOLDERS})
