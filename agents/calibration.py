"""A model's effective window: the longest context it still reads reliably.

Small models read far less than their nominal window (Qwen2.5-Coder-1.5B found a planted fact at
~760 tokens and missed it at ~2,700; SmolLM2-135M misses at ~250 words), so the chunk size a
worker reads is the main accuracy knob. ``calibrate`` plants a fact (an access code) in real
filler text at increasing lengths and depths, asks for it with one answering call (the ``full``
strategy's prompt), and keeps the longest length at which the model found enough of them.

The result is stored per model (keyed by the backend's name, which includes the file and its cache
type) in ``settings.chunking.calibration_file``; from then on ``DocQA`` uses it as the default
chunk size for that model. An explicit ``chunk_tokens`` always wins, and
``chunking.use_calibration = False`` ignores the file.

    result = calibrate(Settings(backend={"model_path": "qwen.gguf"}))
    save_calibration(settings.chunking.calibration_file, result)
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.backends import Backend, create_backend
from agents.errors import ConfigError, InputError
from agents.settings import ChunkingSettings, Settings
from retrieval.chunking import split_sentences
from retrieval.documents import Document

DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
DEFAULT_DEPTHS = (0.1, 0.5, 0.9)
DEFAULT_TRIALS = 2
"""Trials per depth, each with another code, place and stretch of filler."""
DEFAULT_MIN_ACCURACY = 0.8
ANSWER_TOKENS = 48
"""The answer is a five-digit code; a short limit keeps each trial to one quick call."""
SAMPLE_FILLER = Path(__file__).resolve().parent.parent / "samples" / "harbor_light_report.md"
PLACES = (
    "east boathouse", "signal room", "north storage locker", "chart cabinet", "fuel store",
    "radio hut", "lamp room", "tide gauge shed", "pilot office", "net loft",
)  # fmt: skip
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Trial:
    """One planted fact: where it was, what came back, whether the code was in the answer."""

    length: int
    """Tokens of context (filler and fact), counted with the model's tokenizer."""
    depth: float
    code: str
    answer: str
    found: bool


@dataclass(frozen=True)
class LengthResult:
    length: int
    """The target length; trials may differ by a few tokens (whole sentences)."""
    found: int
    trials: int

    @property
    def accuracy(self) -> float:
        return self.found / self.trials


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` found for one model."""

    model: str
    """The backend's name, the key it is stored under."""
    effective_tokens: int | None
    """The longest length read reliably; None when even the shortest failed."""
    context_window: int
    min_accuracy: float
    lengths: list[LengthResult]
    trials: list[Trial] = field(default_factory=list)
    limited_by_window: bool = False
    """True when every length that fits the window passed: the model may read more than was tested."""
    date: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("trials")  # the stored entry stays small; the CLI's --json prints them
        return data


Filler = Sequence[tuple[str, int]]
"""Filler sentences, each with its token count (counted once, then reused by every trial)."""


def measure_filler(text: str, count_tokens: Callable[[str], int]) -> list[tuple[str, int]]:
    """The filler's sentences, whitespace-normalised and blank ones dropped, with their token counts."""
    sentences = [" ".join(text[start:end].split()) for start, end in split_sentences(text)]
    filler = [(sentence, count_tokens(sentence + " ")) for sentence in sentences if sentence]
    if not filler:
        raise InputError("the calibration filler has no text", help="pass --filler with a text file of real prose")
    return filler


def plant(
    filler: Filler, length: int, depth: float, rng: random.Random, count_tokens: Callable[[str], int]
) -> tuple[str, str, str]:
    """A context of about ``length`` tokens with a code planted at ``depth``; returns (context, question, code).

    The filler starts at a random sentence and wraps around when it runs out; a sentence that would
    overshoot ``length`` is skipped, so the context ends up a few tokens short of it at most.
    """
    place, code = rng.choice(PLACES), f"{rng.randrange(10_000, 100_000)}"
    fact = f"The access code for the {place} is {code}."
    room = length - count_tokens(fact)
    chosen: list[str] = []
    used, position, skipped = 0, rng.randrange(len(filler)), 0
    while skipped < len(filler):  # stop once no sentence fits what is left
        sentence, tokens = filler[position % len(filler)]
        position += 1
        if used + tokens > room:
            skipped += 1
            continue
        chosen.append(sentence)
        used += tokens
        skipped = 0
    chosen.insert(round(depth * len(chosen)), fact)
    return " ".join(chosen), f"What is the access code for the {place}?", code


def _reader_settings(settings: Settings) -> Settings:
    """One answering call over the whole context (``full``), with a short answer."""
    manager = settings.manager.model_copy(update={"max_tokens": ANSWER_TOKENS})
    return settings.model_copy(update={"strategy": "full", "manager": manager})


def _longest_readable(settings: Settings, backend: Backend) -> int:
    """Tokens of document one answering call can hold in this window."""
    from agents.nodes import PipelineContext, single_call_budget
    from prompts import load_prompts

    context = PipelineContext(backend, settings, load_prompts(settings.prompts_dir))
    question = f"What is the access code for the {max(PLACES, key=len)}?"
    return single_call_budget(question, [Document("calibration.txt", "")], context).tokens


def calibrate(
    settings: Settings,
    *,
    backend: Backend | None = None,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    depths: Sequence[float] = DEFAULT_DEPTHS,
    trials_per_depth: int = DEFAULT_TRIALS,
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
    filler: str | None = None,
    seed: int = 0,
    on_trial: Callable[[Trial], None] | None = None,
) -> Calibration:
    """Find the longest of ``lengths`` at which the model finds at least ``min_accuracy`` of the codes.

    Lengths are tried from the shortest; the first that fails ends the search (longer ones only get
    harder). Lengths that do not fit one call in the model's window are not tried.
    """
    _check_options(lengths, depths, trials_per_depth, min_accuracy)
    backend = backend or create_backend(settings.backend)
    measured = measure_filler(filler if filler is not None else _sample_filler(), backend.count_tokens)
    from agents.api import DocQA  # the API builds on this module

    settings = _reader_settings(settings)
    reader = DocQA(settings, backend=backend)
    fits = _longest_readable(settings, backend)
    tried = sorted(set(lengths))
    testable = [length for length in tried if length <= fits]
    if not testable:
        raise ConfigError(
            f"none of the lengths fit one call in this {backend.context_window}-token window (at most {fits} tokens)",
            help=f"pass --lengths at or below {fits}",
        )
    rng = random.Random(seed)
    results: list[LengthResult] = []
    trials: list[Trial] = []
    effective: int | None = None
    for length in testable:
        found = 0
        for depth in depths:
            for _ in range(trials_per_depth):
                context, question, code = plant(measured, length, depth, rng, backend.count_tokens)
                answer = reader.ask(question, [Document("calibration.txt", context)]).answer
                trial = Trial(backend.count_tokens(context), depth, code, answer, code in answer)
                found += trial.found
                trials.append(trial)
                if on_trial is not None:
                    on_trial(trial)
        results.append(LengthResult(length, found, len(depths) * trials_per_depth))
        if results[-1].accuracy < min_accuracy:
            break
        effective = length
    limited = effective == testable[-1] and len(testable) < len(tried)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    return Calibration(backend.name, effective, backend.context_window, min_accuracy, results, trials, limited, date)


def _check_options(lengths: Sequence[int], depths: Sequence[float], trials: int, min_accuracy: float) -> None:
    if not lengths or min(lengths) < 16:
        raise ConfigError("calibration lengths must be 16 tokens or more", help="e.g. --lengths 256,512,1024")
    if not depths or not all(0.0 <= d <= 1.0 for d in depths):
        raise ConfigError("depths must lie between 0 and 1", help="e.g. --depths 0.1,0.5,0.9")
    if trials < 1:
        raise ConfigError("at least one trial per depth is needed", help="pass --trials 1 or more")
    if not 0.0 < min_accuracy <= 1.0:
        raise ConfigError("min accuracy must be above 0 and at most 1", help="e.g. --min-accuracy 0.8")


def _sample_filler() -> str:
    if not SAMPLE_FILLER.exists():
        raise InputError(
            f"the bundled filler text {SAMPLE_FILLER} is missing (docqa was installed without its samples)",
            help="pass --filler with a long text file of real prose",
        )
    return SAMPLE_FILLER.read_text(encoding="utf-8")


# --- the store -------------------------------------------------------------------------------


def load_calibrations(path: Path) -> dict[str, dict[str, Any]]:
    """Stored calibrations by model name ({} when the file does not exist)."""
    path = path.expanduser()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("models is not an object")
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(
            f"{path}: not a docqa calibration file ({error})",
            help="delete it and run 'docqa calibrate' again, or set chunking.calibration_file elsewhere",
        ) from error
    return models


def save_calibration(path: Path, calibration: Calibration) -> Path:
    """Add or replace the model's entry, atomically; returns the file's path."""
    path = path.expanduser()
    models = load_calibrations(path)
    models[calibration.model] = calibration.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"format": FORMAT_VERSION, "models": models}, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def calibrated_chunk_tokens(chunking: ChunkingSettings, model: str) -> int | None:
    """The stored effective window for ``model``, when the settings let it set the chunk size."""
    if chunking.chunk_tokens is not None or not chunking.use_calibration:
        return None
    entry = load_calibrations(chunking.calibration_file).get(model)
    value = entry.get("effective_tokens") if entry else None
    return int(value) if value else None


def default_chunk_tokens(backend: Backend, chunking: ChunkingSettings) -> tuple[int | None, str]:
    """The chunk size an unset ``chunk_tokens`` means for ``backend`` (None: the whole budget), and where
    it comes from, in words."""
    calibrated = calibrated_chunk_tokens(chunking, backend.name)
    if calibrated is not None:
        return calibrated, f"calibrated for {backend.name} in {chunking.calibration_file}"
    where = f"none stored for {backend.name} in {chunking.calibration_file}" if chunking.use_calibration else "off"
    return backend.recommended_chunk_tokens, f"the backend's recommendation; calibration: {where}"


def apply_calibration(backend: Backend, chunking: ChunkingSettings) -> Backend:
    """``backend`` recommending its calibrated chunk size, if one is stored and allowed."""
    tokens = calibrated_chunk_tokens(chunking, backend.name)
    return backend if tokens is None else replace(backend, recommended_chunk_tokens=tokens)
