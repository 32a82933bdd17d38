"""Decode a manifest with a trained experiment and write hypotheses, scores, timing and WER.

    out_dir/
      hyp.txt        id<TAB>text, in manifest order (what ``asr wer`` reads)
      scores.jsonl   one object per utterance: id and its hypothesis record (Hypothesis.record:
                     text, tokens, score, and each scorer's score: attention, ctc, lm)
      nbest.jsonl    with nbest > 1: id and the n best hypotheses' records, best first
      timing.json    audio seconds, decode seconds, real-time factor, method and options
      wer.json, alignments.txt   (asr.metrics) when the manifest has reference text
      rejected.tsv   id<TAB>reason of each utterance whose audio could not be used (if any)

The folder is written aside and swapped in whole (``asr.files.replaced_dir``): it never mixes
files of two runs, and a failed or killed decode leaves the previous one as it was. One decode
at a time writes a folder: a second one into the same ``--out`` is refused at once, naming the
first (``.<name>.lock`` beside the folder, an :func:`asr.lock.folder_lock`).

Utterances are decoded in batches of similar duration (longest first: least padding, and an
out-of-memory error shows up at once); outputs are written in manifest order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import ProgressColumn, Task, TimeElapsedColumn
from rich.text import Text

from asr import files
from asr.audio import AudioError, load_audio
from asr.config import ExperimentConfig
from asr.data.dataset import pad
from asr.data.manifest import Utterance, read_manifest
from asr.decode.budget import check_decode_memory
from asr.decode.hypothesis import Hypothesis, hypothesis_text
from asr.decode.options import DecodeOptions
from asr.decode.lm import load_fusion_lm
from asr.decode.task import DecodingTask
from asr.experiment import load_for_inference
from asr.lock import FolderBusy, folder_lock
from asr.metrics import Transcripts, print_report, score, write_report
from asr.progress import counting_progress
from asr.text.normalize import DEFAULT_NORMALIZER, get_normalizer
from asr.text.language import prompt_language
from asr.text.tokenizer import Tokenizer

REJECTED_NAME = "rejected.tsv"
HYP_NAME = "hyp.txt"
SCORES_NAME = "scores.jsonl"
NBEST_NAME = "nbest.jsonl"
TIMING_NAME = "timing.json"


@dataclass(frozen=True)
class DecodeSummary:
    utterances: int
    audio_seconds: float
    decode_seconds: float  # wall time of the decoding loop: audio loading, encoder and search
    rtf: float | None  # real-time factor: decode_seconds / audio_seconds (None without audio)
    wer: float | None  # None when the manifest has no reference text
    out_dir: Path
    rejected: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (id, why) not decoded


class _Waves(torch.utils.data.Dataset):
    """Manifest index -> (index, (S,) float32 waveform at the model's rate, or None and why not)."""

    def __init__(self, utterances: list[Utterance], sample_rate: int):
        self.utterances = utterances
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        utt = self.utterances[index]
        try:  # silence is an error only where the manifest says words were spoken
            return index, load_audio(utt.audio, self.sample_rate, expect_speech=bool(utt.text))[0], None
        except AudioError as err:
            return index, None, str(err)


@dataclass
class _Batch:
    indices: list[int]  # manifest indices of the rows of ``waves``
    waves: torch.Tensor | None  # (B, S), None when every item of the batch was rejected
    lengths: torch.Tensor | None  # (B,)
    rejected: list[tuple[int, str]]  # (manifest index, why) of the items that could not be read


def _collate(items: list[tuple[int, torch.Tensor | None, str | None]]) -> _Batch:
    good = [(i, w) for i, w, _ in items if w is not None]
    rejected = [(i, why) for i, w, why in items if w is None]
    if not good:
        return _Batch([], None, None, rejected)
    padded, lengths = pad([w for _, w in good], 0.0)  # (B, S), (B,)
    return _Batch([i for i, _ in good], padded, lengths, rejected)


def duration_batches(utterances: list[Utterance], batch_size: int) -> list[list[int]]:
    """Manifest indices in batches of ``batch_size``, longest utterances first (ties by index)."""
    order = sorted(range(len(utterances)), key=lambda i: (-utterances[i].duration, i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class _UtterancesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} utt/s" if speed else "- utt/s", style="cyan")


@dataclass
class _Run:
    results: list[Hypothesis | None]  # per manifest index; None = rejected
    rejected: list[tuple[str, str]]  # (id, why), in manifest order
    samples: int
    seconds: float
    nbest: list[list[Hypothesis]]  # per manifest index, the n best (empty when rejected)


def decode_manifest(
    exp_dir: str | Path,
    manifest: str | Path,
    out_dir: str | Path,
    options: DecodeOptions,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    console: Console | None = None,
    num_workers: int = 0,
) -> DecodeSummary:
    """Decode every utterance of ``manifest`` with the model of ``exp_dir`` (see module docstring).

    ``checkpoint`` is a file in exp_dir/checkpoints or a path (default: averaged, else last);
    ``num_workers`` DataLoader processes read audio while the model decodes. An utterance whose
    audio cannot be used is listed in ``rejected.tsv`` (and in the summary); the others are decoded.
    ``out_dir`` is replaced as a whole once everything is written, never mixed with older files.
    Of the options: ``nbest`` > 1 also writes nbest.jsonl; ``normalizer`` names the text
    normalisation of the WER report (default: the tokenizer's, ``librispeech`` unless it was
    trained with another); ``lm`` is an `asr lm train` folder fused into beam search with weight
    ``lm_weight``; ``language`` a multilingual Whisper model's language (None: the experiment's).
    """
    _check_outputs(options.normalizer)
    out_dir = Path(out_dir)
    console = console or Console()
    model, tokenizer, config = load_for_inference(exp_dir, checkpoint, device)
    lm = load_fusion_lm(options.lm, exp_dir, device) if options.lm is not None else None
    task = DecodingTask.build(model, options, tokenizer, lm)  # a bad language fails here, before decoding
    options = task.options  # the method decided
    utterances = read_manifest(manifest)
    _check_output_dir(out_dir)  # before decoding, not after it
    with _output_lock(out_dir):  # a second decode into out_dir fails now, not after its work
        run = _decode_utterances(task, config, utterances, device, console, num_workers)
        audio_seconds = run.samples / config.features.sample_rate
        rtf = run.seconds / audio_seconds if audio_seconds > 0 else None
        console.print(
            f"decoded {len(utterances) - len(run.rejected)} utterances ({audio_seconds:.1f} s of audio) in "
            f"{run.seconds:.1f} s: real-time factor " + (f"{rtf:.3f}" if rtf is not None else "n/a")
        )
        with files.replaced_dir(out_dir) as tmp:
            texts = _write_hypotheses(utterances, run.results, tokenizer, tmp)
            timing = {**_timing(utterances, run, audio_seconds, rtf, options, device, checkpoint), "lm": options.lm,
                      "language": options.language or prompt_language(tokenizer, task.prompt)}  # fmt: skip
            files.write_json(tmp / TIMING_NAME, timing)
            if run.rejected:
                files.write_lines(tmp / REJECTED_NAME, ["id\treason", *(f"{i}\t{why}" for i, why in run.rejected)])
            if options.nbest > 1:
                _write_nbest(utterances, run.nbest, tokenizer, tmp / NBEST_NAME)
            normalizer = options.normalizer or getattr(tokenizer, "normalizer", DEFAULT_NORMALIZER)
            wer = _score(utterances, texts, tmp, console, normalizer)
    return DecodeSummary(len(utterances), audio_seconds, run.seconds, rtf, wer, out_dir, run.rejected)


def _decode_utterances(
    task: DecodingTask, config: ExperimentConfig, utterances: list[Utterance], device: str | torch.device,
    console: Console, num_workers: int,
) -> _Run:  # fmt: skip
    """Decode in batches of similar duration, refusing at once a first (longest) batch that
    would not fit in memory."""
    rate = config.features.sample_rate
    batches = duration_batches(utterances, task.options.batch_size)
    if batches:
        longest = int(utterances[batches[0][0]].duration * rate)
        check_decode_memory(config, task.model.vocab_size, task.options, len(batches[0]), longest, device)
    loader = torch.utils.data.DataLoader(
        _Waves(utterances, rate), batch_sampler=batches, collate_fn=_collate, num_workers=num_workers
    )
    return _decode_all(task, loader, utterances, device, console)


def _output_lock(out_dir: Path):
    """One decode at a time into a folder: the lock file ``.<name>.lock`` is beside it (inside,
    it would be swapped away with the folder it locks)."""
    hint = "wait for it to finish or decode into another --out"
    return folder_lock(out_dir.parent / f".{out_dir.name}.lock", out_dir, hint, busy=OutputBusy)


class OutputBusy(FolderBusy):
    """Another `asr decode` is writing this output folder."""


def _check_output_dir(out_dir: Path) -> None:
    """``out_dir`` is replaced whole: it must be missing, empty or an earlier decode's output
    (so a mistyped ``--out ~`` never deletes anything else)."""
    files.check_replaceable_dir(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / TIMING_NAME).is_file():
        raise files.OutputPathError(
            f"{out_dir}: exists and is not the output of an earlier decode (no {TIMING_NAME}); "
            "decoding replaces its --out folder whole, so choose a new or empty one"
        )


def _decode_all(
    task: DecodingTask, loader: torch.utils.data.DataLoader, utterances: list[Utterance],
    device: str | torch.device, console: Console,
) -> _Run:
    """Decode every batch of ``loader``; results (and the ``nbest`` best) and rejections by
    manifest index."""
    model, options = task.model, task.options
    results: list[Hypothesis | None] = [None] * len(utterances)
    alternatives: list[list[Hypothesis]] = [[] for _ in utterances]
    rejected: dict[int, str] = {}
    samples = 0
    progress = counting_progress(console, _UtterancesPerSecond(), TimeElapsedColumn())
    start = time.perf_counter()
    with progress:
        shown = progress.add_task(f"decoding ({options.method})", total=len(utterances))
        for batch in loader:
            rejected.update(batch.rejected)
            if batch.waves is not None:
                waves, lengths = batch.waves.to(device), batch.lengths.to(device)
                check_decode_memory(model.config, model.vocab_size, options, len(batch.indices), waves.shape[1], device)
                for index, found in zip(batch.indices, task.decode(waves, lengths)):
                    results[index], alternatives[index] = found[0], found[: options.nbest]
                samples += int(batch.lengths.sum())
            progress.advance(shown, len(batch.indices) + len(batch.rejected))
    seconds = time.perf_counter() - start
    return _Run(results, [(utterances[i].id, rejected[i]) for i in sorted(rejected)], samples, seconds, alternatives)


def _timing(
    utterances: list[Utterance], run: _Run, audio_seconds: float, rtf: float | None,
    options: DecodeOptions, device: str | torch.device, checkpoint: str | Path | None,
) -> dict:
    """What timing.json holds; every number finite (strict JSON has no Infinity)."""
    return {
        "utterances": len(utterances) - len(run.rejected),
        "rejected": len(run.rejected),
        "audio_seconds": audio_seconds,
        "decode_seconds": run.seconds,
        "rtf": rtf,
        "utterances_per_second": (len(utterances) - len(run.rejected)) / run.seconds if run.seconds > 0 else None,
        "method": options.method,
        "options": dataclasses.asdict(options),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
    }


def _check_outputs(normalizer: str | None) -> None:
    """Bad output options fail before decoding, not after (nbest is checked by DecodeOptions)."""
    if normalizer is not None:
        get_normalizer(normalizer)


def _score(
    utterances: list[Utterance], texts: dict[str, str], out_dir: Path, console: Console, normalizer: str = DEFAULT_NORMALIZER
) -> float | None:
    """Write and print the WER report when the manifest has references; rejected utterances
    have no hypothesis and count as deletions (the report lists them as missing)."""
    if not any(utt.text for utt in utterances):
        return None
    report = score(Transcripts.from_utterances(utterances), Transcripts(texts), normalizer=normalizer)
    write_report(report, out_dir)
    print_report(report, console)
    return report.wer


def _write_hypotheses(
    utterances: list[Utterance], results: list[Hypothesis | None], tokenizer: Tokenizer, out_dir: Path
) -> dict[str, str]:
    """Write hyp.txt and scores.jsonl in manifest order (rejected utterances left out); return
    id -> text."""
    texts: dict[str, str] = {}
    hyp_lines, score_lines = [], []
    for utt, hyp in zip(utterances, results):
        if hyp is None:
            continue
        text = hypothesis_text(tokenizer, hyp.tokens)
        texts[utt.id] = text
        hyp_lines.append(f"{utt.id}\t{text}")
        record = {"id": utt.id, **hyp.record(text)}
        score_lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
    files.write_lines(out_dir / HYP_NAME, hyp_lines)
    files.write_lines(out_dir / SCORES_NAME, score_lines)
    return texts


def _write_nbest(
    utterances: list[Utterance], results: list[list[Hypothesis]], tokenizer: Tokenizer, path: Path
) -> None:
    """One line per decoded utterance: its id and n-best list (rejected utterances left out)."""
    lines = []
    for utt, found in zip(utterances, results):
        if not found:
            continue
        entries = [h.record(hypothesis_text(tokenizer, h.tokens)) for h in found]
        lines.append(json.dumps({"id": utt.id, "nbest": entries}, ensure_ascii=False, allow_nan=False))
    files.write_lines(path, lines)

