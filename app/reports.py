"""Read an evaluation run folder: its ``report.md`` split around the plots it shows, and its PNGs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPORT_NAME = "report.md"
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclass(frozen=True)
class ReportImage:
    """A plot that the report shows at this place."""

    path: Path
    alt: str


ReportPart = str | ReportImage
"""Markdown text, or an image the report embeds."""


def split_report(markdown: str, folder: Path) -> list[ReportPart]:
    """Cut ``markdown`` at its images of files inside ``folder``, so each can be shown from disk.

    Other images (remote, missing, or outside the folder) stay in the text as they are.

    >>> split_report("A ![acc](missing.png) B", Path("/nonexistent"))
    ['A ![acc](missing.png) B']
    """
    parts: list[ReportPart] = []
    start = 0
    for match in _IMAGE.finditer(markdown):
        image = _local_image(folder, match.group("target"))
        if image is None:
            continue
        parts.append(markdown[start : match.start()])
        parts.append(ReportImage(image, match.group("alt")))
        start = match.end()
    parts.append(markdown[start:])
    return [part for part in parts if not isinstance(part, str) or part.strip()]


def _local_image(folder: Path, target: str) -> Path | None:
    """The file ``target`` names inside ``folder``, or ``None`` if it is elsewhere or missing."""
    if "://" in target:
        return None
    root = folder.resolve()
    path = (root / target).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def run_folders(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` that hold a report, newest first (for a folder of many runs)."""
    runs = [child for child in folder.iterdir() if (child / REPORT_NAME).is_file()]
    return sorted(runs, key=lambda run: (run / REPORT_NAME).stat().st_mtime, reverse=True)


def plots(folder: Path) -> list[Path]:
    """The PNG files in ``folder``, by name."""
    return sorted(path.resolve() for path in folder.glob("*.png") if path.is_file())
