"""Which of a passkey's digits ``snapkv`` keeps, layer by layer and head by head, and what it answers.

``bench/kv_compression.py`` logs what each passkey trial answered, not why. This diagnostic rebuilds
one trial's prompt (``--length``, ``--seed``, ``--depth``, Qwen 0.5B and two threads as there), reads
the text before the question once, and then finishes the prompt once per *reading*, each a
``snapkv`` variant (``--readings``): the shipped one, another budget, another pooling kernel, or
some lower layers left whole. For every layer and key/value head it prints one digit per token of the
key as it occurs in the prompt (the needle states it twice): 1 where that layer and head kept it,
0 where it was pruned. The readings are written to ``bench/results/snapkv_keep.json`` under the
trial they diagnose.

    python bench/snapkv_keep.py --length 16384 --seed 4 --depth 0.1             # the default readings
    python bench/snapkv_keep.py --length 16384 --seed 4 --depth 0.1 --readings 1024:5 2048:5 1024:5:9

A reading is ``BUDGET:KERNEL`` or ``BUDGET:KERNEL:WHOLE``, where the layers below ``WHOLE`` keep
every position. The shared first part of the prompt takes minutes at 16k tokens; each reading
after it takes well under one.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from kv_compression import DEFAULT_MODEL, RESULTS_DIR, build_backend, passkey_prompt

from agents.compression.decoding import decode
from agents.compression.driver import DecoderDriver
from agents.compression.snapkv import SnapKV
from eval.store import replace_file

DEFAULT_READINGS = ("1024:5", "1024:1", "1024:7", "2048:5", "1024:5:4", "1024:5:9", "8192:5")


@dataclass(frozen=True)
class RecordingSnapKV(SnapKV):
    """``SnapKV`` that keeps every position of its first ``whole`` layers and notes what each layer kept."""

    whole: int = 0
    kept: list[torch.Tensor] = field(default_factory=list)

    def kept_positions(
        self, driver: DecoderDriver, index: int, queries: torch.Tensor, keys: torch.Tensor, head_len: int
    ) -> torch.Tensor:
        if index < self.whole:
            keep = torch.arange(head_len).expand(1, keys.shape[1], head_len)
        else:
            keep = super().kept_positions(driver, index, queries, keys, head_len)
        self.kept.append(keep)
        return keep


def parse_reading(text: str) -> RecordingSnapKV:
    budget, kernel, *whole = (int(part) for part in text.split(":"))
    return RecordingSnapKV(budget, kernel=kernel, whole=whole[0] if whole else 0)


def key_positions(tokens: list[str], key: str) -> list[int]:
    """Positions of the key's tokens, wherever the key's text is spelled out by consecutive tokens.

    >>> key_positions(["is", "2", "0", "4", ".", "204"], "204")
    [1, 2, 3, 5]
    """
    found = []
    for start in range(len(tokens)):
        text, end = "", start
        while end < len(tokens) and len(text) < len(key):
            text, end = text + tokens[end], end + 1
        if text == key and tokens[start].strip():
            found.extend(range(start, end))
    return found


def keep_map(kept: list[torch.Tensor], positions: list[int]) -> list[list[str]]:
    """Per layer, per key/value head: "1" or "0" for each of ``positions``.

    >>> keep_map([torch.tensor([[[1, 3, 5], [0, 2, 4]]])], [1, 2, 3])
    [['101', '010']]
    """
    wanted = torch.tensor(positions, dtype=torch.long)
    return [
        ["".join("1" if hit else "0" for hit in torch.isin(wanted, row).tolist()) for row in heads[0]] for heads in kept
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF file (llama or qwen2)")
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--depth", type=float, default=0.1)
    parser.add_argument("--readings", nargs="+", default=list(DEFAULT_READINGS), help="BUDGET:KERNEL[:WHOLE]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    readings = [parse_reading(text) for text in args.readings]

    backend = build_backend("transformers:snapkv", args.model, args.length, readings[0].budget, args.threads)
    chat_model: Any = backend.chat_model
    loaded, driver = chat_model._loaded, chat_model._driver
    text, key = passkey_prompt(args.length, args.depth, args.seed, backend.count_tokens)
    prompt = loaded.prompt_parts([{"role": "user", "content": text}])
    digits = key_positions([loaded.tokenizer.decode([token]) for token in prompt.ids], key)
    head_len = len(prompt.ids) - readings[0].window_len(prompt)
    print(f"key {key}: {len(digits)} tokens at {digits[:1]}…, prompt {len(prompt.ids)} tokens", file=sys.stderr)

    rows = []
    with torch.inference_mode():
        started = time.perf_counter()
        shared = driver.new_cache()
        driver.prefill(prompt.ids[:head_len], shared)
        print(f"read the first {head_len} tokens in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for label, reading in zip(args.readings, readings, strict=True):
            state = reading.read_window(driver, prompt, copy.deepcopy(shared))
            tokens = decode(driver, state, 12, end_ids=loaded.end_ids()).tokens
            answer = loaded.tokenizer.decode(tokens, skip_special_tokens=True)
            layers = keep_map(reading.kept, digits)
            print(f"\n{label}: answered {answer!r} ({'found' if key in answer else 'missed'})")
            for index, heads in enumerate(layers):
                print(f"  layer {index:2d}  " + "  ".join(heads))
            rows.append({"reading": label, "answer": answer, "found": key in answer, "kept": layers})

    path = args.results / "snapkv_keep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    trial = f"{args.model.name} {args.length} seed {args.seed} depth {args.depth}"
    saved[trial] = {"key": key, "prompt_tokens": len(prompt.ids), "key_positions": digits, "readings": rows}
    replace_file(path, json.dumps(saved, indent=1) + "\n")


if __name__ == "__main__":
    main()
