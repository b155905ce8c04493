"""llama.cpp KV-cache types with the real embedded model."""

from __future__ import annotations

import pytest

from agents import DocQA, Document, Settings
from agents.backends import create_backend
from agents.errors import ConfigError
from agents.settings import BackendSettings

pytestmark = pytest.mark.real_model

FACT = Document("note.txt", "The station's radio call sign is KESSEL-7. It was assigned in 1954.")


def test_q8_0_cache_answers_a_short_real_question() -> None:
    qa = DocQA(Settings(backend={"kv_type": "q8_0"}, manager={"max_tokens": 32}, workers={"max_tokens": 48}))
    assert qa.backend.name.endswith("+kv-q8_0")
    llama = qa.backend.chat_model._model.llama  # type: ignore[attr-defined]
    assert llama.context_params.type_k == llama.context_params.type_v == 8  # GGML_TYPE_Q8_0
    answer = qa.ask("What is the station's radio call sign?", [FACT])
    assert "KESSEL" in answer.answer.upper()


def test_an_f16_cache_without_flash_attention_answers_a_short_real_question() -> None:
    qa = DocQA(Settings(backend={"flash_attn": False}, manager={"max_tokens": 32}, workers={"max_tokens": 48}))
    params = qa.backend.chat_model._model.llama.context_params  # type: ignore[attr-defined]
    assert params.flash_attn_type == 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
    assert params.type_k == params.type_v == 1  # GGML_TYPE_F16
    answer = qa.ask("What is the station's radio call sign?", [FACT])
    assert "KESSEL" in answer.answer.upper()


def test_flash_attention_is_on_by_default_for_every_cache_type() -> None:
    for kv_type in ("f16", "q8_0"):
        llama = create_backend(BackendSettings(kv_type=kv_type)).chat_model._model.llama  # type: ignore[attr-defined]
        assert llama.context_params.flash_attn_type == 1  # LLAMA_FLASH_ATTN_TYPE_ENABLED


def test_quantized_cache_without_flash_attention_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="q4_0 KV cache without flash attention") as raised:
        create_backend(BackendSettings(kv_type="q4_0", flash_attn=False))
    assert "--kv-type f16" in raised.value.help and "--no-flash-attn" in raised.value.help
