"""Run the pipeline in a background thread so the page can show progress and offer a Stop button.

The thread consumes :meth:`agents.DocQA.astream` and keeps every event; the page polls
:meth:`PipelineRun.events` while it draws. A stop request is honoured between events, that is
after the model call in progress (a model call itself cannot be interrupted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from agents import DocQA
from agents.errors import DocQAError
from agents.results import Answer, AnswerReady, ProgressEvent
from retrieval.documents import Document

log = logging.getLogger(__name__)


class PipelineRun:
    """One question being answered in a daemon thread; safe to poll from the page's thread."""

    def __init__(self, qa: DocQA, question: str, documents: Sequence[Document]) -> None:
        self._qa = qa
        self._question = question
        self._documents = list(documents)
        self._events: list[ProgressEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.answer: Answer | None = None
        self.error: str | None = None
        """A one-line message if the run failed; set before ``done``."""
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._main, name="docqa-run", daemon=True)

    def start(self) -> PipelineRun:
        """Start the thread; returns ``self`` for chaining."""
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the run to end after the model call in progress."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        """True once the run ended: answered, stopped or failed."""
        return self._done.is_set()

    @property
    def stopped(self) -> bool:
        """True if the run ended early because of a stop request."""
        return self.done and self.answer is None and self.error is None

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    def events(self) -> list[ProgressEvent]:
        """A copy of the events so far, in order."""
        with self._lock:
            return list(self._events)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (for tests and scripts); returns ``done``."""
        return self._done.wait(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._consume())
        except DocQAError as error:
            self.error = str(error)
        except Exception as error:  # the page must show something rather than spin forever
            log.exception("the pipeline failed")
            self.error = f"unexpected error: {type(error).__name__}: {error}"
        finally:
            self.finished_at = time.monotonic()
            self._done.set()

    async def _consume(self) -> None:
        stream = self._qa.astream(self._question, self._documents)
        async with contextlib.aclosing(stream):  # closing the stream cancels the graph on a stop
            async for event in stream:
                with self._lock:
                    self._events.append(event)
                if isinstance(event, AnswerReady):
                    self.answer = event.answer
                    return
                if self._stop.is_set():
                    return
