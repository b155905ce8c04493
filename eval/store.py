"""What a run folder holds, and the rules for adding to it.

::

    runs/NAME/run.json        the settings the run was made with (never the API key), seed, datasets,
                              and the chunk size "the model's default" meant when the run first used it
    runs/NAME/results.jsonl   one JSON line per (example, strategy, chunk size), appended as each finishes
    runs/NAME/cache.sqlite    model responses (see eval.cache); kept out of git by runs/NAME/.gitignore
    runs/NAME/run.lock        held while a run writes here, so two runs never write to one folder
    runs/NAME/report.md, *.png  written by eval.report

A run folder may be resumed and grown (more examples, strategies or chunk sizes) only with the
same settings, prompts, seed and default chunk size: otherwise its results would mix answers of
different configurations.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.errors import ConfigError, InputError
from agents.settings import Settings

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
CACHE_FILE = "cache.sqlite"
LOCK_FILE = "run.lock"
GITIGNORE = (
    "# The model-response cache is large and machine-specific; results and reports are not.\n"
    f"{CACHE_FILE}*\n{LOCK_FILE}\n"
)
FORMAT_VERSION = 1


def record_key(record: dict[str, Any]) -> tuple[str, str, int | None]:
    """What a result line is the result of: (example id, strategy, chunk size or None for the default)."""
    return (record["example_id"], record["strategy"], record.get("chunk_tokens"))


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """The run's result lines, the last one for each (example, strategy); a torn last line is ignored."""
    path = out_dir / RESULTS_FILE
    if not path.exists():
        return []
    records: dict[tuple[str, str, int | None], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # only the line being written when the process died can be incomplete
        records[record_key(record)] = record
    return list(records.values())


class ResultsWriter:
    """Appends result lines to a JSON-lines file, each flushed and fsync'd before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        _drop_torn_tail(path)
        self._file = path.open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, durably."""
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a killed process left without its newline, so the next line starts clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the folder's lock for the duration; another live run holding it is an error.

    The operating system releases the lock when its process dies, even by SIGKILL.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / LOCK_FILE).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ConfigError(
                f"another run is writing to {out_dir}", help="wait for it to finish, or use another --out folder"
            ) from error
        yield


UNFINGERPRINTED: dict[str, Any] = {
    "strategy": True,  # varies within a run
    "backend": {"api_key", "n_threads", "timeout_s", "max_retries"},
    "retrieval": {"index_dir"},
    "chunking": {"chunk_tokens", "calibration_file"},  # the chunk size is part of each result's key
}
"""Settings left out of the resume check: what varies within a run, the API key (never stored), and
what cannot change an answer."""
LLAMACPP_ONLY = {"kv_type", "flash_attn"}
"""Backend settings that only llama.cpp reads, left out of other backends' fingerprints."""


def prompt_fingerprints(prompts_dir: Path | None) -> dict[str, str]:
    """A short hash of each prompt a run uses, from ``prompts_dir`` where it has the file, else the
    bundled one (``None``: all bundled): editing one changes answers."""
    from prompts import PLACEHOLDERS, load_prompt

    return {
        name: hashlib.sha256(load_prompt(name, prompts_dir).text.encode()).hexdigest()[:12] for name in PLACEHOLDERS
    }


def run_fingerprint(settings: Settings, seed: int) -> dict[str, Any]:
    """What must match to resume a run: the settings and prompts that can change an answer, and the seed."""
    exclude = UNFINGERPRINTED
    if settings.backend.kind != "llamacpp":
        exclude = {**UNFINGERPRINTED, "backend": UNFINGERPRINTED["backend"] | LLAMACPP_ONLY}
    return {
        "settings": settings.model_dump(mode="json", exclude=exclude),
        "prompts": prompt_fingerprints(settings.prompts_dir),
        "seed": seed,
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def fingerprint_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"name: stored → current"`` for every setting both know that differs.

    A setting only one side has is not a difference: docqa gained (or lost) it in between, and a
    new setting's default keeps the old behaviour.

    >>> fingerprint_differences({"seed": 0, "settings": {"a": 1}}, {"seed": 0, "settings": {"a": 2, "new": 3}})
    ['settings.a: 1 → 2']
    """
    old, new = _flatten(stored), _flatten(current)
    return [f"{key}: {old[key]!r} → {new[key]!r}" for key in sorted(old.keys() & new.keys()) if old[key] != new[key]]


def prepare_run_dir(out_dir: Path, fingerprint: dict[str, Any], invocation: dict[str, Any]) -> None:
    """Create or reopen ``out_dir``: refuse other settings, then record this invocation in run.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / RUN_FILE
    now = datetime.now(UTC).isoformat(timespec="seconds")
    stored: dict[str, Any] = {"format": FORMAT_VERSION, "created_at": now}
    if run_file.exists():
        try:
            stored = read_run_info(out_dir)
        except json.JSONDecodeError as error:
            raise InputError(f"{run_file}: not valid JSON", help="repair it, or use a new --out folder") from error
        stored_fingerprint = {key: stored.get(key) for key in fingerprint}
        differences = fingerprint_differences(stored_fingerprint, fingerprint)
        if differences:
            raise ConfigError(
                f"{out_dir} holds a run made with other settings ({'; '.join(differences[:6])})",
                help=f"use a new --out folder, or the settings recorded in {run_file}",
            )
    stored.update(fingerprint, **invocation, updated_at=now)
    _write_run_info(out_dir, stored)
    gitignore = out_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE, encoding="utf-8")


def hold_default_chunk(out_dir: Path, tokens: int | None, origin: str) -> None:
    """Record what "the model's default chunk size" meant when the run first used it, and refuse another.

    With no ``--chunk-tokens``, ``coa`` and ``coa-rag`` read the model's calibrated size, or its
    backend's recommendation when no calibration is stored: state outside the settings, which a run
    resumed on another machine (or after ``docqa calibrate``) could silently change. ``origin`` says
    where ``tokens`` came from, for the error.
    """
    stored = read_run_info(out_dir)
    if "default_chunk_tokens" in stored and stored["default_chunk_tokens"] != tokens:
        raise ConfigError(
            f"{out_dir}'s chunked strategies read the model's default chunk size, "
            f"{stored['default_chunk_tokens']} tokens, but here it is {tokens} ({origin})",
            help="store the same calibration here (run the same 'docqa calibrate', or copy the calibration "
            "file from the machine the run started on), or use a new --out folder",
        )
    _write_run_info(out_dir, stored | {"default_chunk_tokens": tokens})


def _write_run_info(out_dir: Path, info: dict[str, Any]) -> None:
    replace_file(out_dir / RUN_FILE, json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and move it into place: a kill leaves the old file whole."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_run_info(out_dir: Path) -> dict[str, Any]:
    """run.json as a dict ({} if missing), with the settings of older docqa versions said as today's."""
    run_file = out_dir / RUN_FILE
    return _upgraded(json.loads(run_file.read_text(encoding="utf-8"))) if run_file.exists() else {}


def _upgraded(run_info: dict[str, Any]) -> dict[str, Any]:
    """Say a run made before flash attention was on by default (``flash_attn: null``) in today's terms.

    ``null`` meant on exactly for quantized llama.cpp caches; other backends never read it (nor
    ``kv_type``), and their fingerprints no longer hold either.

    >>> _upgraded({"settings": {"backend": {"kind": "llamacpp", "kv_type": "f16", "flash_attn": None}}})
    {'settings': {'backend': {'kind': 'llamacpp', 'kv_type': 'f16', 'flash_attn': False}}}
    >>> _upgraded({"settings": {"backend": {"kind": "openai", "kv_type": "f16", "flash_attn": None}}})
    {'settings': {'backend': {'kind': 'openai'}}}
    """
    backend = run_info.get("settings", {}).get("backend", {})
    if "flash_attn" not in backend or backend["flash_attn"] is not None:
        return run_info
    if backend.get("kind", "llamacpp") == "llamacpp":
        backend = backend | {"flash_attn": backend.get("kv_type", "f16") != "f16"}
    else:
        backend = {key: value for key, value in backend.items() if key not in LLAMACPP_ONLY}
    return run_info | {"settings": run_info["settings"] | {"backend": backend}}
