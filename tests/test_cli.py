"""The CLI end to end in a subprocess: a real run with --json, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfWriter

REPO = Path(__file__).resolve().parent.parent


def docqa(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str, code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("docqa: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert result.stdout == ""


@pytest.mark.real_model
def test_ask_json_with_the_embedded_model(short_sample: Path) -> None:
    result = docqa(
        "ask", str(short_sample), "-q", "Who was the first keeper?",
        "--chunk-tokens", "256", "--note-tokens", "64", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "notes", "usage", "timings"}
    assert len(data["notes"]) >= 3
    assert data["notes"][0]["sources"][0]["file"] == short_sample.name
    assert data["strategy"] == "coa" and isinstance(data["citations"], list)
    assert data["usage"]["model_calls"] == len(data["notes"]) + 1
    assert data["timings"]["total_s"] > 0
    # one progress line per worker on stderr
    worker_lines = [line for line in result.stderr.splitlines() if line.startswith("worker ")]
    assert len(worker_lines) == len(data["notes"])


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(docqa("ask", str(tmp_path / "nope.pdf"), "-q", "q"), "nope.pdf")


def test_unsupported_type(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    assert_one_line_error(docqa("ask", str(path), "-q", "q"), "sheet.xlsx", ".pdf")


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n this is not a pdf body \x00\x01")
    assert_one_line_error(docqa("ask", str(path), "-q", "q"), "broken.pdf")


def test_encrypted_pdf(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    assert_one_line_error(docqa("ask", str(path), "-q", "q"), "locked.pdf", "encrypted")


def test_file_without_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("  \n\n ", encoding="utf-8")
    assert_one_line_error(docqa("ask", str(path), "-q", "q"), "blank.txt")


def test_invalid_setting_is_a_usage_error(sample_path: Path) -> None:
    assert_one_line_error(docqa("ask", str(sample_path), "-q", "q", "--chunk-tokens", "5"), "chunk_tokens", code=2)


@pytest.mark.real_model
def test_quantized_cache_without_flash_attention_is_a_one_line_error(sample_path: Path) -> None:
    result = docqa("ask", str(sample_path), "-q", "q", "--kv-type", "q4_0", "--no-flash-attn")
    assert_one_line_error(result, "q4_0 KV cache without flash attention")


def test_missing_model_file(sample_path: Path, tmp_path: Path) -> None:
    result = docqa("ask", str(sample_path), "-q", "q", "--model-path", str(tmp_path / "missing.gguf"))
    assert_one_line_error(result, "missing.gguf")


def test_help_lists_commands_and_options() -> None:
    top = docqa("--help")
    assert top.returncode == 0 and "ask" in top.stdout and "summarize" in top.stdout
    ask = docqa("ask", "--help")
    for option in (
        "--backend",
        "--model-path",
        "--model",
        "--base-url",
        "--context-window",
        "--kv-type",
        "--flash-attn",
        "--chunk-tokens",
        "--json",
    ):
        assert option in ask.stdout
