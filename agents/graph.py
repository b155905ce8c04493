"""The Chain-of-Agents graph: load → chunk → worker (once per chunk, in order) → manager."""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.nodes import (
    PipelineContext,
    chunk_node,
    load_node,
    manager_node,
    route_after_worker,
    worker_node,
)
from agents.state import InputState, PipelineState


def build_graph(context: PipelineContext) -> Any:
    """Compile the graph with ``context`` bound into every node."""
    graph = StateGraph(PipelineState, input_schema=InputState)
    graph.add_node("load", partial(load_node, context=context))
    graph.add_node("chunk", partial(chunk_node, context=context))
    graph.add_node("worker", partial(worker_node, context=context))
    graph.add_node("manager", partial(manager_node, context=context))
    graph.add_edge(START, "load")
    graph.add_edge("load", "chunk")
    graph.add_edge("chunk", "worker")
    graph.add_conditional_edges("worker", route_after_worker, ["worker", "manager"])
    graph.add_edge("manager", END)
    return graph.compile()
