"""The pipeline graph, one builder for every strategy.

``coa``:      load → chunk → worker (once per chunk, in order) → manager
``full``:     load → chunk → answer
``rag``, ``rag-reorder``: load → retrieve → answer
``coa-rag``:  load → retrieve → worker (once per group of passages) → manager
"""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.nodes import (
    PipelineContext,
    answer_node,
    chunk_node,
    load_node,
    manager_node,
    route_after_load,
    route_after_worker,
    route_to_reader,
    worker_node,
)
from agents.retrieve import retrieve_node
from agents.state import InputState, PipelineState


def build_graph(context: PipelineContext) -> Any:
    """Compile the graph with ``context`` bound into every node and router."""
    graph = StateGraph(PipelineState, input_schema=InputState)
    graph.add_node("load", partial(load_node, context=context))
    graph.add_node("chunk", partial(chunk_node, context=context))
    graph.add_node("retrieve", partial(retrieve_node, context=context))
    graph.add_node("worker", partial(worker_node, context=context))
    graph.add_node("manager", partial(manager_node, context=context))
    graph.add_node("answer", partial(answer_node, context=context))
    graph.add_edge(START, "load")
    graph.add_conditional_edges("load", partial(route_after_load, context=context), ["chunk", "retrieve"])
    graph.add_conditional_edges("chunk", route_to_reader, ["worker", "answer"])
    graph.add_conditional_edges("retrieve", route_to_reader, ["worker", "answer"])
    graph.add_conditional_edges("worker", route_after_worker, ["worker", "manager"])
    graph.add_edge("manager", END)
    graph.add_edge("answer", END)
    return graph.compile()
