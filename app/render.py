"""Draw a finished turn: the answer, its cited passages, the workers' notes, usage and downloads."""

from __future__ import annotations

import re

import streamlit as st

from agents.results import Answer, Citation, Note
from app.export import answer_json, answer_markdown, citation_label, download_name, quote
from app.state import Turn

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|>~$<])")


def plain(text: str) -> str:
    """``text`` escaped so that Markdown shows it as written (document text is not markup).

    >>> plain("*not bold* costs $5")
    '\\\\*not bold\\\\* costs \\\\$5'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_turn(turn: Turn, key: str) -> None:
    """One question and its outcome, as a pair of chat messages; ``key`` makes widget keys unique."""
    with st.chat_message("user"):
        st.markdown(plain(turn.question))
        st.caption(f"{turn.strategy} · {', '.join(turn.documents)}")
    if turn.answer is None and turn.error is None and not turn.stopped:
        return  # still running: the live panel draws the rest
    with st.chat_message("assistant"):
        if turn.error is not None:
            st.error(turn.error, icon=":material/error:")
        elif turn.stopped:
            st.warning("Stopped before the answer.", icon=":material/stop_circle:")
        if turn.partial_notes:
            render_notes(turn.partial_notes, expanded=False)
        if turn.answer is not None:
            render_answer(turn.answer, key)


def render_answer(answer: Answer, key: str) -> None:
    """The answer text, then sources, notes, usage and the two downloads."""
    st.markdown(answer.answer.replace("$", r"\$") or "*The model wrote no answer.*")
    render_citations(answer.citations, answer.dropped_citations)
    if answer.notes:
        render_notes(answer.notes, expanded=False)
    elif answer.context:
        label = f"What the model read ({len(answer.context)} part{'s' if len(answer.context) != 1 else ''})"
        with st.expander(label, icon=":material/article:"):
            for chunk in answer.context:
                st.caption(f"[{chunk.id}] {chunk.location}")
                st.markdown(quote(plain(chunk.text)))
    render_usage(answer)
    render_downloads(answer, key)


def render_citations(citations: list[Citation], dropped: int) -> None:
    """Each cited passage in an expander labelled with its id, file, page and characters."""
    if citations:
        st.markdown("**Sources**")
    for citation in citations:
        with st.expander(citation_label(citation), icon=":material/format_quote:"):
            st.markdown(quote(plain(citation.chunk.text)))
    if not citations:
        st.caption("The answer cites no passage: check it against the notes below.")
    if dropped:
        st.caption(f"{dropped} cited id(s) pointed to no passage of this run and are not shown.")


def render_notes(notes: list[Note], *, expanded: bool) -> None:
    """The chain of notes, in reading order, in one expander."""
    with st.expander(f"Notes from the workers ({len(notes)})", expanded=expanded, icon=":material/edit_note:"):
        for note in notes:
            render_note(note)


def render_note(note: Note) -> None:
    """One worker's note under the place it read."""
    kept = " · output unusable, previous note kept" if note.kept_previous else ""
    st.markdown(f"**Worker {note.index + 1}** · {plain(note.location)}{kept}")
    st.markdown(quote(plain(note.text)) if note.text.strip() else "*(empty note)*")


def render_usage(answer: Answer) -> None:
    """Model calls, tokens and seconds, in one row."""
    usage = answer.usage
    calls, tokens_in, tokens_out, seconds = st.columns(4)
    calls.metric("Model calls", usage["model_calls"])
    tokens_in.metric("Tokens in", f"{usage['prompt_tokens']:,}")
    tokens_out.metric("Tokens out", f"{usage['completion_tokens']:,}")
    seconds.metric("Seconds", f"{answer.timings.get('total_s', 0.0):.1f}")


def render_downloads(answer: Answer, key: str) -> None:
    """Markdown and JSON downloads of the answer with its citations and notes."""
    markdown_col, json_col, _ = st.columns([1, 1, 2])
    markdown_col.download_button(
        "Markdown", answer_markdown(answer), file_name=download_name(answer, "md"), mime="text/markdown",
        key=f"{key}-md", icon=":material/download:", on_click="ignore",
    )  # fmt: skip
    json_col.download_button(
        "JSON", answer_json(answer), file_name=download_name(answer, "json"), mime="application/json",
        key=f"{key}-json", icon=":material/download:", on_click="ignore",
    )  # fmt: skip
