"""The Streamlit script: ``streamlit run app/main.py`` (or ``docqa ui``) starts the app."""

from __future__ import annotations

import streamlit as st

from app.ask_page import render_ask_page
from app.evaluation_page import render_evaluation_page

st.set_page_config(page_title="docqa", page_icon="📚")
pages = [
    st.Page(render_ask_page, title="Ask", icon=":material/forum:", url_path="ask", default=True),
    st.Page(render_evaluation_page, title="Evaluation runs", icon=":material/monitoring:", url_path="evaluation"),
]
st.navigation(pages).run()
