"""KV-cache compression methods on tiny random-weight Llama and Qwen2 models built here (no files, fast)."""

from __future__ import annotations

import inspect
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from agents.compression import PromptParts, cache_bytes, cache_length, compressor_for
from agents.compression.decoding import decode, penalize_repeats
from agents.compression.driver import DecoderDriver, cached_kv
from agents.compression.homer import Homer, plan
from agents.compression.homer_chunks import chunk_token_ids
from agents.compression.none import PlainCache
from agents.compression.snapkv import SnapKV
from agents.errors import ConfigError, MissingDependencyError

SIZES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 2048,
}
BUILDERS: dict[str, Callable[[], PreTrainedModel]] = {
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**SIZES, attn_implementation="sdpa")),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**SIZES, attn_implementation="sdpa")),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny matrices: one thread is faster, and far faster on a busy machine (no OpenMP spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def driver(request: pytest.FixtureRequest) -> DecoderDriver:
    torch.manual_seed(0)
    model = BUILDERS[request.param]().eval()
    # Random weights give near-uniform logits; sharper ones make greedy comparisons meaningful.
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return DecoderDriver(model)


def make_prompt(n_tokens: int, prefix_len: int = 12, suffix_len: int = 20, seed: int = 1) -> PromptParts:
    generator = torch.Generator().manual_seed(seed)
    return PromptParts(torch.randint(0, 256, (n_tokens,), generator=generator).tolist(), prefix_len, suffix_len)


def plain_logits(driver: DecoderDriver, ids: list[int]) -> torch.Tensor:
    """The model's own forward pass: the reference every method is compared with."""
    with torch.inference_mode():
        return driver.model(torch.tensor([ids])).logits[0, -1].float()


def greedy(driver: DecoderDriver, method: object, prompt: PromptParts, n: int = 8) -> list[int]:
    with torch.inference_mode():
        state = method.prefill(driver, prompt)  # type: ignore[attr-defined]
        return decode(driver, state, n, end_ids=set()).tokens


@pytest.mark.parametrize("name", ["none", "fp8", "quantized", "snapkv", "homer"])
def test_every_method_keeps_the_cache_within_its_budget(driver: DecoderDriver, name: str) -> None:
    budget = 160
    method = compressor_for(name, budget)
    prompt = make_prompt(700)
    with torch.inference_mode():
        state = method.prefill(driver, prompt)
    held = cache_length(state.cache)
    assert held <= method.cache_limit(prompt)
    if name == "snapkv":
        assert held == budget + 32  # the budget plus the observation window
    if name == "homer":
        assert held <= budget
        lengths = {kv[0].shape[2] for i in range(driver.num_layers) if (kv := cached_kv(state.cache, i)) is not None}
        assert lengths == {held}  # propagative refinement: every layer holds the same positions
    if name in ("none", "fp8", "quantized"):
        assert held == 700
    # Bytes: float32 keys and values of every layer, one byte each plus a float32 scale per layer for keys
    # and for values, or int4 groups plus a float residual.
    full_bytes = 2 * driver.num_layers * 2 * 16 * 700 * 4  # k+v, layers, kv heads, head_dim, tokens, float32
    fp8_bytes = full_bytes // 4 + 2 * driver.num_layers * 4
    if name == "fp8":
        assert cache_bytes(state.cache) == fp8_bytes
    limit = {"none": full_bytes, "fp8": fp8_bytes, "quantized": full_bytes // 4, "snapkv": full_bytes * 192 // 700}
    assert cache_bytes(state.cache) <= limit.get(name, full_bytes * budget // 700)
    assert len(greedy(driver, method, prompt, n=3)) == 3


def test_the_driver_reproduces_the_models_forward_and_generate(driver: DecoderDriver) -> None:
    prompt = make_prompt(600)  # more than one 512-token prefill slice
    with torch.inference_mode():
        state = PlainCache().prefill(driver, prompt)
        expected = driver.model.generate(
            torch.tensor([prompt.ids]), max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=None
        )[0, len(prompt.ids) :]
    torch.testing.assert_close(state.logits, plain_logits(driver, prompt.ids), rtol=0, atol=1e-5)
    assert greedy(driver, PlainCache(), prompt) == expected.tolist()


def test_the_driver_passes_the_cache_by_the_name_the_layers_take(driver: DecoderDriver) -> None:
    # transformers deprecates a layer's old ``past_key_values`` argument with a FutureWarning.
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("error", FutureWarning)
        PlainCache().prefill(driver, make_prompt(50))
    assert driver.cache_arg in inspect.signature(driver.body.layers[0].forward).parameters


def test_homer_without_pruning_on_one_chunk_is_the_plain_model(driver: DecoderDriver) -> None:
    prompt = make_prompt(300)
    homer = Homer(budget=400, prune=False)
    assert plan(prompt, 400, driver.num_layers).chunks == 1
    with torch.inference_mode():
        state = homer.prefill(driver, prompt)
    torch.testing.assert_close(state.logits, plain_logits(driver, prompt.ids), rtol=0, atol=1e-5)
    assert state.next_position == 300
    assert greedy(driver, homer, prompt) == greedy(driver, PlainCache(), prompt)


def test_homer_chunks_keep_positions_within_a_chunk(driver: DecoderDriver) -> None:
    prompt = make_prompt(540)  # 508 context tokens; 128 fit a chunk beside the 32 of instruction and question
    schedule = plan(prompt, 160, driver.num_layers)
    assert (schedule.chunks, schedule.height) == (4, 2)
    assert schedule.layers_at(schedule.height).stop == driver.num_layers
    _, positions = chunk_token_ids(prompt, schedule.chunks)
    assert max(max(p) for p in positions) < 160
    with torch.inference_mode():
        state = Homer(160).prefill(driver, prompt)
    assert state.next_position <= 160
    assert cache_length(state.cache) == 160


def test_homer_merges_at_most_four_chunks_and_still_keeps_its_budget(driver: DecoderDriver) -> None:
    prompt = make_prompt(900)  # 868 context tokens would need 8 chunks of 160
    schedule = plan(prompt, 160, driver.num_layers)
    assert (schedule.chunks, schedule.height) == (4, 2)
    _, positions = chunk_token_ids(prompt, schedule.chunks)
    assert max(max(p) for p in positions) == 12 + 217 + 20 - 1  # longer chunks instead of more of them
    with torch.inference_mode():
        state = Homer(160).prefill(driver, prompt)
    assert cache_length(state.cache) == 160
    assert len(greedy(driver, Homer(160), prompt, n=3)) == 3


def test_homer_refuses_a_budget_the_instruction_and_question_fill(driver: DecoderDriver) -> None:
    with pytest.raises(ConfigError, match="cache_budget 32"):
        Homer(32).prefill(driver, make_prompt(200, prefix_len=12, suffix_len=20))


@pytest.mark.parametrize("budget", [700, 668])  # more than the input; exactly what precedes the window
def test_snapkv_with_a_budget_covering_the_input_is_no_compression(driver: DecoderDriver, budget: int) -> None:
    prompt = make_prompt(700)
    with torch.inference_mode():
        state = SnapKV(budget).prefill(driver, prompt)
        reference = PlainCache().prefill(driver, prompt)
    assert cache_length(state.cache) == 700
    torch.testing.assert_close(state.logits, reference.logits, rtol=0, atol=1e-5)
    for index in range(driver.num_layers):
        torch.testing.assert_close(cached_kv(state.cache, index), cached_kv(reference.cache, index), rtol=0, atol=1e-5)
    assert greedy(driver, SnapKV(budget), prompt, n=10) == greedy(driver, PlainCache(), prompt, n=10)


def test_snapkv_keeps_the_positions_the_window_attends_to(driver: DecoderDriver) -> None:
    """Oracle: per key/value head, recompute the window's attention by brute force and compare the kept set."""
    prompt, budget = make_prompt(200), 40
    with torch.inference_mode():
        full = PlainCache().prefill(driver, prompt)
        pruned = SnapKV(budget, kernel=1).prefill(driver, prompt)
        keys, _ = cached_kv(full.cache, 0) or (torch.empty(0), None)
        hidden = driver.embed(prompt.ids)
        queries = driver.queries(0, hidden[:, -32:], torch.arange(168, 200)[None])
    groups = queries.shape[1] // keys.shape[1]
    scores = torch.matmul(queries, keys.repeat_interleave(groups, dim=1).transpose(2, 3)) / 4  # head_dim 16
    scores = scores + torch.full((32, 200), float("-inf")).triu(169)  # query i sees keys up to 168 + i
    votes = scores.softmax(dim=-1)[..., :168].sum(dim=2).view(1, keys.shape[1], groups, 168).mean(dim=2)
    expected = votes.topk(budget, dim=-1).indices.sort(dim=-1).values
    kept_keys, _ = cached_kv(pruned.cache, 0) or (torch.empty(0), None)
    for head in range(keys.shape[1]):
        torch.testing.assert_close(kept_keys[0, head, :budget], keys[0, head, expected[0, head]])
        torch.testing.assert_close(kept_keys[0, head, budget:], keys[0, head, 168:])


def test_quantized_cache_stays_close_to_the_plain_model(driver: DecoderDriver) -> None:
    prompt = make_prompt(400)
    with torch.inference_mode():
        state = compressor_for("quantized", 0).prefill(driver, prompt)
    # Prefill logits are exact (the first slice attends to unquantized keys); the cache is 4-bit.
    torch.testing.assert_close(state.logits, plain_logits(driver, prompt.ids), rtol=0, atol=1e-2)
    plain_bytes = 2 * driver.num_layers * 2 * 16 * 400 * 4
    assert cache_bytes(state.cache) < plain_bytes / 3


def test_an_outlier_key_channel_spoils_the_4_bit_cache_but_not_fp8() -> None:
    # Qwen2's key bias gives a few key channels values far larger than the rest. transformers' 4-bit
    # cache groups each token's head vector, so one such channel sets the scale of the whole group and
    # rounds the others away; fp8 keeps a float's relative precision at every magnitude.
    torch.manual_seed(0)
    model = BUILDERS["qwen2"]().eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
        for layer in model.model.layers:
            layer.self_attn.k_proj.bias[::16] += 100.0  # channel 0 of each key head
    outlier = DecoderDriver(model)
    prompt = make_prompt(700)  # the last prefill slice attends to the first slice's quantized keys
    reference = plain_logits(outlier, prompt.ids)
    with torch.inference_mode():
        error = {
            name: (compressor_for(name, 0).prefill(outlier, prompt).logits - reference).abs().max().item()
            for name in ("fp8", "quantized")
        }
    assert error["fp8"] < error["quantized"] / 4, error
    assert greedy(outlier, compressor_for("fp8", 0), prompt) == greedy(outlier, PlainCache(), prompt)


@pytest.mark.parametrize(
    ("name", "says"), [("quantized", "needs optimum-quanto"), ("fp8", "fp8 cache could not load .*no fp8 here")]
)
def test_a_cache_backend_that_fails_to_import_names_what_is_missing(
    driver: DecoderDriver, monkeypatch: pytest.MonkeyPatch, name: str, says: str
) -> None:
    import transformers

    def missing(**_: object) -> None:
        raise ImportError("no fp8 here" if name == "fp8" else "No module named 'optimum'")

    monkeypatch.setattr(transformers, "QuantizedCache", missing)
    with pytest.raises(MissingDependencyError, match=says):
        compressor_for(name, 0).prefill(driver, make_prompt(50))


def test_sampling_follows_the_seed(driver: DecoderDriver) -> None:
    prompt = make_prompt(50)

    def sample(seed: int) -> list[int]:
        with torch.inference_mode():
            state = PlainCache().prefill(driver, prompt)
            return decode(driver, state, 12, end_ids=set(), temperature=5.0, seed=seed).tokens

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_decoding_stops_at_an_end_token_and_at_max_tokens(driver: DecoderDriver) -> None:
    prompt = make_prompt(50)
    first = greedy(driver, PlainCache(), prompt, n=3)
    with torch.inference_mode():
        stopped = decode(driver, PlainCache().prefill(driver, prompt), 10, end_ids={first[1]})
        capped = decode(driver, PlainCache().prefill(driver, prompt), 2, end_ids=set())
    assert (stopped.tokens, stopped.finish_reason) == (first[: first.index(first[1])], "stop")
    assert (capped.tokens, capped.finish_reason) == (first[:2], "length")


def test_unsupported_architectures_are_a_clear_error() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))
    with pytest.raises(ConfigError, match="not 'gpt2'"):
        DecoderDriver(model)


def test_a_gguf_files_converted_copy_is_named_by_its_content(tmp_path: Path) -> None:
    from agents.backends.transformers_backend import converted_copy

    model = tmp_path / "a" / "model.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    reinstalled = tmp_path / "b" / "model.gguf"
    reinstalled.parent.mkdir()
    shutil.copyfile(model, reinstalled)
    os.utime(reinstalled, (1, 1))  # a fresh install: same bytes, another date and place
    changed = tmp_path / "c" / "model.gguf"
    changed.parent.mkdir()
    changed.write_bytes(model.read_bytes()[:-1] + b"\x00")

    assert converted_copy(reinstalled) == converted_copy(model)
    assert converted_copy(changed) != converted_copy(model)
    assert converted_copy(model).name.startswith("model-")


def test_repeat_penalty_keeps_decoding_from_looping(driver: DecoderDriver) -> None:
    prompt = make_prompt(50)

    def tokens(**options: float) -> list[int]:
        with torch.inference_mode():
            return decode(driver, PlainCache().prefill(driver, prompt), 40, end_ids=set(), **options).tokens

    plain = tokens()
    assert len(set(plain)) < len(plain) / 2  # greedy decoding of these weights loops
    assert tokens(repeat_penalty=1.0) == plain
    penalized = tokens(repeat_penalty=50.0)
    assert penalized[0] == plain[0]  # nothing written yet, nothing penalized
    assert len(set(penalized)) == len(penalized)  # 40 < the 64-token window: no token twice


def test_repeat_penalty_divides_positive_logits_and_multiplies_negative_ones() -> None:
    logits = torch.tensor([2.0, -1.0, 1.0, 0.0])
    assert penalize_repeats(logits, [0, 1, 0, 3], 2.0).tolist() == [1.0, -2.0, 1.0, 0.0]
    assert penalize_repeats(logits, [], 2.0) is logits
    assert logits.tolist() == [2.0, -1.0, 1.0, 0.0]  # the input is left alone
