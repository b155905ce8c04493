"""The main page: upload documents, ask questions, watch the agents read, read the sourced answer."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from agents import DocQA, Settings
from agents.errors import DocQAError
from app import backends
from app.limits import MAX_UPLOAD_MB, UPLOAD_TYPES
from app.live import follow_run
from app.render import render_turn
from app.runner import PipelineRun
from app.sidebar import render_sidebar
from app.state import SessionData, Turn, current_session
from app.uploads import FailedFile, LoadedFile, Upload, format_size, load_upload
from retrieval.documents import Document


def render_ask_page() -> None:
    """Draw the whole page for this session."""
    session = current_session()
    settings = render_sidebar(session.index_path)
    st.title("docqa")
    st.caption("Ask questions about documents far longer than the model's window. Workers read them in turn, "
               "each passing on a note; a manager answers from the last note, citing the passages.")  # fmt: skip
    documents = render_documents(session)
    for number, turn in enumerate(session.history):
        render_turn(turn, key=f"turn-{number}")
    blocked = _cannot_ask(session, documents, settings)
    question = st.chat_input(_input_placeholder(documents, settings), disabled=blocked)
    if question and settings is not None:
        start_run(session, question, documents, settings)
        st.rerun()
    if session.run is not None:
        follow_run(session)


def render_documents(session: SessionData) -> list[Document]:
    """The uploader, a table of the files that loaded, and one message per file that did not."""
    uploaded = st.file_uploader(
        "Documents", accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB, key="uploads",
        help="The type is checked from the file's content, not only its name.",
    )  # fmt: skip
    st.caption(f"{', '.join(t.upper() for t in UPLOAD_TYPES)} · up to {MAX_UPLOAD_MB} MB per file")
    files = sync_uploads(session, uploaded or [])
    for file in files:
        if isinstance(file, FailedFile):
            st.error(file.message, icon=":material/error:")
    loaded = [file for file in files if isinstance(file, LoadedFile)]
    if loaded:
        st.table([_table_row(file) for file in loaded], hide_index=True)
    return [file.document for file in loaded]


def sync_uploads(session: SessionData, uploaded: Sequence[UploadedFile]) -> list[LoadedFile | FailedFile]:
    """Load new uploads once, forget removed ones; returns the current files in upload order."""
    current = {file.file_id for file in uploaded}
    for file_id in [file_id for file_id in session.files if file_id not in current]:
        del session.files[file_id]
    for file in uploaded:
        if file.file_id not in session.files:
            with st.spinner(f"Reading {file.name}…"):
                session.files[file.file_id] = load_upload(Upload(file.file_id, file.name, file.getvalue()))
    return [session.files[file.file_id] for file in uploaded]


def start_run(session: SessionData, question: str, documents: list[Document], settings: Settings) -> None:
    """Record a new turn and start answering it in the background (or record why it cannot start)."""
    turn = Turn(question.strip(), settings.strategy, [document.source for document in documents])
    session.history.append(turn)
    try:
        qa = DocQA(settings, backend=backends.backend_for(settings))
    except DocQAError as error:
        turn.error = str(error)
        return
    session.run = PipelineRun(qa, turn.question, documents).start()


def _table_row(file: LoadedFile) -> dict[str, str]:
    pages = "—" if file.pages is None else str(file.pages)
    return {"File": file.document.source, "Size": format_size(file.size_bytes), "Pages": pages,
            "Tokens (approx.)": f"{file.tokens:,}"}  # fmt: skip


def _cannot_ask(session: SessionData, documents: list[Document], settings: Settings | None) -> bool:
    return session.run is not None or not documents or settings is None


def _input_placeholder(documents: list[Document], settings: Settings | None) -> str:
    if settings is None:
        return "Fix the settings in the sidebar first"
    if not documents:
        return "Upload a document first"
    return "Ask a question about the documents"
