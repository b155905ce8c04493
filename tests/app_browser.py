"""Drive the real app in headless Chromium: start the server, upload, ask, wait, screenshot.

Used by ``tests/test_app_browser.py``, and by hand to refresh the README's screenshot::

    .venv/bin/python -m tests.app_browser docs/ui.png
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.launch import streamlit_command

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "harbor_light_report.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
QUESTION = "Who was the first keeper of the Kessel Point Lighthouse?"
ANSWER_TIMEOUT_MS = 300_000
QUICK_MODEL_ENV = {
    "DOCQA_WORKERS__MAX_TOKENS": "64",
    "DOCQA_MANAGER__MAX_TOKENS": "96",
    "DOCQA_BACKEND__N_THREADS": "1",
}
"""Short notes and answer keep the run quick, set the documented way (the environment). One llama.cpp
thread: on a busy 2-core machine two threads wait on each other and run ~1.5x slower."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def excerpt(path: Path, n_words: int = 500) -> Path:
    """The sample's first ``n_words`` words, written to ``path``."""
    words = SAMPLE.read_text(encoding="utf-8").split(" ")
    path.write_text(" ".join(words[:n_words]), encoding="utf-8")
    return path


@contextlib.contextmanager
def app_server(log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """The app served on 127.0.0.1 at a free port by ``docqa ui``'s command; yields its URL."""
    port = free_port()
    options = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
               "--server.fileWatcherType", "none"]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            streamlit_command(options),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(server, f"{url}/_stcore/health", log_path)
            yield url
        finally:
            _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate the server; kill it if a model call still holds it after 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def _wait_healthy(server: subprocess.Popen[bytes], health_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(health_url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium under Playwright (never a browser Playwright downloads)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_and_upload(page: Page, url: str, document: Path, chunk_tokens: int) -> None:
    """Open the app, set the chunk size in the sidebar and upload ``document``."""
    page.goto(url)
    expect(page.get_by_role("heading", name="docqa")).to_be_visible(timeout=60_000)
    chunk_input = page.get_by_label("Chunk size (tokens)", exact=True)
    chunk_input.fill(str(chunk_tokens))
    chunk_input.press("Enter")
    page.locator("input[type=file]").set_input_files(document)
    expect(page.get_by_role("cell", name=document.name)).to_be_visible(timeout=60_000)


def submit(page: Page, question: str) -> None:
    """Type ``question`` into the chat box and send it."""
    box = page.get_by_placeholder("Ask a question about the documents")
    expect(box).to_be_enabled(timeout=60_000)
    box.fill(question)
    box.press("Enter")


def wait_for_answer(page: Page, n_answers: int = 1) -> None:
    """Wait until ``n_answers`` answers show their usage row (the last thing drawn)."""
    expect(page.get_by_text("Model calls", exact=True)).to_have_count(n_answers, timeout=ANSWER_TIMEOUT_MS)


def ask_with_upload(page: Page, url: str, document: Path, question: str, chunk_tokens: int) -> None:
    """Open the app, upload ``document``, ask ``question`` and wait for the answer."""
    open_and_upload(page, url, document, chunk_tokens)
    submit(page, question)
    wait_for_answer(page)


def screenshot(page: Page, path: Path) -> None:
    """The whole page: the viewport is grown to the content first (Streamlit scrolls inside ``main``)."""
    height = page.evaluate("() => document.querySelector('.stMain')?.scrollHeight ?? 0")
    width = page.viewport_size["width"] if page.viewport_size else 1280
    page.set_viewport_size({"width": width, "height": max(900, min(int(height), 4000))})
    page.wait_for_timeout(500)  # let the layout settle at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def main(argv: list[str]) -> int:
    """Write a screenshot of the app after a real answer to ``argv[0]``."""
    import tempfile

    out = Path(argv[0]) if argv else REPO / "test-artifacts" / "app.png"
    with (
        tempfile.TemporaryDirectory() as tmp,
        app_server(Path(tmp) / "server.log", QUICK_MODEL_ENV) as url,
        chromium() as browser,
    ):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        ask_with_upload(page, url, excerpt(Path(tmp) / "kessel_point_intro.md"), QUESTION, 256)
        screenshot(page, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
