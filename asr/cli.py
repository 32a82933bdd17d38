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

app = typer.Typer(
    help="asr: train, decode and score attention encoder-decoder (Transformer + CTC) speech "
    "recognisers on LibriSpeech.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(help="Prepare corpora: LibriSpeech manifests, or a synthetic corpus.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train a SentencePiece tokenizer.", no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")
app.add_typer(tokenizer_app, name="tokenizer")
lm_app = typer.Typer(help="Transformer language models for shallow fusion.", no_args_is_help=True)
app.add_typer(lm_app, name="lm")

console = Console(stderr=True)
stdout = Console()


def _user_errors(func: Callable) -> Callable:
    """Turn the errors a user can fix into a one-line message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            console.print("[red]interrupted[/red]")
            raise typer.Exit(130)
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            # ValueError covers ConfigError, ManifestError, AudioError, PrepareError and bad option
            # values. Of the RuntimeErrors only our own (DownloadError, SyntheticError,
            # TrainingError) are the user's to fix; a bare one (torch) is a bug, and typer.Exit
            # (also a RuntimeError) carries a command's own exit status: both pass through.
            if isinstance(err, RuntimeError) and not type(err).__module__.startswith("asr."):
                raise
            console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
            raise typer.Exit(2)

    return wrapper


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
) -> None:
    """Write one JSONL manifest per LibriSpeech subset (optionally downloading it first)."""
    from asr.data.librispeech import prepare_librispeech as prepare, print_summary

    names = [s.strip() for s in subsets.split(",") if s.strip()]
    reports = prepare(
        root, names, out, download=download, base_url=base_url, num_workers=workers,
        sample_rate=sample_rate, console=console,
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


# --------------------------------------------------------------------------- tokenizer


@tokenizer_app.command("train")
@_user_errors
def tokenizer_train(
    manifest: Annotated[list[Path], typer.Option(help="Training manifest(s) whose transcripts to learn from.")],
    out: Annotated[Path, typer.Option(help="Folder to write tokenizer.model into.")],
    vocab_size: Annotated[Optional[int], typer.Option(help="Vocabulary size, including <blank>, <unk> and <sos/eos> (default: the config's data.vocab_size).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Experiment config whose data.vocab_size to use.")] = None,
    model_type: Annotated[str, typer.Option(help="SentencePiece model: unigram or bpe.")] = "unigram",
) -> None:
    """Train a SentencePiece tokenizer on manifest transcripts."""
    from asr.config import load_config
    from asr.text.tokenizer import train_tokenizer

    if vocab_size is None:
        vocab_size = load_config(config).data.vocab_size if config else 0
        if not vocab_size:
            raise ValueError(f"give --vocab-size N, or --config with data.vocab_size set ({config or 'no --config'})")
    tokenizer = train_tokenizer(manifest, out, vocab_size, model_type)
    stdout.print(f"tokenizer with {tokenizer.vocab_size} units written to {out}")


# --------------------------------------------------------------------------- lm


@lm_app.command("train")
@_user_errors
def lm_train(
    tokenizer: Annotated[Path, typer.Option(help="Tokenizer folder (the recogniser's: the LM scores its units).")],
    out: Annotated[Path, typer.Option(help="Folder to write lm.pt, tokenizer/ and log.jsonl into.")],
    text: Annotated[Optional[list[Path]], typer.Option(help="Text file(s), one sentence a line (.gz read as gzip).")] = None,
    manifest: Annotated[Optional[list[Path]], typer.Option(help="Manifest(s) whose transcripts to train on.")] = None,
    layers: Annotated[int, typer.Option(help="Transformer blocks.", min=1)] = 4,
    d_model: Annotated[int, typer.Option(help="Model width.", min=8)] = 256,
    heads: Annotated[int, typer.Option(help="Attention heads.", min=1)] = 4,
    ff_dim: Annotated[int, typer.Option(help="Feed-forward width.", min=8)] = 1024,
    dropout: Annotated[float, typer.Option(help="Dropout.", min=0.0, max=0.9)] = 0.1,
    epochs: Annotated[int, typer.Option(help="Passes over the text.", min=1)] = 10,
    batch_tokens: Annotated[int, typer.Option(help="Units per batch (padded).", min=16)] = 4000,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", min=0.0)] = 1e-3,
    warmup_steps: Annotated[int, typer.Option(help="Updates of linear warmup.", min=0)] = 500,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train a Transformer LM on the tokenizer's units, from text files or manifests' transcripts."""
    from itertools import chain

    from asr.lm.data import manifest_sentences, text_sentences
    from asr.lm.train import LMTrainOptions, train_lm
    from asr.train.distributed import pick_device

    if not text and not manifest:
        raise ValueError("give --text FILE or --manifest M (or both) to train the LM on")

    def sentences():
        return chain(*(text_sentences(t) for t in text or []), manifest_sentences(manifest or []))

    shape = dict(layers=layers, d_model=d_model, heads=heads, ff_dim=ff_dim, dropout=dropout)
    options = LMTrainOptions(epochs=epochs, batch_tokens=batch_tokens, lr=lr, warmup_steps=warmup_steps, seed=seed)
    summary = train_lm(sentences, tokenizer, out, shape, options, device=pick_device(device), console=console)
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
) -> None:
    """Train a model (run under `torchrun --nproc-per-node N` for several GPUs/nodes)."""
    import os

    from asr.config import load_config
    from asr.train.loop import train as run_training
    from asr.train.schedule import announce, plan, training_durations

    resolved = load_config(config, set_ or [])
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

    paths, target = average_best(exp, best, out)
    stdout.print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {target}")


# --------------------------------------------------------------------------- decode


def _decode_options(method: str, beam: int, ctc_weight: float, length_bonus: float, length_norm: bool, max_length_ratio: float, batch_size: int, lm_weight: float = 0.0):
    from asr.decode.options import DecodeOptions

    return DecodeOptions(
        method=method, beam=beam, ctc_weight=ctc_weight, length_bonus=length_bonus,
        length_norm=length_norm, max_length_ratio=max_length_ratio, batch_size=batch_size,
        lm_weight=lm_weight,
    )


Method = Annotated[str, typer.Option(help="ctc_greedy, attention_greedy, attention_beam, joint_beam or attention_rescoring.")]
Beam = Annotated[int, typer.Option(help="Beam size.")]
CtcWeight = Annotated[float, typer.Option(help="Weight of the CTC score in joint_beam and attention_rescoring.")]
LengthBonus = Annotated[float, typer.Option(help="Score added per output token.")]
# The defaults are DecodeOptions()'s (a test checks): ESPnet's ranking, raw score + length bonus.
LengthNorm = Annotated[bool, typer.Option("--length-norm/--no-length-norm", help="Rank finished hypotheses by score / length instead of score + length bonus (exclusive with --length-bonus).")]
MaxLengthRatio = Annotated[float, typer.Option(help="Longest hypothesis, in tokens per encoder frame.")]
BatchSize = Annotated[int, typer.Option(help="Utterances decoded together.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]


@app.command()
@_user_errors
def decode(
    exp: Annotated[Path, typer.Option(help="Experiment folder (model, tokenizer, config).")],
    manifest: Annotated[Path, typer.Option(help="JSONL manifest to decode; references, if present, are scored.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: <exp>/decode/<manifest name>-<method>).")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="Checkpoint file or name in <exp>/checkpoints (default: averaged.pt, else last.pt).")] = None,
    method: Method = "joint_beam",
    beam: Beam = 10,
    ctc_weight: CtcWeight = 0.3,
    length_bonus: LengthBonus = 0.0,
    length_norm: LengthNorm = False,
    max_length_ratio: MaxLengthRatio = 1.0,
    batch_size: BatchSize = 8,
    device: Device = "auto",
    lm: Annotated[Optional[Path], typer.Option(help="LM folder from `asr lm train`, fused into beam search (shallow fusion).")] = None,
    lm_weight: Annotated[float, typer.Option(help="Weight of the LM's log-probability (with --lm; ESPnet uses 0.3-0.6).", min=0.0)] = 0.0,
) -> None:
    """Decode a manifest: hypotheses, scores, real-time factor and a WER report."""
    from asr.decode.run import decode_manifest
    from asr.train.distributed import pick_device

    if lm is not None and lm_weight == 0.0:
        raise ValueError("--lm needs a --lm-weight above 0 (e.g. 0.3)")
    options = _decode_options(method, beam, ctc_weight, length_bonus, length_norm, max_length_ratio, batch_size, lm_weight)
    out = out or Path(exp) / "decode" / f"{Path(manifest).stem}-{method}"
    summary = decode_manifest(exp, manifest, out, options, checkpoint=checkpoint, device=pick_device(device), console=stdout, lm_dir=lm)
    stdout.print(f"hypotheses written to {out}/hyp.txt (RTF {summary.rtf:.3f})")


@app.command()
@_user_errors
def transcribe(
    exp: Annotated[Path, typer.Option(help="Experiment folder (model, tokenizer, config).")],
    audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, OGG, any sample rate).")],
    output_format: Annotated[str, typer.Option("--format", help="plain (path<TAB>text) or json (one object per line).")] = "plain",
    out: Annotated[Optional[Path], typer.Option(help="Write to this file instead of standard output.")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="Checkpoint file or name in <exp>/checkpoints.")] = None,
    segment_seconds: Annotated[float, typer.Option(help="Longer audio is cut into segments of at most this length.")] = 20.0,
    method: Method = "joint_beam",
    beam: Beam = 10,
    ctc_weight: CtcWeight = 0.3,
    length_bonus: LengthBonus = 0.0,
    length_norm: LengthNorm = False,
    max_length_ratio: MaxLengthRatio = 1.0,
    batch_size: BatchSize = 8,
    device: Device = "auto",
) -> None:
    """Transcribe audio files. A missing or unreadable file is reported; the others are still done."""
    from asr.train.distributed import pick_device
    from asr.transcribe import transcribe_files

    if output_format not in ("plain", "json"):
        raise ValueError(f"--format {output_format!r} is not one of plain, json")
    options = _decode_options(method, beam, ctc_weight, length_bonus, length_norm, max_length_ratio, batch_size)
    results = transcribe_files(exp, audio, options, checkpoint=checkpoint, segment_seconds=segment_seconds, device=pick_device(device), console=console)
    lines = []
    for result in results:
        if output_format == "json":
            lines.append(json.dumps(result.to_json(), ensure_ascii=False))
        elif result.error is None:
            lines.append(f"{result.path}\t{result.text}")
    text = "\n".join(lines) + ("\n" if lines else "")
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)
    failed = [r for r in results if r.error is not None]
    for result in failed:
        console.print(f"[red]error:[/red] {escape(result.error)}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- score


@app.command()
@_user_errors
def wer(
    ref: Annotated[Path, typer.Argument(help="References: id<TAB>text file or JSONL manifest.")],
    hyp: Annotated[Path, typer.Argument(help="Hypotheses: id<TAB>text file or JSONL manifest.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder to write wer.json and alignments.txt into.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    alignments: Annotated[int, typer.Option(help="Show this many utterances with errors, aligned.")] = 10,
    top: Annotated[int, typer.Option(help="Show this many of the most frequent confusions.")] = 10,
) -> None:
    """Word, character and sentence error rates, per speaker, with aligned errors (via jiwer)."""
    from asr.metrics import load_transcripts, print_report, score, write_report

    report = score(load_transcripts(ref), load_transcripts(hyp))
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        print_report(report, stdout, alignments=alignments, top=top)
    if out:
        write_report(report, out)


if __name__ == "__main__":
    app()
