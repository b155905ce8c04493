"""The live panel of a run in progress: status, progress bar, elapsed time, notes, Stop button.

The page's script polls the run until it ends; a click on Stop reruns the script, which asks
the run to stop and goes back to polling. When the run ends its outcome goes into the turn.
"""

from __future__ import annotations

import time

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from agents.results import NoteWritten
from app.limits import POLL_SECONDS
from app.progress import describe_progress
from app.render import render_note
from app.runner import PipelineRun
from app.state import SessionData, Turn


def follow_run(session: SessionData) -> None:
    """Show the session's run until it ends, then record its outcome and redraw the page."""
    run, turn = session.run, session.history[-1]
    assert run is not None
    with st.chat_message("assistant"):
        status, bar = st.empty(), st.empty()
        if st.button("Stop", key="stop-run", icon=":material/stop_circle:", disabled=run.stop_requested):
            run.request_stop()
        _poll(run, turn, status, bar)
    finish_run(session)
    st.rerun()


def _poll(run: PipelineRun, turn: Turn, status: DeltaGenerator, bar: DeltaGenerator) -> None:
    """Redraw the progress every ``POLL_SECONDS`` until the run is done; notes go below the button."""
    notes_box = st.container()
    shown = 0
    while True:
        done = run.done  # read first, so the last redraw sees every event
        view = describe_progress(run.events(), turn.strategy)
        stopping = " Stopping after the current model call…" if run.stop_requested and not done else ""
        status.markdown(f"{view.status}{stopping}  \n:gray[Elapsed: {run.elapsed_s:.1f} s]")
        bar.progress(view.fraction)
        with notes_box:
            for note in view.notes[shown:]:
                render_note(note)
        shown = len(view.notes)
        if done:
            return
        time.sleep(POLL_SECONDS)


def finish_run(session: SessionData) -> None:
    """Move a finished run's outcome into its turn and clear the run."""
    run, turn = session.run, session.history[-1]
    assert run is not None and run.done
    turn.answer, turn.error, turn.stopped = run.answer, run.error, run.stopped
    if run.answer is None:
        turn.partial_notes = [event.note for event in run.events() if isinstance(event, NoteWritten)]
    session.run = None
