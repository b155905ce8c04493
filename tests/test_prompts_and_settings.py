"""Prompt files are checked at load time; settings are validated and read from the environment once."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.errors import ConfigError
from agents.settings import Settings
from prompts import PLACEHOLDERS, load_prompt, load_prompts


def test_bundled_prompts_load_and_render() -> None:
    prompts = load_prompts()
    text = prompts.worker.render(
        question="Q?", previous_note="N", documents="<document>C</document>", position="1 of 2"
    )
    assert "Q?" in text and "<document>C</document>" in text and "<notes>\nN\n</notes>" in text


def test_override_replaces_a_bundled_prompt(tmp_path: Path) -> None:
    (tmp_path / "manager.txt").write_text("Notes {note}. Answer {question}.", encoding="utf-8")
    assert load_prompt("manager", tmp_path).render(question="q", note="n") == "Notes n. Answer q."
    assert "Readers went through" in load_prompt("manager_summary", tmp_path).text  # others stay bundled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Answer {question} from {notes}.", r"missing: \['note'\], unknown: \['notes'\]"),
        ("Answer {question}.", r"missing: \['note'\]"),
        ("Answer {question} {note", "not a valid template"),
    ],
)
def test_wrong_placeholders_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "manager.txt").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        load_prompt("manager", tmp_path)
    assert str(tmp_path / "manager.txt") in str(raised.value)


def test_every_prompt_name_has_a_bundled_file() -> None:
    for name in PLACEHOLDERS:
        assert load_prompt(name).text


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCQA_CHUNKING__CHUNK_TOKENS", "800")
    monkeypatch.setenv("DOCQA_BACKEND__KIND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    settings = Settings()
    assert settings.chunking.chunk_tokens == 800
    assert settings.backend.base_url == "http://127.0.0.1:9/v1"
    assert "sk-secret-value" not in repr(settings)
    assert "sk-secret-value" not in settings.model_dump_json()
    # keyword arguments win over the environment, section by section
    assert Settings(chunking={"chunk_tokens": 300}).chunking.chunk_tokens == 300
    assert Settings(backend={"model": "m"}).backend.kind == "openai"


def test_settings_reject_unknown_and_invalid_values() -> None:
    with pytest.raises(ValidationError):
        Settings(chunking={"chunk_size": 100})
    with pytest.raises(ValidationError):
        Settings(chunking={"chunk_tokens": 5})
    with pytest.raises(ValidationError):
        Settings(backend={"kind": "anthropic"})
