"""The Streamlit app: upload documents, watch the agents read, get a sourced answer.

``docqa ui`` (see :mod:`app.launch`) or ``streamlit run app/main.py`` starts it. The app is a thin
layer over :class:`agents.DocQA`; no pipeline logic lives here.
"""
