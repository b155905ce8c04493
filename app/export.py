"""The answer as a Markdown or JSON download: answer, citations with their passages, notes, usage."""

from __future__ import annotations

import json
import re

from agents.results import Answer, Citation, Note

_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


def answer_json(answer: Answer) -> str:
    """The same JSON object as ``docqa ask --json`` prints (no settings, so never a key)."""
    return json.dumps(answer.to_dict(), indent=2, ensure_ascii=False)


def answer_markdown(answer: Answer) -> str:
    """A self-contained Markdown report of one answer."""
    parts = [f"# {answer.question or 'Summary'}", "", answer.answer.strip(), ""]
    if answer.citations:
        parts += ["## Sources", ""]
        parts += [_citation_markdown(citation) for citation in answer.citations]
    if answer.notes:
        parts += ["## Notes from the workers", ""]
        parts += [_note_markdown(note) for note in answer.notes]
    parts += ["## Run", "", *_run_lines(answer), ""]
    return "\n".join(parts)


def quote(text: str) -> str:
    """``text`` as a Markdown block quote, one ``>`` per line.

    >>> quote("a\\n\\nb")
    '> a\\n>\\n> b'
    """
    return "\n".join(f"> {line}".rstrip() for line in text.strip().split("\n"))


def citation_label(citation: Citation) -> str:
    """e.g. ``"[c2] report.pdf p. 3, chars 1200-4810"``."""
    return f"[{citation.id}] {citation.chunk.location}"


def download_name(answer: Answer, extension: str) -> str:
    """A file name from the question's first words.

    >>> from agents.results import Answer
    >>> a = Answer("Who was the first keeper?", "", "coa", [], [], [], 0, [], [], "fake", 0)
    >>> download_name(a, "md")
    'docqa-who-was-the-first-keeper.md'
    """
    slug = _FILE_NAME_UNSAFE.sub("-", answer.question.lower()).strip("-")[:48].rstrip("-")
    return f"docqa-{slug or 'summary'}.{extension}"


def _citation_markdown(citation: Citation) -> str:
    return f"**{citation_label(citation)}**\n\n{quote(citation.chunk.text)}\n"


def _note_markdown(note: Note) -> str:
    kept = " (output unusable; previous note kept)" if note.kept_previous else ""
    return f"**Worker {note.index + 1}** · {note.location}{kept}\n\n{quote(note.text)}\n"


def _run_lines(answer: Answer) -> list[str]:
    usage = answer.usage
    return [
        f"- Strategy: `{answer.strategy}`, model: `{answer.backend}`",
        f"- Documents: {', '.join(answer.documents)}",
        f"- Model calls: {usage['model_calls']}; tokens: {usage['prompt_tokens']:,} in, "
        f"{usage['completion_tokens']:,} out",
        f"- Time: {answer.timings.get('total_s', 0.0):.1f} s",
    ]
