"""The real app in a real browser: ``docqa ui``'s command serves it on 127.0.0.1, headless
Chromium (Debian's, driven by Playwright) uploads a file and asks a question, and the embedded
SmolLM2 answers it through llama.cpp. The screenshot lands in ``test-artifacts/app.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.app_browser import (
    ANSWER_TIMEOUT_MS,
    QUESTION,
    QUICK_MODEL_ENV,
    REPO,
    app_server,
    chromium,
    excerpt,
    open_and_upload,
    screenshot,
    submit,
    wait_for_answer,
)

pytestmark = pytest.mark.real_model

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, str]]:
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with app_server(log, QUICK_MODEL_ENV) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page, url
        page.close()


def test_real_model_answers_in_a_real_browser(page: tuple[Page, str], tmp_path: Path) -> None:
    browser_page, url = page
    document = excerpt(tmp_path / "kessel_point_intro.md", n_words=500)
    try:
        open_and_upload(browser_page, url, document, chunk_tokens=256)
        stop_a_run(browser_page)
        submit(browser_page, QUESTION)
        check_live_progress(browser_page)
        wait_for_answer(browser_page)
        check_answer(browser_page)
    finally:  # the screenshot is the artifact to look at, most of all when something failed
        screenshot(browser_page, ARTIFACTS / "app.png")


def stop_a_run(page: Page) -> None:
    """Stop a first question while worker 1 reads: it ends after that call, keeping its note."""
    submit(page, "What does the report say about the lantern?")
    stop = page.get_by_role("button", name="Stop")
    expect(page.get_by_text("Worker 1 of 3 is reading kessel_point_intro.md, chars 0-")).to_be_visible(timeout=60_000)
    stop.click()
    expect(page.get_by_text("Stopped before the answer.")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    # Usually 1 note; 2 if worker 1 finished while the click was on its way.
    expect(page.get_by_text(re.compile(r"^Notes from the workers \([12]\)$"))).to_be_visible()
    expect(stop).to_have_count(0)


def check_live_progress(page: Page) -> None:
    """While the workers read: who reads which part of which file, a progress bar, time, Stop."""
    expect(page.get_by_text("Worker 1 of 3 is reading kessel_point_intro.md, chars 0-")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Elapsed:")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(page.get_by_placeholder("Ask a question about the documents")).to_be_disabled()
    screenshot(page, ARTIFACTS / "app-progress.png")


def check_answer(page: Page) -> None:
    """The question, the notes naming what each worker read, the sources, usage and downloads."""
    main = page.get_by_role("main")
    expect(main.get_by_text(QUESTION, exact=True)).to_be_visible()
    expect(main.get_by_text("Stopped before the answer.")).to_be_visible()  # the first turn stays
    expect(main.get_by_role("cell", name="kessel_point_intro.md")).to_be_visible()
    # The chain of notes: one per 256-token chunk, each naming the part of the file it read.
    notes = main.get_by_text("Notes from the workers (").last
    expect(notes).to_be_visible()
    assert int(notes.inner_text().split("(")[1].split(")")[0]) >= 3
    notes.click()
    expect(main.get_by_text("Worker 3 · kessel_point_intro.md, chars ").last).to_be_visible()
    # Sources: the passages the answer cites, or the plain statement that it cites none
    # (the 135M demo model rarely writes citation ids; test_app.py checks the expanders).
    sources = main.get_by_text("Sources", exact=True)
    no_sources = main.get_by_text("The answer cites no passage")
    expect(sources.or_(no_sources)).to_be_visible()
    if sources.count():
        main.get_by_text("] kessel_point_intro.md, chars").first.click()
    for label in ("Model calls", "Tokens in", "Tokens out", "Seconds"):
        expect(main.get_by_text(label, exact=True)).to_be_visible()
    expect(main.get_by_role("button", name="Markdown")).to_be_visible()
    expect(main.get_by_role("button", name="JSON")).to_be_visible()
