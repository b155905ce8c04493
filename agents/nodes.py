"""The graph's nodes: load, chunk, retrieve, worker (once per reading), manager, answer.

Each node is a plain function of the state and a ``PipelineContext``; it returns only the keys
it changes. The graph in ``agents.graph`` binds the context and wires them together, and the
routers below pick the path for the configured strategy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.backends.base import Backend
from agents.budget import ChunkBudget, chunk_budget
from agents.calls import call_model
from agents.errors import InputError, TooManyChunksError
from agents.materials import parse_citations, quote_material, render_block, render_blocks, trim_echo
from agents.results import Note
from agents.settings import Settings
from agents.state import PipelineState, Source
from prompts import Prompts, PromptTemplate
from retrieval.chunking import chunk_documents
from retrieval.documents import Chunk, Document
from retrieval.loaders import load_document

NO_NOTES_YET = "(none yet)"
FULL_UNIT_TOKENS = 256
"""``full`` cuts the text into units this size, then takes as many, in order, as fit the window."""


@dataclass(frozen=True)
class PipelineContext:
    """What every node needs besides the state: the model, the settings, the prompts."""

    backend: Backend
    settings: Settings
    prompts: Prompts


def load_sources(sources: Sequence[Source]) -> list[Document]:
    """Read every source in order; ``Document`` objects pass through unchanged."""
    if not sources:
        raise InputError("no documents given", help="pass at least one file (txt, md, pdf, docx, html)")
    return [source if isinstance(source, Document) else load_document(Path(source)) for source in sources]


def _prompt_tokens(
    template: PromptTemplate, context: PipelineContext, documents: Sequence[Document], **values: str
) -> int:
    """Tokens of the system prompt plus ``template`` holding one empty, widest-labelled block."""
    widest = max((d.source for d in documents), key=len, default="")
    empty = Chunk("c99999", 0, widest, "", 0, 0, 0, page_start=99999, page_end=99999)
    prompt = context.prompts.system.render() + template.render(documents=render_block(empty), **values)
    return context.backend.count_tokens(prompt)


def worker_budget(question: str, documents: Sequence[Document], context: PipelineContext) -> ChunkBudget:
    """Tokens of text one worker may read (see ``agents.budget``), capped by ``chunk_tokens``."""
    template = context.prompts.worker if question else context.prompts.worker_summary
    values = {"previous_note": "", "position": "99 of 99"} | ({"question": question} if question else {})
    settings, backend = context.settings, context.backend
    return chunk_budget(
        context_window=backend.context_window,
        prompt_tokens=_prompt_tokens(template, context, documents, **values),
        note_tokens=settings.workers.max_tokens,
        output_tokens=settings.workers.max_tokens,
        cap=settings.chunking.chunk_tokens or backend.recommended_chunk_tokens,
        exact_tokenizer=backend.exact_tokenizer,
    )


def single_call_budget(question: str, documents: Sequence[Document], context: PipelineContext) -> ChunkBudget:
    """Tokens of text one answering call may read: the whole window less prompt and answer."""
    template = context.prompts.answer if question else context.prompts.answer_summary
    return chunk_budget(
        context_window=context.backend.context_window,
        prompt_tokens=_prompt_tokens(template, context, documents, **({"question": question} if question else {})),
        note_tokens=0,
        output_tokens=context.settings.manager.max_tokens,
        exact_tokenizer=context.backend.exact_tokenizer,
    )


def take_while_fits(chunks: Sequence[Chunk], budget: int, count_tokens: Any) -> list[Chunk]:
    """The leading chunks whose rendered blocks fit ``budget`` tokens together."""
    taken: list[Chunk] = []
    used = 0
    for chunk in chunks:
        cost = count_tokens(render_block(chunk)) + 1
        if used + cost > budget:
            break
        taken.append(chunk)
        used += cost
    return taken


def check_worker_count(n_workers: int, budget: int, context: PipelineContext) -> None:
    limit = context.settings.workers.max_workers
    if n_workers > limit:
        raise TooManyChunksError(
            f"the documents need {n_workers} workers of {budget} tokens each, more than the limit of {limit}",
            help="raise --max-workers, raise --chunk-tokens if the model reads longer text well, or use "
            "--strategy coa-rag to have the workers read only the passages retrieved for the question",
        )


def load_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    started = time.perf_counter()
    documents = load_sources(state["sources"])
    return {"documents": documents, "timings": {"load_s": time.perf_counter() - started}}


def chunk_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    """``coa``: one reading per chunk. ``full``: the leading units that fit one call."""
    started = time.perf_counter()
    question, documents, count = state["question"], state["documents"], context.backend.count_tokens
    if context.settings.strategy == "full":
        budget = single_call_budget(question, documents, context)
        units = chunk_documents(documents, min(FULL_UNIT_TOKENS, budget.tokens), count)
        update: dict[str, Any] = {"chunks": units, "context": take_while_fits(units, budget.tokens, count)}
    else:
        budget = worker_budget(question, documents, context)
        chunks = chunk_documents(documents, budget.tokens, count)
        check_worker_count(len(chunks), budget.tokens, context)
        update = {"chunks": chunks, "readings": [[chunk] for chunk in chunks]}
    return update | {"budget": budget.tokens, "timings": {"chunk_s": time.perf_counter() - started}}


async def worker_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    """Worker i reads reading i, the previous note and the question, and rewrites the note."""
    notes, readings = state.get("notes", []), state["readings"]
    index = len(notes)
    reading, previous = readings[index], (notes[-1].text if notes else "")
    values = {
        "previous_note": quote_material(previous) or NO_NOTES_YET,
        "documents": render_blocks(reading),
        "position": f"{index + 1} of {len(readings)}",
    }
    question = state["question"]
    template = context.prompts.worker if question else context.prompts.worker_summary
    text, call = await call_model(
        context.backend,
        system=context.prompts.system.render(),
        user=template.render(**values, **({"question": question} if question else {})),
        max_tokens=context.settings.workers.max_tokens,
        max_retries=context.settings.backend.max_retries,
        role="worker",
        index=index,
    )
    text = trim_echo(text)
    # An empty reply is unusable output: keep the previous note rather than lose the evidence.
    note = Note(index, reading, text) if text else Note(index, reading, previous, kept_previous=True)
    return {"notes": [note], "calls": [call]}


async def manager_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    """The manager sees only the question and the last note, never the chunks."""
    note = quote_material(state["notes"][-1].text) or NO_NOTES_YET
    question = state["question"]
    if question:
        user = context.prompts.manager.render(question=question, note=note)
    else:
        user = context.prompts.manager_summary.render(note=note)
    return await _final_call(state, context, user)


async def answer_node(state: PipelineState, context: PipelineContext) -> dict[str, Any]:
    """One call over the whole context (``full``, ``rag``, ``rag-reorder``)."""
    documents, question = render_blocks(state["context"]), state["question"]
    if question:
        user = context.prompts.answer.render(question=question, documents=documents)
    else:
        user = context.prompts.answer_summary.render(documents=documents)
    return await _final_call(state, context, user)


async def _final_call(state: PipelineState, context: PipelineContext, user: str) -> dict[str, Any]:
    answer, call = await call_model(
        context.backend,
        system=context.prompts.system.render(),
        user=user,
        max_tokens=context.settings.manager.max_tokens,
        max_retries=context.settings.backend.max_retries,
        role="manager",
        index=0,
    )
    answer = trim_echo(answer)
    read = [chunk for reading in state.get("readings", []) for chunk in reading] + state.get("context", [])
    citations, dropped = parse_citations(answer, {chunk.id: chunk for chunk in read})
    return {"answer": answer, "calls": [call], "citations": citations, "dropped_citations": dropped}


def route_after_load(state: PipelineState, context: PipelineContext) -> Literal["chunk", "retrieve"]:
    """Chunk the whole text (``coa``, ``full``) or retrieve passages (the rest)."""
    return "chunk" if context.settings.strategy in ("coa", "full") else "retrieve"


def route_to_reader(state: PipelineState) -> Literal["worker", "answer"]:
    """Workers when there are readings (``coa``, ``coa-rag``), else one answering call."""
    return "worker" if state.get("readings") else "answer"


def route_after_worker(state: PipelineState) -> Literal["worker", "manager"]:
    """Next reading if any is left, else the manager."""
    return "worker" if len(state.get("notes", [])) < len(state["readings"]) else "manager"
