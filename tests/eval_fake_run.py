"""Test-only: a scripted fake backend for the eval runner, and a script running ``run_eval`` with it.

The resume test starts this file in a subprocess and kills it part-way:

    python -m tests.eval_fake_run DATASET OUT_DIR CALL_LOG --delay 0.05

The fake reads like a very literal model: a worker's note lists the code words (``WORD-<n>``) in its
prompt, an answer is the first code word in its prompt, and any prompt mentioning ``EXPLODE``
fails with a ``BackendError``. Every call it really makes (cache hits never reach it) is appended
to CALL_LOG as the sha256 of its prompt, so a test can count calls across processes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from agents.backends import Backend
from agents.errors import BackendError
from agents.settings import Settings
from tests.fakes import RecordingChatModel, words

CODE_WORD = re.compile(r"WORD-\d+")
FAKE_WINDOW = 2048


def reply_for(prompt: str, explode: bool = True) -> str:
    """What the fake says to ``prompt``."""
    if explode and "EXPLODE" in prompt:
        raise BackendError("the fake model refuses questions that say EXPLODE")
    found = CODE_WORD.findall(prompt)
    if "Answer the question" in prompt:
        return found[0] if found else "The text does not say."
    return "Code words seen: " + " ".join(dict.fromkeys(found)) if found else "Nothing relevant."


def fake_backend(call_log: Path | None = None, delay: float = 0.0, explode: bool = True) -> Backend:
    """A fresh fake backend; with ``call_log``, each real call appends its prompt's sha256 there;
    without ``explode`` it answers EXPLODE questions too."""

    def reply(prompt: str, n: int) -> str:
        time.sleep(delay)
        if call_log is not None:
            with call_log.open("a", encoding="utf-8") as log:
                log.write(hashlib.sha256(prompt.encode()).hexdigest() + "\n")
        return reply_for(prompt, explode)

    model = RecordingChatModel(reply)
    return Backend(name="fake", chat_model=model, context_window=FAKE_WINDOW, count_tokens=words)


def write_code_word_dataset(
    path: Path,
    n: int,
    *,
    explode: Iterable[int] = (),
    wrong: Iterable[int] = (),
    missing: Iterable[int] = (),
    filler: int = 8,
) -> Path:
    """A plain-format dataset: document i hides ``WORD-i`` between filler sentences, and asks for it.

    Questions in ``explode`` make the fake fail; references in ``wrong`` are ``WORD-99``, so a right
    reading scores 0 there; documents in ``missing`` hide no code word, so the fake declines.
    """
    explode, wrong, missing = set(explode), set(wrong), set(missing)
    sentence = "The harbour was quiet that season and the boats stayed in. "
    rows = []
    for i in range(n):
        hidden = "" if i in missing else f"The code word for item {i} is WORD-{i}. "
        context = sentence * filler + hidden + sentence * filler
        question = f"What is the code word for item {i}?" + (" EXPLODE" if i in explode else "")
        answer = "WORD-99" if i in wrong else f"WORD-{i}"
        rows.append({"id": f"q{i}", "context": context, "question": question, "answers": [answer]})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def fake_settings(**sections: object) -> Settings:
    """Settings for runs with the fake: small chunks (several workers), a remote kind (so concurrency is allowed)."""
    given = {
        "backend": {"kind": "openai", "model": "fake", "base_url": "http://127.0.0.1:9/v1"},
        "chunking": {"chunk_tokens": 60},
        "workers": {"max_tokens": 32},
        "manager": {"max_tokens": 32},
        **sections,
    }
    return Settings(**given)


def main(argv: list[str] | None = None) -> int:
    from eval.runner import run_eval

    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("call_log")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--strategies", default="coa,full")
    args = parser.parse_args(argv)
    summary = run_eval(
        [args.dataset], args.strategies.split(","), None, 0, fake_settings(), args.out,
        backend_factory=lambda _settings: fake_backend(Path(args.call_log), args.delay),
    )  # fmt: skip
    print(f"ran {summary.ran} skipped {summary.skipped} errors {summary.errors} calls {summary.model_calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
