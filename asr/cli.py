"""The `asr` command line: one thin function per command over the library.

Errors a user can fix (a missing file, a bad config key, bad input data) are printed as one
line naming what is wrong, with exit status 2; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from asr import files
from asr.decode.options import DecodeOptions

DECODE = DecodeOptions()  # the defaults of every decoding option of `asr decode` and `asr transcribe`

# Commands in the order of the pipeline; others (added later) follow in registration order.
PIPELINE = ["prepare", "import", "tokenizer", "lm", "train", "average", "decode", "transcribe", "wer", "plot",
            "librispeech", "synthetic", "kaldi", "jsonl"]  # fmt: skip


def _user_type(param) -> str | None:
    """The value a user types, in words: FILE, DIR, N, NUMBER, TEXT (or a declared metavar);
    nothing for on/off flags. Typer would show Python types such as <list[Path]>."""
    if getattr(param, "is_flag", False) or param.param_type_name == "argument":
        return None  # a flag takes no value; an argument is shown by its name already
    if param.metavar:
        return param.metavar
    desc = param.type_descriptor
    name = "Path" if desc.is_path else param.bare_type().removeprefix("list[").removesuffix("]")
    word = {"int": "N", "float": "NUMBER", "Path": "PATH", "str": "TEXT", "bool": "BOOL"}.get(name, name.upper())
    return f"{word}..." if desc.is_list else word


class _Group(TyperGroup):
    """Lists commands in pipeline order, and shows user words for option values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            command.get_params = _with_user_types(command.get_params)  # type: ignore[method-assign]

    def list_commands(self, ctx) -> list[str]:
        rank = {name: i for i, name in enumerate(PIPELINE)}
        return sorted(self.commands, key=lambda name: rank.get(name, len(rank)))


def _with_user_types(get_params: Callable) -> Callable:
    """Wrap a command's ``get_params`` (which adds --help and completion) to show user words."""

    def wrapped(ctx):
        params = get_params(ctx)
        for param in params:
            word = _user_type(param)
            param.display_type_rich = lambda ctx, word=word: word  # type: ignore[method-assign]
        return params

    return wrapped


def _version(value: bool) -> None:
    if value:
        from asr import __version__

        typer.echo(f"asr {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Group,
    help="asr: train, decode and score attention encoder-decoder (Transformer + CTC) speech "
    "recognisers on LibriSpeech.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(cls=_Group, help="Prepare corpora: LibriSpeech, a synthetic corpus, a Kaldi data directory or your own JSONL list.", no_args_is_help=True)
tokenizer_app = typer.Typer(cls=_Group, help="Train a SentencePiece tokenizer.", no_args_is_help=True)
plot_app = typer.Typer(cls=_Group, help="Pictures of an experiment as PNG, with their data as JSON (needs matplotlib, the package's plot extra).", no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")
app.add_typer(tokenizer_app, name="tokenizer")
lm_app = typer.Typer(cls=_Group, help="Transformer language models for shallow fusion.", no_args_is_help=True)
app.add_typer(lm_app, name="lm")
import_app = typer.Typer(cls=_Group, help="Import pretrained models into an experiment folder.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(plot_app, name="plot")


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """asr: train, decode and score attention encoder-decoder (Transformer + CTC) speech recognisers."""

console = Console(stderr=True)
stdout = Console()

Normalizer = Annotated[str, typer.Option(help="Text normalisation: librispeech (upper case, English letters), english (Whisper-style output vs LibriSpeech references: numbers, contractions), unicode (any script) or none.")]


def _user_errors(func: Callable) -> Callable:
    """Turn the errors a user can fix into a one-line message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            console.print("[red]interrupted[/red]")
            raise typer.Exit(130)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, RuntimeError) as err:
            # The OSErrors are a path the user gave that cannot be read or written.
            # ValueError covers ConfigError, ManifestError, AudioError, PrepareError and bad option
            # values. Of the RuntimeErrors only our own (DownloadError, SyntheticError,
            # TrainingError) are the user's to fix; a bare one (torch) is a bug, and typer.Exit
            # (also a RuntimeError) carries a command's own exit status: both pass through.
            if isinstance(err, RuntimeError) and not type(err).__module__.startswith("asr."):
                raise
            console.print(f"[red]error:[/red] {escape(printable(str(err)))}", soft_wrap=True)
            raise typer.Exit(2)

    return wrapper


def printable(text: str) -> str:
    """``text`` with the undecodable bytes of non-UTF-8 file names shown as ``\\xNN``."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


# --------------------------------------------------------------------------- prepare


@prepare_app.command("librispeech")
@_user_errors
def prepare_librispeech(
    root: Annotated[Path, typer.Option(help="Folder holding LibriSpeech/<subset> (downloads go here too).")],
    subsets: Annotated[str, typer.Option(help="Comma-separated subsets, e.g. train-clean-100,dev-clean,test-clean.")],
    out: Annotated[Path, typer.Option(help="Where to write <subset>.jsonl manifests and rejection reports.")] = Path("data/manifests"),
    download: Annotated[bool, typer.Option("--download", help="Fetch missing subsets (resumable, checksum-verified).")] = False,
    base_url: Annotated[str, typer.Option(help="Download mirror (the tarballs are <base-url>/<subset>.tar.gz).")] = "https://www.openslr.org/resources/12",
    workers: Annotated[int, typer.Option(help="Parallel workers reading audio metadata.")] = 4,
    sample_rate: Annotated[int, typer.Option(help="Expected sample rate; other rates are rejected.")] = 16000,
    trust_layout: Annotated[bool, typer.Option("--trust-layout", help="Use subsets without a .complete marker as they are, unchecked: for your own data in LibriSpeech layout (official subsets are checked against the official counts instead).")] = False,
) -> None:
    """Write one JSONL manifest per LibriSpeech subset (optionally downloading it first).

    An existing copy, even read-only, is used where it is: nothing is written under --root
    (without --download), only to --out."""
    from asr.data.librispeech import prepare_librispeech as prepare, print_summary

    names = [s.strip() for s in subsets.split(",") if s.strip()]
    reports = prepare(
        root, names, out, download=download, base_url=base_url, num_workers=workers,
        sample_rate=sample_rate, console=console, trust_layout=trust_layout,
    )
    print_summary(reports, stdout)


@prepare_app.command("synthetic")
@_user_errors
def prepare_synthetic(
    out: Annotated[Path, typer.Option(help="Folder for the corpus (LibriSpeech layout under out/LibriSpeech).")],
    train_speakers: Annotated[int, typer.Option(help="Speakers (espeak-ng voice/speed/pitch) in train.")] = 8,
    dev_speakers: Annotated[int, typer.Option(help="Speakers in dev (none shared with train).")] = 2,
    test_speakers: Annotated[int, typer.Option(help="Speakers in test (none shared with train or dev).")] = 2,
    utterances: Annotated[int, typer.Option(help="Utterances per speaker.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the sentences and speakers.")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel espeak-ng processes.")] = 2,
) -> None:
    """Speak generated English sentences with espeak-ng into a LibriSpeech-layout corpus
    (subsets train, dev, test)."""
    from asr.data.synthetic import make_synthetic_corpus

    root = make_synthetic_corpus(
        out, speakers_train=train_speakers, speakers_dev=dev_speakers, speakers_test=test_speakers,
        utterances_per_speaker=utterances, seed=seed, num_workers=workers, console=console,
    )
    stdout.print(f"synthetic corpus ready: {root} (subsets train, dev, test)")


@prepare_app.command("kaldi")
@_user_errors
def prepare_kaldi(
    data_dir: Annotated[Path, typer.Argument(help="Kaldi data directory: wav.scp and text, optionally utt2spk and segments.", metavar="DIR")],
    out: Annotated[Path, typer.Option(help="Where to write <name>.jsonl and <name>.rejected.tsv (and cut segments).")] = Path("data/manifests"),
    name: Annotated[Optional[str], typer.Option(help="Manifest name (default: the directory's name).", show_default=False)] = None,
    normalizer: Normalizer = "librispeech",
) -> None:
    """Write a manifest from a Kaldi data directory (wav.scp, text, utt2spk, segments)."""
    from asr.data.kaldi import prepare_kaldi as prepare
    from asr.data.librispeech import print_summary

    report = prepare(data_dir, out, name=name, normalizer=normalizer, console=console)
    print_summary({report.subset: report}, stdout, title="Kaldi data directory")


@prepare_app.command("jsonl")
@_user_errors
def prepare_jsonl(
    manifest: Annotated[Path, typer.Argument(help="JSON lines with id, audio and text (speaker optional).", metavar="FILE")],
    out: Annotated[Path, typer.Option(help="Where to write <name>.jsonl and <name>.rejected.tsv.")] = Path("data/manifests"),
    name: Annotated[Optional[str], typer.Option(help="Manifest name (default: the file's name without .jsonl).", show_default=False)] = None,
    normalizer: Normalizer = "librispeech",
) -> None:
    """Write a checked manifest from your own list of recordings (id, audio, text)."""
    from asr.data.jsonl import prepare_jsonl as prepare
    from asr.data.librispeech import print_summary

    report = prepare(manifest, out, name=name, normalizer=normalizer, console=console)
    print_summary({report.subset: report}, stdout, title="Manifest")


@prepare_app.command("shards")
@_user_errors
def prepare_shards(
    manifest: Annotated[Path, typer.Argument(help="Manifest (.jsonl) whose audio to pack.", metavar="FILE")],
    out: Annotated[Path, typer.Option(help="Folder for shard-NNNNNN.tar, shards.json, utterances.jsonl and rejected.tsv.")],
    shard_seconds: Annotated[float, typer.Option(help="Audio per shard, in seconds (each rank needs at least one shard, each DataLoader worker one to be busy).")] = 3600.0,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle that spreads speakers over the shards.")] = 0,
    workers: Annotated[int, typer.Option(help="Threads screening the audio.")] = 4,
) -> None:
    """Pack a manifest's usable audio into tar shards for `asr train` (data.train_shards=FOLDER)."""
    from asr.data.shards import write_shards

    index = write_shards(manifest, out, shard_seconds=shard_seconds, seed=seed, num_workers=workers, console=console)
    hours = sum(u.duration for u in index.utterances) / 3600
    stdout.print(f"{len(index.files)} shard(s) of {len(index.utterances)} utterances ({hours:.2f} h) in {out}; "
                 f"train with --set data.train_shards={out}")  # fmt: skip


# --------------------------------------------------------------------------- tokenizer


@tokenizer_app.command("train")
@_user_errors
def tokenizer_train(
    manifest: Annotated[list[Path], typer.Option(help="Training manifest(s) whose transcripts to learn from.")],
    out: Annotated[Path, typer.Option(help="Folder to write tokenizer.model into.")],
    vocab_size: Annotated[Optional[int], typer.Option(help="Vocabulary size, including <blank>, <unk> and <sos/eos> (default: the config's data.vocab_size).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Experiment config whose data.vocab_size to use.")] = None,
    model_type: Annotated[str, typer.Option(help="SentencePiece model: unigram or bpe.")] = "unigram",
    normalizer: Normalizer = "librispeech",
) -> None:
    """Train a SentencePiece tokenizer on manifest transcripts."""
    from asr.config import load_config
    from asr.data.manifest import manifest_texts
    from asr.text.tokenizer import train_tokenizer

    if vocab_size is None:
        vocab_size = load_config(config).data.vocab_size if config else 0
        if not vocab_size:
            raise ValueError(f"give --vocab-size N, or --config with data.vocab_size set ({config or 'no --config'})")
    tokenizer = train_tokenizer(manifest_texts(manifest), out, vocab_size, model_type, normalizer)
    stdout.print(f"tokenizer with {tokenizer.vocab_size} units written to {out}")


# --------------------------------------------------------------------------- lm


@lm_app.command("train")
@_user_errors
def lm_train(
    out: Annotated[Path, typer.Option(help="Folder to write config.yaml, tokenizer/, log.jsonl and lm.pt into.")],
    config: Annotated[Optional[Path], typer.Option(help="YAML config with an lm section (see configs/lm/; default: the built-in defaults).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config value: --set lm.data.tokenizer=DIR, --set lm.data.text=\\[a.txt.gz] (a YAML list), --set lm.model.layers=6 (repeatable).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train a Transformer LM on the tokenizer's units, from text files or manifests' transcripts."""
    from asr.config import load_lm_config
    from asr.lm.train import train_lm
    from asr.train.distributed import pick_device

    resolved = load_lm_config(config, set_ or [])
    summary = train_lm(resolved, out, device=pick_device(device), console=console)
    stdout.print(f"LM trained ({summary.updates} updates, last epoch {summary.loss:.3f} nats per unit) in {out}")


@lm_app.command("download")
@_user_errors
def lm_download(
    out: Annotated[Path, typer.Option(help="Folder for librispeech-lm-norm.txt.gz.")],
    base_url: Annotated[str, typer.Option(help="Mirror of OpenSLR resource 11.")] = "https://www.openslr.org/resources/11",
    sha256: Annotated[Optional[str], typer.Option(help="Expected SHA-256 (none is published; without it the first download's is recorded).")] = None,
) -> None:
    """Download the LibriSpeech LM corpus (resumable, checksum-verified)."""
    from asr.lm.download import download_lm_corpus

    path = download_lm_corpus(out, base_url, sha256, console=console)
    stdout.print(f"LM corpus ready: {path}")


# --------------------------------------------------------------------------- import


@import_app.command("whisper")
@_user_errors
def import_whisper(
    src: Annotated[Path, typer.Argument(help="openai-whisper .pt file, Hugging Face folder, CTranslate2 (faster-whisper) folder, or tiny.en (the bundled model).", metavar="SRC")],
    out: Annotated[Path, typer.Option(help="New experiment folder to write (must not exist, or be empty).")],
    tokenizer: Annotated[Optional[Path], typer.Option(help="tokenizer.json, vocabulary.txt/json or *.tiktoken, when SRC has none beside it.")] = None,
    language: Annotated[Optional[str], typer.Option(help="Multilingual models: the language to transcribe (e.g. en, de); recorded in the config.")] = None,
    pad_seconds: Annotated[float, typer.Option(help="Pad every input to this many seconds (Whisper: 30); 0 decodes unpadded.")] = 30.0,
) -> None:
    """Import a Whisper checkpoint (any size, .en or multilingual) as an experiment folder that
    `asr decode`, `asr transcribe` and `asr train --init` use as they use any other."""
    from asr.whisper.convert import import_whisper as run_import

    with files.terminate_as_exit():  # a SIGTERM leaves no half-written folder beside --out
        summary = run_import(src, out, tokenizer=tokenizer, language=language, pad_seconds=pad_seconds)
    kind = "multilingual" if summary.multilingual else "English-only"
    stdout.print(
        f"imported {summary.source} ({summary.parameters / 1e6:.1f}M parameters, {kind}, "
        f"{summary.n_mels} mels, {summary.vocab_size} tokens) into {summary.out}"
    )


# --------------------------------------------------------------------------- train


@app.command()
@_user_errors
def train(
    config: Annotated[Path, typer.Option(help="YAML config (see configs/).")],
    exp: Annotated[Optional[Path], typer.Option(help="Experiment folder; an existing one is resumed from its last checkpoint.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config value: --set model.encoder.layers=6 (repeatable).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (under torchrun each rank takes cuda:LOCAL_RANK).")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the schedule (audio per update, updates, warmup share) from the training manifest and exit.")] = False,
    gpus: Annotated[Optional[int], typer.Option(help="With --dry-run: GPUs to plan for (default: WORLD_SIZE, else train.gpus).", min=1)] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from this experiment's weights (e.g. `asr import whisper`); its config is the base that --config and --set change.")] = None,
) -> None:
    """Train a model (run under `torchrun --nproc-per-node N` for several GPUs/nodes)."""
    import os

    from asr.config import load_config
    from asr.train.loop import train as run_training
    from asr.train.schedule import announce, plan, training_durations

    base = None
    if init is not None:
        from asr.finetune import init_base_config

        base = init_base_config(init)
    resolved = load_config(config, set_ or [], base=base)
    if dry_run:
        ranks = gpus or int(os.environ.get("WORLD_SIZE", 0)) or resolved.train.gpus
        announce(plan(resolved, training_durations(resolved), ranks), stdout)
        return
    if exp is None:
        raise ValueError("--exp DIR is required (the experiment folder), unless --dry-run is given")
    summary = run_training(resolved, exp, device=device, console=console)
    best = summary.best_dev
    stdout.print(
        f"trained {summary.steps} steps ({summary.epochs_done} epochs) in {exp}"
        + (f"; best dev metric {best['metric']} at step {best['step']}" if best else "")
    )


@app.command()
@_user_errors
def average(
    exp: Annotated[Path, typer.Option(help="Experiment folder.")],
    best: Annotated[int, typer.Option(help="Average this many best checkpoints (by dev WER).")] = 5,
    out: Annotated[Optional[Path], typer.Option(help="Output file (default: <exp>/checkpoints/averaged.pt).")] = None,
) -> None:
    """Average the N best checkpoints into one model (decoding then uses it by default)."""
    from asr.experiment import average_best

    if best < 1:
        raise ValueError(f"--best must be a number of checkpoints >= 1, got {best}")
    paths, target = average_best(exp, best, out)
    stdout.print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {target}")


# --------------------------------------------------------------------------- decode


def _keep_freed_memory() -> None:
    """Freed memory stays in this process for the next batch (glibc; asr.cpu, off with
    ASR_CPU_FAST=0): a decoding command owns its process, and without it every batch faults its
    large blocks in again (docs/benchmarks.md)."""
    from asr import cpu

    cpu.keep_freed_memory()


def _has_ctc(exp: Path) -> bool:
    """Whether the experiment's model has a CTC head (imported Whisper models have none): it
    decides the default method."""
    from asr.config import load_config
    from asr.experiment import CONFIG

    try:
        return load_config(Path(exp) / CONFIG).model.ctc_head
    except (OSError, ValueError):
        return True  # loading the experiment reports what is wrong with it


def _decode_options(values: dict, overrides: list[str] | None) -> DecodeOptions:
    """The decode config of a command: its options' values (by field name), then its
    ``--set decode.KEY=VALUE`` overrides."""
    from asr.decode.options import with_overrides

    return with_overrides(DecodeOptions(**values), overrides or [])


def _safeguards(best_of: int, compression_ratio: float | None, logprob: float | None, no_speech: float | None,
                no_repeat_ngram: int) -> dict:  # fmt: skip
    return dict(best_of=best_of, compression_ratio_threshold=compression_ratio, logprob_threshold=logprob,
                no_speech_threshold=no_speech, no_repeat_ngram=no_repeat_ngram)  # fmt: skip


Method = Annotated[Optional[str], typer.Option(help="ctc_greedy, attention_greedy, attention_beam, joint_beam or attention_rescoring (default: joint_beam; attention_beam for a model without a CTC head, e.g. imported Whisper).", show_default=False)]
Beam = Annotated[int, typer.Option(help="Beam size.")]
CtcWeight = Annotated[float, typer.Option(help="Weight of the CTC score in joint_beam and attention_rescoring.")]
LengthBonus = Annotated[float, typer.Option(help="Score added per output token.")]
# Every default is DecodeOptions()'s (tests/decode/test_options.py checks): e.g. ESPnet's
# ranking, raw score + length bonus.
LengthNorm = Annotated[bool, typer.Option("--length-norm/--no-length-norm", help="Rank finished hypotheses by score / length instead of score + length bonus (exclusive with --length-bonus).")]
MaxLengthRatio = Annotated[float, typer.Option(help="Longest hypothesis, in tokens per encoder frame.")]
BatchSize = Annotated[int, typer.Option(help="Utterances decoded together.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option(help="Arithmetic: fp32; bf16 for the encoder (about 2x faster on CPUs with AMX or AVX512-BF16, and on GPUs; elsewhere it runs fp32 with a warning), the search fp32; or int8 (CPU): every linear layer of encoder and decoder with int8 weights and activations.")]
Language = Annotated[Optional[str], typer.Option(help="Multilingual Whisper models: the language to transcribe for this run (a code: en, de, fr, ...; default: the one chosen at import).", show_default=False)]
BestOf = Annotated[int, typer.Option(help="Whisper models' temperature fallback: samples per utterance at each temperature > 0 (the temperatures: --set decode.temperatures=[0,0.2,0.4,0.6,0.8,1]; [0]: no fallback).")]
CompressionRatio = Annotated[Optional[float], typer.Option(help="Whisper models: decode again at the next temperature when the text's gzip compression ratio is above this (a loop); off: --set decode.compression_ratio_threshold=null.")]
LogprobThreshold = Annotated[Optional[float], typer.Option(help="Whisper models: decode again at the next temperature when the average log-prob per token is below this; off: --set decode.logprob_threshold=null.")]
NoSpeechThreshold = Annotated[Optional[float], typer.Option(help="Whisper models: an utterance is silence (empty result) when its <|nospeech|> probability is above this and its average log-prob below --logprob-threshold; off: --set decode.no_speech_threshold=null.")]
NoRepeatNgram = Annotated[int, typer.Option(help="Never repeat an n-gram of this many tokens in a hypothesis, a guard against loops (0: off; longer than any true repeat).")]
Checkpoint = Annotated[Optional[str], typer.Option(help="Checkpoint file or name in <exp>/checkpoints.")]
DecodeSet = Annotated[Optional[list[str]], typer.Option("--set", help="Override a decoding option: --set decode.beam=5 (repeatable; any field of DecodeOptions, also those without a flag, e.g. decode.length_alpha, decode.pre_beam_ratio).")]


@app.command()
@_user_errors
def decode(
    exp: Annotated[Path, typer.Option(help="Experiment folder (model, tokenizer, config).")],
    manifest: Annotated[Path, typer.Option(help="JSONL manifest to decode; references, if present, are scored.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: <exp>/decode/<manifest name>-<method>).")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="Checkpoint file or name in <exp>/checkpoints (default: averaged.pt, else last.pt).")] = None,
    method: Method = DECODE.method,
    beam: Beam = DECODE.beam,
    ctc_weight: CtcWeight = DECODE.ctc_weight,
    length_bonus: LengthBonus = DECODE.length_bonus,
    length_norm: LengthNorm = DECODE.length_norm,
    max_length_ratio: MaxLengthRatio = DECODE.max_length_ratio,
    batch_size: BatchSize = DECODE.batch_size,
    nbest: Annotated[int, typer.Option(help="Also write nbest.jsonl with this many hypotheses per utterance and their scores.")] = DECODE.nbest,
    normalizer: Annotated[Optional[str], typer.Option(help="Text normalisation of the WER report: librispeech, english, digits, unicode or none (default: the tokenizer's own, librispeech unless it was trained with another).", show_default=False)] = DECODE.normalizer,
    device: Device = "auto",
    lm: Annotated[Optional[Path], typer.Option(help="LM folder from `asr lm train`, fused into beam search (shallow fusion).")] = None,
    lm_weight: Annotated[float, typer.Option(help="Weight of the LM's log-probability (with --lm; ESPnet uses 0.3-0.6).", min=0.0)] = DECODE.lm_weight,
    precision: Precision = DECODE.precision,
    language: Language = DECODE.language,
    best_of: BestOf = DECODE.best_of,
    compression_ratio_threshold: CompressionRatio = DECODE.compression_ratio_threshold,
    logprob_threshold: LogprobThreshold = DECODE.logprob_threshold,
    no_speech_threshold: NoSpeechThreshold = DECODE.no_speech_threshold,
    no_repeat_ngram: NoRepeatNgram = DECODE.no_repeat_ngram,
    set_: DecodeSet = None,
) -> None:
    """Decode a manifest: hypotheses, scores, real-time factor and a WER report."""
    from asr.decode.run import decode_manifest
    from asr.train.distributed import pick_device

    _keep_freed_memory()
    options = _decode_options(
        dict(method=method, beam=beam, ctc_weight=ctc_weight, length_bonus=length_bonus, length_norm=length_norm,
             max_length_ratio=max_length_ratio, batch_size=batch_size, nbest=nbest, normalizer=normalizer,
             lm=str(lm) if lm is not None else None, lm_weight=lm_weight, precision=precision, language=language,
             **_safeguards(best_of, compression_ratio_threshold, logprob_threshold, no_speech_threshold, no_repeat_ngram)),
        set_,
    )  # fmt: skip
    options = options.for_model(_has_ctc(exp))
    out = out or Path(exp) / "decode" / f"{Path(manifest).stem}-{options.method}"
    summary = decode_manifest(exp, manifest, out, options, checkpoint=checkpoint, device=pick_device(device), console=stdout)
    rtf = f"RTF {summary.rtf:.3f}" if summary.rtf is not None else "no audio decoded"
    stdout.print(f"hypotheses written to {out}/hyp.txt ({rtf})")
    for utt_id, why in summary.rejected:
        console.print(f"[red]error:[/red] {escape(printable(utt_id))}: {escape(printable(why))}", soft_wrap=True)
    if summary.rejected:
        console.print(f"{len(summary.rejected)} utterance(s) not decoded, listed in {escape(str(out))}/rejected.tsv")
        raise typer.Exit(1)


@app.command()
@_user_errors
def transcribe(
    exp: Annotated[Path, typer.Option(help="Experiment folder (model, tokenizer, config).")],
    audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, OGG, any sample rate).", metavar="AUDIO")],
    output_format: Annotated[str, typer.Option("--format", help="plain (path<TAB>text), json (one object per file, with words and n-best), tsv (one line per segment), srt or vtt (subtitles).")] = "plain",
    out: Annotated[Optional[Path], typer.Option(help="Write to this file instead of standard output (srt/vtt of several files: a folder, one <name>.srt per file).")] = None,
    checkpoint: Checkpoint = None,
    segment_seconds: Annotated[Optional[float], typer.Option(help="Longest segment decoded at once (default: the longest training utterance; longer is warned about).", show_default=False)] = None,
    vad: Annotated[bool, typer.Option("--vad/--no-vad", help="Cut at the pauses found by voice-activity detection (else fixed windows cut at their quietest point).")] = True,
    nbest: Annotated[int, typer.Option(help="Hypotheses kept per segment (json output lists them with their scores).")] = DECODE.nbest,
    timestamps: Annotated[bool, typer.Option("--timestamps/--no-timestamps", help="Word times and confidences (see --align).")] = True,
    align: Annotated[Optional[str], typer.Option(help="Word times from 'ctc' forced alignment or the decoder's 'cross-attention' (default: ctc where the model has a CTC head, else cross-attention).", show_default=False)] = None,
    method: Method = DECODE.method,
    beam: Beam = DECODE.beam,
    ctc_weight: CtcWeight = DECODE.ctc_weight,
    length_bonus: LengthBonus = DECODE.length_bonus,
    length_norm: LengthNorm = DECODE.length_norm,
    max_length_ratio: MaxLengthRatio = DECODE.max_length_ratio,
    batch_size: BatchSize = DECODE.batch_size,
    device: Device = "auto",
    precision: Precision = DECODE.precision,
    language: Language = DECODE.language,
    best_of: BestOf = DECODE.best_of,
    compression_ratio_threshold: CompressionRatio = DECODE.compression_ratio_threshold,
    logprob_threshold: LogprobThreshold = DECODE.logprob_threshold,
    no_speech_threshold: NoSpeechThreshold = DECODE.no_speech_threshold,
    no_repeat_ngram: NoRepeatNgram = DECODE.no_repeat_ngram,
    set_: DecodeSet = None,
    stream: Annotated[bool, typer.Option("--stream", help="Decode each file (or '-': raw s16le mono PCM at the model's rate on stdin) as if live, chunk by chunk, printing partial results to stderr and each utterance's final text (native models with a CTC head; --beam and --ctc-weight apply).")] = False,
    chunk_ms: Annotated[float, typer.Option(help="With --stream: audio per chunk, in milliseconds.")] = 640.0,
) -> None:
    """Transcribe audio files, with word times and confidences. A missing or unreadable file is reported; the others are still done."""
    from asr.formats import SUBTITLES, check_format
    from asr.train.distributed import pick_device
    from asr.transcribe import check_segment_seconds, transcribe_files

    if stream:
        return _transcribe_live(exp, audio, checkpoint, pick_device(device), chunk_ms, beam, ctc_weight, output_format)
    _keep_freed_memory()
    check_format(output_format)
    check_segment_seconds(segment_seconds)
    if output_format in SUBTITLES and len(audio) > 1 and out is None:
        raise ValueError(f"--format {output_format} with several audio files needs --out DIR (one subtitle file per audio file)")
    if out is not None and not (output_format in SUBTITLES and len(audio) > 1):
        files.check_writable_file(out)
    options = _decode_options(
        dict(method=method, beam=beam, ctc_weight=ctc_weight, length_bonus=length_bonus, length_norm=length_norm,
             max_length_ratio=max_length_ratio, batch_size=batch_size, nbest=nbest, precision=precision, language=language,
             **_safeguards(best_of, compression_ratio_threshold, logprob_threshold, no_speech_threshold, no_repeat_ngram)),
        set_,
    ).for_model(_has_ctc(exp))  # fmt: skip
    results = transcribe_files(
        exp, audio, options, checkpoint=checkpoint, segment_seconds=segment_seconds,
        timestamps=timestamps, vad=vad, device=pick_device(device), console=console, align=align,
    )  # fmt: skip
    _write_transcriptions(results, output_format, out)
    failed = [r for r in results if r.error is not None]
    for result in failed:
        console.print(f"[red]error:[/red] {escape(result.error)}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _transcribe_live(
    exp: Path, audio: list[Path], checkpoint: Optional[str], device, chunk_ms: float, beam: int, ctc_weight: float, output_format: str
) -> None:
    """`asr transcribe --stream`: partial texts to stderr as they change, then per file its final
    segments to stdout (plain: path<TAB>text; json: one object per file)."""
    from asr.decode.streaming import RecognitionStream, StreamOptions
    from asr.experiment import load_for_inference
    from asr.live import stream_source

    if output_format not in ("plain", "json"):
        raise ValueError(f"--format {output_format} with --stream: use plain or json")
    options = StreamOptions(chunk_ms=chunk_ms, beam=beam, ctc_weight=ctc_weight)
    model, tokenizer, config = load_for_inference(exp, checkpoint, device)
    for path in audio:
        shown: list[str] = [""]

        def partial(text: str) -> None:
            if text != shown[0]:
                console.print(f"[dim]{escape(str(path))}: {escape(text)}[/dim]", soft_wrap=True)
                shown[0] = text

        result = stream_source(RecognitionStream(model, tokenizer, options), path, config.features.sample_rate, chunk_ms, partial)
        if output_format == "json":
            segments = [{"start": s.start, "end": s.end, "text": s.text, "words": [w.to_json() for w in s.words]} for s in result.segments]
            stdout.print_json(data={"path": str(path), "text": result.text, "segments": segments})
        else:
            stdout.print(f"{path}\t{result.text}", markup=False, highlight=False, soft_wrap=True)


def _write_transcriptions(results: list, output_format: str, out: Optional[Path]) -> None:
    from asr.formats import SUBTITLES, render, to_lines

    if output_format not in SUBTITLES:
        text = to_lines(results, output_format)
    elif len(results) > 1:  # one subtitle file per audio file, in the folder --out
        for result in results:
            if result.error is None:
                files.write_text(out / f"{Path(result.path).stem}.{output_format}", render(result, output_format))  # type: ignore[operator]
        return
    else:
        text = render(results[0], output_format) if results[0].error is None else ""
    if out:
        files.sweep_dead(out.parent, out.name)  # what a killed earlier run left
        files.write_text(out, text)
    else:
        sys.stdout.write(text)


@app.command()
@_user_errors
def export(
    exp: Annotated[Path, typer.Option(help="Experiment folder (a native model with a CTC head).")],
    out: Annotated[Path, typer.Option(help="ONNX file to write; its input settings go beside it as <out>.json.")],
    checkpoint: Checkpoint = None,
) -> None:
    """Export the encoder and CTC head to ONNX (features in, CTC log-probs out), checked with onnxruntime."""
    from asr.experiment import load_for_inference
    from asr.export import check_parity, export_onnx

    model, _, _ = load_for_inference(exp, checkpoint, "cpu")
    path = export_onnx(model, out)
    parity = check_parity(model, path)
    stdout.print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB); onnxruntime vs torch on unseen lengths: "
                 f"max |diff| {parity.max_abs_diff:.2e}, lengths equal {parity.lengths_equal}, "
                 f"CTC best paths equal {parity.greedy_equal}")  # fmt: skip
    if not parity.ok:
        raise ValueError(f"{path}: onnxruntime's results differ from torch's beyond rounding (see above)")


# --------------------------------------------------------------------------- score


@app.command()
@_user_errors
def wer(
    ref: Annotated[Path, typer.Argument(help="References: id<TAB>text, Kaldi 'id text' file or JSONL manifest.")],
    hyp: Annotated[Path, typer.Argument(help="Hypotheses: id<TAB>text, Kaldi 'id text' file or JSONL manifest.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder to write wer.json and alignments.txt into.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    alignments: Annotated[int, typer.Option(help="Show this many utterances with errors, aligned.")] = 10,
    top: Annotated[int, typer.Option(help="Show this many of the most frequent confusions.")] = 10,
    normalizer: Normalizer = "librispeech",
    cer: Annotated[bool, typer.Option("--cer", help="Make the character error rate the primary metric (for scripts written without spaces).")] = False,
) -> None:
    """Word, character and sentence error rates, per speaker, with aligned errors (via jiwer)."""
    from asr.metrics import load_transcripts, print_report, score, write_report

    report = score(load_transcripts(ref), load_transcripts(hyp), normalizer=normalizer, primary="cer" if cer else "wer")
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        print_report(report, stdout, alignments=alignments, top=top)
    if out:
        write_report(report, out)


# --------------------------------------------------------------------------- plot


@plot_app.command("attention")
@_user_errors
def plot_attention(
    exp: Annotated[Path, typer.Argument(help="Experiment folder.", metavar="EXP")],
    audio: Annotated[Path, typer.Argument(help="One recording (decoded whole: keep it short).", metavar="AUDIO")],
    out: Annotated[Optional[Path], typer.Option(help="PNG to write (default: <exp>/plots/attention-<audio name>.png); the data goes beside it as .json.", show_default=False)] = None,
    checkpoint: Checkpoint = None,
    method: Method = "joint_beam",
    beam: Beam = 10,
    ctc_weight: CtcWeight = 0.3,
    device: Device = "auto",
) -> None:
    """Decoder cross-attention per token, layer and head over time, beside the CTC alignment."""
    from asr.api import Recognizer
    from asr.plot import attention_data, plot_attention as draw
    from asr.train.distributed import pick_device

    recognizer = Recognizer(exp, checkpoint, pick_device(device))
    data = attention_data(recognizer, audio, method=method, beam=beam, ctc_weight=ctc_weight)
    png, data_path = draw(data, out or Path(exp) / "plots" / f"attention-{audio.stem}.png")
    stdout.print(f"{data['text']!r}: attention written to {png} (data {data_path})")


@plot_app.command("training")
@_user_errors
def plot_training(
    exp: Annotated[Path, typer.Argument(help="Experiment folder (reads its log.jsonl).", metavar="EXP")],
    out: Annotated[Optional[Path], typer.Option(help="PNG to write (default: <exp>/plots/training.png); the data goes beside it as .json.", show_default=False)] = None,
) -> None:
    """Loss, dev WER, learning rate and throughput against the update step."""
    from asr.plot import plot_training as draw, training_data

    png, data_path = draw(training_data(exp), out or Path(exp) / "plots" / "training.png")
    stdout.print(f"training curves written to {png} (data {data_path})")


if __name__ == "__main__":
    app()
