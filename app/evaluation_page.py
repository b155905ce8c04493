"""The "Evaluation runs" page: open a run folder and show its report and plots."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.reports import REPORT_NAME, ReportImage, plots, run_folders, split_report


def render_evaluation_page() -> None:
    """Ask for a run folder, then show ``report.md`` (tables included) and its PNG plots."""
    st.title("Evaluation runs")
    st.caption(f"An evaluation run writes a folder with `{REPORT_NAME}` and its plots (`*.png`). "
               "Give the folder of one run, or a folder of runs to choose from.")  # fmt: skip
    typed = st.text_input("Run folder", key="eval-folder", placeholder="runs/NAME")
    if not typed.strip():
        st.info("Enter the path of an evaluation run folder.", icon=":material/folder_open:")
        return
    folder = Path(typed.strip()).expanduser()
    if not folder.is_dir():
        st.error(f"{folder}: no such folder.", icon=":material/error:")
        return
    runs = [] if (folder / REPORT_NAME).is_file() else run_folders(folder)
    if runs:
        folder = st.selectbox("Run", runs, format_func=lambda run: run.name, key="eval-run")
    show_run(folder)


def show_run(folder: Path) -> None:
    """The report with its plots in place, then any plot it does not show."""
    report = folder / REPORT_NAME
    pngs = plots(folder)
    if not report.is_file() and not pngs:
        st.warning(f"{folder} holds no {REPORT_NAME} and no PNG plots: is it an evaluation run folder?",
                   icon=":material/warning:")  # fmt: skip
        return
    shown: set[Path] = set()
    if report.is_file():
        for part in split_report(report.read_text(encoding="utf-8", errors="replace"), folder):
            if isinstance(part, ReportImage):
                st.image(str(part.path), caption=part.alt or part.path.name)
                shown.add(part.path)
            else:
                st.markdown(part)
    else:
        st.info(f"No {REPORT_NAME} in this folder; showing its plots.", icon=":material/info:")
    others = [png for png in pngs if png not in shown]
    if others:
        st.subheader("Plots")
        for png in others:
            st.image(str(png), caption=png.name)
