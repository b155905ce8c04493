"""Shared fixtures: the sample document, and a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "harbor_light_report.md"


@pytest.fixture(autouse=True)
def _own_calibration_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the user's stored calibrations (which would change chunk sizes)."""
    monkeypatch.setenv("DOCQA_CHUNKING__CALIBRATION_FILE", str(tmp_path / "calibration.json"))


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def short_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's first ~700 words: several chunks at a small chunk size, quick to read."""
    words = SAMPLE.read_text(encoding="utf-8").split(" ")
    path = tmp_path_factory.mktemp("docs") / "kessel_point_intro.md"
    path.write_text(" ".join(words[:700]), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the embedded SmolLM2 on 127.0.0.1; yields its base URL."""
    from agents.backends.llamacpp import embedded_model_path

    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_model_path()), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "8192", "--interrupt_requests", "False",
    ]  # fmt: skip
    # The server logs a lot; a pipe nobody reads would fill up and block it, so log to a file.
    log_path = tmp_path_factory.mktemp("server") / "llama_cpp_server.log"
    log = log_path.open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert server.returncode is not None
