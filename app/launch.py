"""``docqa ui``: start the Streamlit app with docqa's defaults; further options go to Streamlit.

e.g. ``docqa ui --server.port 8600 --server.headless true``.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from app.limits import MAX_UPLOAD_MB

APP_SCRIPT = Path(__file__).resolve().with_name("main.py")

DEFAULT_OPTIONS: tuple[str, ...] = (
    "--server.maxUploadSize", str(MAX_UPLOAD_MB),
    "--server.address", "localhost",
    "--browser.gatherUsageStats", "false",  # no network: Streamlit would otherwise send usage statistics
    "--server.showEmailPrompt", "false",  # and ask for an e-mail address on the terminal
    "--client.toolbarMode", "minimal",  # no "Deploy" button: this is an app, not a Streamlit project
)  # fmt: skip
"""Given before the user's options, so the user's win (Streamlit keeps the last value given)."""


def streamlit_command(argv: list[str]) -> list[str]:
    """The command that starts the app with the user's Streamlit options ``argv``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), *DEFAULT_OPTIONS, *argv]


def main(argv: list[str]) -> int:
    """Run the app until Streamlit exits; returns its exit status.

    Ctrl-C and SIGTERM reach Streamlit, which then shuts down cleanly; ``docqa ui`` waits for it
    rather than leaving a server behind.
    """
    if importlib.util.find_spec("streamlit") is None:
        print("docqa ui: Streamlit is not installed (pip install 'docqa[ui]')", file=sys.stderr)
        return 1
    server = subprocess.Popen(streamlit_command(argv))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())
    try:
        while True:
            try:
                return server.wait()
            except KeyboardInterrupt:  # a terminal's Ctrl-C reaches both; a kill -INT only this process
                server.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
