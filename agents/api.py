"""The public Python API: ``DocQA(settings).ask(question, documents)``.

The CLI, the UI and the evaluator are thin layers over this module. The core is asynchronous
(``astream``); ``aask`` collects it, and ``ask`` is the one synchronous wrapper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models import BaseChatModel

from agents.backends import Backend, backend_from_chat_model, create_backend
from agents.calibration import apply_calibration
from agents.graph import build_graph
from agents.nodes import PipelineContext
from agents.results import (
    Answer,
    AnswerReady,
    DocumentsChunked,
    DocumentsLoaded,
    NoteWritten,
    PassagesRetrieved,
    ProgressEvent,
)
from agents.settings import Settings
from agents.state import Source
from prompts import load_prompts

GRAPH_STEPS_PER_RUN = 4
"""Graph steps besides the workers: load, chunk, manager, and one spare."""


class DocQA:
    """Answers questions about documents longer than the model's window.

    The strategy (``settings.strategy``) decides how the documents are read: Chain-of-Agents over
    every chunk (the default), one call over as much as fits, or retrieval first.

    Typical use: ``DocQA().ask("Who was the first keeper?", ["report.pdf"]).answer``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        chat_model: BaseChatModel | None = None,
        context_window: int | None = None,
    ) -> None:
        """Use the backend that ``settings`` names, or a given ``backend``, or any LangChain
        ``chat_model`` (then ``context_window`` is required)."""
        self.settings = settings or Settings()
        if chat_model is not None:
            if context_window is None:
                raise TypeError("a chat_model needs its context_window")
            backend = backend_from_chat_model(chat_model, context_window=context_window)
        self._backend = None if backend is None else apply_calibration(backend, self.settings.chunking)
        self._prompts = load_prompts(self.settings.prompts_dir)
        self._graph: Any = None

    @property
    def backend(self) -> Backend:
        """The model backend, created (and a local model loaded) on first use.

        Its recommended chunk size is the model's calibrated effective window where one is stored
        (see ``agents.calibration``)."""
        if self._backend is None:
            self._backend = apply_calibration(create_backend(self.settings.backend), self.settings.chunking)
        return self._backend

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph."""
        if self._graph is None:
            self._graph = build_graph(PipelineContext(self.backend, self.settings, self._prompts))
        return self._graph

    async def astream(self, question: str, documents: Sequence[Source]) -> AsyncIterator[ProgressEvent]:
        """Run the pipeline, yielding progress as it happens; the last event is ``AnswerReady``.

        An empty ``question`` asks for a summary of the documents.
        """
        graph = self.graph  # builds the backend (loads a local model) before the clock starts
        started = time.perf_counter()
        config = {"recursion_limit": self.settings.workers.max_workers + GRAPH_STEPS_PER_RUN}
        state: dict[str, Any] = {}
        graph_input = {"question": question.strip(), "sources": list(documents)}
        async for mode, payload in graph.astream(graph_input, config, stream_mode=["updates", "values"]):
            if mode == "values":
                state = payload
                continue
            for node, update in payload.items():
                if node == "load":
                    yield DocumentsLoaded(update["documents"])
                elif node == "chunk":
                    yield DocumentsChunked(update["chunks"], update["budget"])
                elif node == "retrieve":
                    yield PassagesRetrieved(update["passages"], update["n_passages"])
                elif node == "worker":
                    yield NoteWritten(update["notes"][0], len(state["readings"]))
        yield AnswerReady(self._answer(state, time.perf_counter() - started))

    def _answer(self, state: dict[str, Any], total_s: float) -> Answer:
        calls = state["calls"]
        model_s = sum(call.seconds for call in calls)
        timings = {**state["timings"], "model_s": model_s, "overhead_s": total_s - model_s, "total_s": total_s}
        return Answer(
            question=state["question"],
            answer=state["answer"],
            strategy=self.settings.strategy,
            notes=state.get("notes", []),
            context=state.get("context", []),
            citations=state["citations"],
            dropped_citations=state["dropped_citations"],
            calls=calls,
            documents=[document.source for document in state["documents"]],
            backend=self.backend.name,
            chunk_budget=state["budget"],
            timings=timings,
        )

    async def aask(
        self,
        question: str,
        documents: Sequence[Source],
        on_event: Callable[[ProgressEvent], None] | None = None,
    ) -> Answer:
        """Answer ``question`` about ``documents``; ``on_event`` sees every progress event."""
        async for event in self.astream(question, documents):
            if on_event is not None:
                on_event(event)
            if isinstance(event, AnswerReady):
                return event.answer
        raise AssertionError("the pipeline ended without an answer")  # astream always ends with one

    def ask(
        self,
        question: str,
        documents: Sequence[Source],
        on_event: Callable[[ProgressEvent], None] | None = None,
    ) -> Answer:
        """Synchronous ``aask``; works inside a running event loop (e.g. Jupyter) too."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aask(question, documents, on_event))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.aask(question, documents, on_event)).result()

    def summarize(self, documents: Sequence[Source], on_event: Callable[[ProgressEvent], None] | None = None) -> Answer:
        """A summary of ``documents`` instead of an answer (the query-less mode)."""
        return self.ask("", documents, on_event)
