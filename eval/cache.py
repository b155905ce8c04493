"""Model responses cached on disk, so that a re-run with the same settings makes no model calls.

A small SQLite-backed LangChain cache: set it as ``chat_model.cache`` and LangChain looks every
call up by (prompt, llm_string) before making it. Entries are plain JSON (the reply text, its
token usage and metadata), never pickles or serialised classes, so a cache file can only ever
give back text. The LangChain models run their calls in worker threads; one lock keeps the
single connection safe.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses "
    "(prompt_sha TEXT, llm_sha TEXT, value TEXT, PRIMARY KEY (prompt_sha, llm_sha))"
)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encode(generations: Sequence[Generation]) -> str:
    items: list[dict[str, Any]] = []
    for generation in generations:
        item: dict[str, Any] = {"text": generation.text, "info": generation.generation_info}
        if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
            message = generation.message
            item["content"] = message.content
            item["usage"] = dict(message.usage_metadata) if message.usage_metadata else None
            item["metadata"] = message.response_metadata
        items.append(item)
    return json.dumps(items, ensure_ascii=False)


def _decode(value: str) -> list[Generation]:
    generations: list[Generation] = []
    for item in json.loads(value):
        if "content" in item and (item["usage"] or not isinstance(item["content"], str)):
            message = AIMessage(
                content=item["content"], usage_metadata=item["usage"], response_metadata=item["metadata"] or {}
            )
            generations.append(ChatGeneration(message=message, generation_info=item["info"]))
        else:
            # A reply without token usage comes back as a plain Generation: LangChain turns it into a
            # message without usage, whereas for a ChatGeneration it would invent a usage dict holding
            # only a zero cost, which callers reading input_tokens cannot use.
            generations.append(Generation(text=item["text"], generation_info=item["info"]))
    return generations


class SQLiteResponseCache(BaseCache):
    """LangChain responses in one SQLite file, keyed by sha256 of the prompt and of the llm_string.

    ``hits`` and ``misses`` count lookups since it was opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._connection:
            self._connection.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The cached generations for this prompt and model configuration, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT value FROM responses WHERE prompt_sha = ? AND llm_sha = ?",
                (_sha256(prompt), _sha256(llm_string)),
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return _decode(row[0])

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store (or replace) the generations for this prompt and model configuration, committed at once."""
        value = _encode(return_val)
        with self._lock, self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (_sha256(prompt), _sha256(llm_string), value)
            )

    def clear(self, **kwargs: Any) -> None:
        """Forget every response."""
        with self._lock, self._connection:
            self._connection.execute("DELETE FROM responses")

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database; the cache must not be used afterwards."""
        with self._lock:
            self._connection.close()
