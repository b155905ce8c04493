"""The ``docqa`` command line: a thin layer over ``agents.api``.

Errors that a user can fix are printed as one line on stderr with a non-zero exit status;
progress goes to stderr and the answer to stdout, so ``docqa ask … > answer.txt`` works.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import ValidationError

from agents.errors import DocQAError
from agents.settings import STRATEGIES, BackendKind, Compression, KVCacheType

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEMO_HINT = (
    "The embedded SmolLM2-135M proves the pipeline runs offline; "
    "for reliable answers use --model-path or --backend openai."
)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--backend",
        choices=get_args(BackendKind),
        help="llamacpp (in-process GGUF, the default), openai (any OpenAI-compatible endpoint) or transformers "
        "(in-process, with a compressed KV cache)",
    )
    group.add_argument("--model-path", help="GGUF file for llamacpp (default: the embedded SmolLM2-135M-Instruct)")
    group.add_argument("--model", help="model name for the openai backend, e.g. gpt-4o-mini")
    group.add_argument(
        "--base-url",
        help="endpoint for the openai backend, e.g. http://127.0.0.1:8000/v1 (default: OPENAI_BASE_URL, "
        "else OpenAI); the key comes from OPENAI_API_KEY",
    )
    group.add_argument(
        "--context-window",
        type=int,
        help="model window in tokens (default: the GGUF file's own; 8192 for remote models)",
    )
    group.add_argument(
        "--repeat-penalty",
        type=float,
        help='make tokens a reply has written less likely, against answers that loop ("[c2] [c2] …"); '
        "1.1 is usual, 1.0 is none (default: none for local models, the server's own for remote ones)",
    )
    group.add_argument(
        "--kv-type",
        choices=get_args(KVCacheType),
        help="llama.cpp KV-cache type: q8_0 halves cache memory (slower prefill on CPU), q4_0 quarters it "
        "(loses accuracy); default f16",
    )
    group.add_argument(
        "--flash-attn",
        action=argparse.BooleanOptionalAction,
        help="llama.cpp flash attention (default on): lowers peak memory on long inputs (measured on CPU with "
        "an f16 cache: 0.86x at 4k tokens, 0.58x at 16k, 0.45x at 32k, at about the same prompt speed); "
        "q8_0/q4_0 need it; --no-flash-attn reproduces runs made before it was the default",
    )
    group.add_argument(
        "--compression",
        choices=get_args(Compression),
        help="KV-cache compression for the transformers backend (default none): fp8 and quantized keep every "
        "position in 8 and 4 bits (quantized loses accuracy), snapkv and homer keep --cache-budget positions",
    )
    group.add_argument(
        "--cache-budget",
        type=int,
        help="cached tokens kept by snapkv and homer (default 1024); homer reads up to 4 times this in one call",
    )


def add_reading_options(parser: argparse.ArgumentParser, *, chunk_sweep: bool = False) -> None:
    """Options for how documents are read; with ``chunk_sweep``, ``--chunk-tokens`` takes a list
    (stored as ``chunk_sweep``), as ``docqa eval run`` compares chunk sizes."""
    reading = parser.add_argument_group("reading")
    reading.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        help="coa: Chain-of-Agents over every chunk (default); full: as much as fits one call; rag: top passages "
        "in score order; rag-reorder: the same, best first and second-best last; coa-rag: workers read only "
        "retrieved passages",
    )
    reading.add_argument("--top-k", type=int, help="passages for rag and rag-reorder (default 8)")
    reading.add_argument("--lexical", action="store_true", default=None, help="fuse BM25 with dense retrieval")
    if chunk_sweep:
        reading.add_argument(
            "--chunk-tokens",
            dest="chunk_sweep",
            type=_int_list,
            metavar="N[,N…]",
            help="chunk sizes to compare for coa and coa-rag, e.g. 512,1024,2048 (default: the model's "
            "calibrated or recommended size)",
        )
    else:
        reading.add_argument(
            "--chunk-tokens",
            type=int,
            help="cap on tokens per chunk, below what the window allows; small models read better with small "
            "chunks (default: the model's calibrated size (docqa calibrate), else 512 for the embedded model, "
            "1024 for other GGUF files)",
        )
    reading.add_argument(
        "--max-workers", type=int, help="refuse documents that need more chunks than this (default 200)"
    )
    reading.add_argument("--note-tokens", type=int, help="longest note a worker may write (default 256)")
    reading.add_argument("--answer-tokens", type=int, help="longest answer the manager may write (default 384)")


def add_output_options(
    parser: argparse.ArgumentParser,
    json_help: str = "print one JSON object (answer, notes, usage, timings) instead of the answer text",
) -> None:
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help=json_help)
    output.add_argument("--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docqa",
        description="Ask questions about documents far longer than a model's context window (Chain-of-Agents).",
        epilog="Settings can also come from DOCQA_* environment variables, e.g. DOCQA_CHUNKING__CHUNK_TOKENS=800.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ask = commands.add_parser(
        "ask",
        help="answer a question about documents",
        description="Answer a question about one or more documents (txt, md, pdf, docx, html).",
    )
    ask.add_argument("paths", nargs="+", metavar="PATH", help="documents to read, in this order")
    ask.add_argument("-q", "--question", required=True, help="the question to answer")
    for add_options in (add_model_options, add_reading_options, add_output_options):
        add_options(ask)
    summarize = commands.add_parser(
        "summarize",
        help="summarize documents",
        description="Summarize one or more documents with the same chain of workers.",
    )
    summarize.add_argument("paths", nargs="+", metavar="PATH", help="documents to read, in this order")
    for add_options in (add_model_options, add_reading_options, add_output_options):
        add_options(summarize)
    _add_calibrate_command(commands)
    commands.add_parser(
        "ui",
        help="start the web app (further options go to Streamlit, e.g. --server.port 8600)",
        description="Start the Streamlit app on localhost. Options after 'ui' are passed on to Streamlit.",
    )
    from eval.cli import add_eval_commands  # eval builds on this module's options: import it late

    add_eval_commands(commands)
    return parser


def _add_calibrate_command(commands: Any) -> None:
    from agents.calibration import DEFAULT_DEPTHS, DEFAULT_LENGTHS, DEFAULT_MIN_ACCURACY, DEFAULT_TRIALS

    calibrate = commands.add_parser(
        "calibrate",
        help="find the longest context a model reads reliably, and use it as its chunk size",
        description="Plant access codes in real filler text at increasing lengths and depths, ask for each, and "
        "store the longest length the model still reads reliably. Chunks for this model then default to that "
        "size (an explicit --chunk-tokens still wins).",
    )
    add_model_options(calibrate)
    trials = calibrate.add_argument_group("calibration")
    trials.add_argument(
        "--lengths", type=_int_list, default=list(DEFAULT_LENGTHS), metavar="N[,N…]",
        help="context lengths to try, in the model's tokens; those beyond the window are skipped "
        f"(default {','.join(map(str, DEFAULT_LENGTHS))})",
    )  # fmt: skip
    trials.add_argument(
        "--depths", type=_float_list, default=list(DEFAULT_DEPTHS), metavar="D[,D…]",
        help=f"where the code is planted, 0 = start, 1 = end (default {','.join(map(str, DEFAULT_DEPTHS))})",
    )  # fmt: skip
    trials.add_argument(
        "--trials", type=int, default=DEFAULT_TRIALS, help=f"trials per depth (default {DEFAULT_TRIALS})"
    )
    trials.add_argument(
        "--min-accuracy", type=float, default=DEFAULT_MIN_ACCURACY,
        help=f"share of codes found for a length to count as read reliably (default {DEFAULT_MIN_ACCURACY})",
    )  # fmt: skip
    trials.add_argument("--filler", help="text file to plant the codes in (default: the bundled sample report)")
    trials.add_argument("--seed", type=int, default=0, help="seed for codes, places and filler offsets (default 0)")
    trials.add_argument("--no-save", action="store_true", help="print the result without storing it")
    add_output_options(calibrate, "print one JSON object: the result per length and every trial with its answer")


def _int_list(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {value!r}") from error


def _float_list(value: str) -> list[float]:
    try:
        return [float(part) for part in value.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {value!r}") from error


def settings_from_args(args: argparse.Namespace) -> Any:
    """Settings from the environment, overridden by whatever options were given."""
    from agents.settings import Settings

    option = vars(args).get
    backend = {
        "kind": option("backend"),
        "model_path": option("model_path"),
        "model": option("model"),
        "base_url": option("base_url"),
        "context_window": option("context_window"),
        "repeat_penalty": option("repeat_penalty"),
        "kv_type": option("kv_type"),
        "flash_attn": option("flash_attn"),
        "compression": option("compression"),
        "cache_budget": option("cache_budget"),
    }
    sections: dict[str, Any] = {
        "backend": backend,
        "retrieval": {"top_k": option("top_k"), "lexical": option("lexical")},
        "chunking": {"chunk_tokens": option("chunk_tokens")},
        "workers": {"max_workers": option("max_workers"), "max_tokens": option("note_tokens")},
        "manager": {"max_tokens": option("answer_tokens")},
    }
    overrides = {name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()}
    given: dict[str, Any] = {name: values for name, values in overrides.items() if values}
    if option("strategy"):
        given["strategy"] = option("strategy")
    return Settings(**given)


def _print_progress(event: Any) -> None:
    from agents.results import DocumentsChunked, DocumentsLoaded, NoteWritten, PassagesRetrieved

    if isinstance(event, DocumentsLoaded):
        names = ", ".join(f"{d.source} ({len(d.text):,} chars)" for d in event.documents)
        print(f"loaded {names}", file=sys.stderr)
    elif isinstance(event, DocumentsChunked):
        print(f"{len(event.chunks)} chunks of at most {event.budget} tokens", file=sys.stderr)
    elif isinstance(event, PassagesRetrieved):
        ids = ", ".join(hit.chunk.id for hit in event.passages)
        print(f"retrieved {len(event.passages)} of {event.n_passages} passages: {ids}", file=sys.stderr)
    elif isinstance(event, NoteWritten):
        note = event.note
        preview = " ".join(note.text.split())[:100]
        kept = " (empty reply, previous note kept)" if note.kept_previous else ""
        line = f"worker {note.index + 1}/{event.n_workers} read {note.location}{kept}: {preview}"
        print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.command == "eval":
        from eval.cli import run_eval_command

        return int(run_eval_command(args))
    if args.command == "calibrate":
        return calibrate(args)
    return ask(args)


def calibrate(args: argparse.Namespace) -> int:
    """``docqa calibrate``: print one line per trial and a table, then store the effective window."""
    from agents.calibration import calibrate as run_calibration
    from agents.calibration import save_calibration
    from retrieval.loaders import load_document

    settings = settings_from_args(args)
    filler = load_document(args.filler).text if args.filler else None

    def on_trial(trial: Any) -> None:
        if not args.quiet:
            mark = "found" if trial.found else "missed"
            answer = " ".join(trial.answer.split())[:60]
            print(f"{trial.length:>6} tokens, depth {trial.depth:.0%}: {mark} {trial.code} ({answer})", file=sys.stderr)

    result = run_calibration(
        settings, lengths=args.lengths, depths=args.depths, trials_per_depth=args.trials,
        min_accuracy=args.min_accuracy, filler=filler, seed=args.seed, on_trial=on_trial,
    )  # fmt: skip
    saved = None if args.no_save else save_calibration(settings.chunking.calibration_file, result)
    if args.json:
        data = {**result.to_dict(), "trials": [vars(t) for t in result.trials], "saved_to": saved and str(saved)}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"{result.model} (window {result.context_window:,} tokens)")
    print("length  found")
    for row in result.lengths:
        print(f"{row.length:>6}  {row.found}/{row.trials}")
    if result.effective_tokens is None:
        print(
            f"not read reliably even at {result.lengths[0].length} tokens; nothing to set. Try shorter --lengths, "
            "or a stronger model."
        )
    else:
        more = " (every length that fits the window passed)" if result.limited_by_window else ""
        print(f"effective window: {result.effective_tokens:,} tokens{more}")
    if saved is not None:
        follows = (
            f"chunks for this model now default to {result.effective_tokens:,} tokens"
            if result.effective_tokens
            else "its chunk size stays the backend's default"
        )
        print(f"saved to {saved}; {follows}")
    return 0


def ask(args: argparse.Namespace) -> int:
    """``docqa ask`` and ``docqa summarize``."""
    from agents.api import DocQA
    from retrieval.loaders import load_documents

    settings = settings_from_args(args)
    question = args.question.strip() if args.command == "ask" else ""
    if not question and args.command == "ask":
        raise DocQAError("the question is empty", help="pass -q with a question, or use 'docqa summarize'")
    # Read the documents before loading a model, so a bad file fails in a moment, not after it.
    documents = load_documents(args.paths)
    answer = DocQA(settings).ask(question, documents, on_event=None if args.quiet else _print_progress)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(answer.answer)
        if answer.citations:
            print("\nSources:")
        for citation in answer.citations:
            chunk = citation.chunk
            excerpt = " ".join(chunk.text.split())[:160]
            print(f"[{citation.id}] {chunk.location}: {excerpt}")
        if not args.quiet:
            usage, timings = answer.usage, answer.timings
            print(
                f"{usage['model_calls']} model calls, {usage['prompt_tokens']:,} prompt + "
                f"{usage['completion_tokens']:,} completion tokens, {timings['total_s']:.1f} s",
                file=sys.stderr,
            )
            if answer.backend.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"):
                print(DEMO_HINT, file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["ui"]:  # everything after 'ui' belongs to Streamlit, unparsed
        from app.launch import main as launch_ui

        return launch_ui(arguments[1:])
    args = build_parser().parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="docqa: %(name)s: %(message)s")
    # pypdf warns about every damaged structure it meets; the loader reports what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        return run(args)
    except DocQAError as error:
        print(f"docqa: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"docqa: error: invalid settings: {problems}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("docqa: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
