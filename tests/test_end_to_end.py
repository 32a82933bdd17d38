"""The README's main command end to end on the synthetic corpus (minutes: marked slow).

recipes/synthetic/run.sh: synthesise -> manifests -> tokenizer -> train configs/tiny.yaml ->
average -> decode the unseen test speakers with attention greedy and joint CTC/attention beam.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("synthetic")
    result = subprocess.run(
        [str(REPO / "recipes/synthetic/run.sh"), "--work", str(work)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work


def _log(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "exp/log.jsonl").read_text().splitlines()]


def _wer(work: Path, method: str) -> float:
    return json.loads((work / f"exp/decode/test-{method}/wer.json").read_text())["wer"]


def _hyps(path: Path) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in path.read_text().splitlines())


def test_training_drives_the_loss_down(recipe):
    losses = [r["loss"] for r in _log(recipe) if r["event"] == "train"]
    assert losses[-1] < 0.4 * losses[0], (losses[0], losses[-1])


def test_dev_wer_with_greedy_decoding_is_well_below_100_percent(recipe):
    best = min(r["wer"] for r in _log(recipe) if r["event"] == "valid")
    assert best < 0.35


def test_unseen_test_speakers_are_recognised(recipe):
    assert _wer(recipe, "attention_greedy") < 0.35


def test_joint_beam_search_is_no_worse_than_greedy(recipe):
    assert _wer(recipe, "joint_beam") <= _wer(recipe, "attention_greedy")


def test_batched_beam_search_equals_one_utterance_at_a_time(recipe):
    asr = [sys.executable, "-m", "asr.cli"]
    out = recipe / "exp/decode/test-joint_beam-batch1"
    manifest = recipe / "manifests/test.jsonl"
    subprocess.run(
        [*asr, "decode", "--exp", str(recipe / "exp"), "--manifest", str(manifest), "--method", "joint_beam",
         "--beam", "10", "--ctc-weight", "0.3", "--batch-size", "1", "--out", str(out)],
        check=True, capture_output=True, cwd=REPO,
    )
    batched = _hyps(recipe / "exp/decode/test-joint_beam/hyp.txt")
    assert _hyps(out / "hyp.txt") == batched
    assert len(batched) == len(manifest.read_text().splitlines())


def test_transcribe_gives_the_decoded_text_of_a_test_file(recipe):
    first = json.loads((recipe / "manifests/test.jsonl").read_text().splitlines()[0])
    result = subprocess.run(
        [sys.executable, "-m", "asr.cli", "transcribe", "--exp", str(recipe / "exp"), first["audio"],
         "--format", "json"],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    text = json.loads(result.stdout.splitlines()[0])["text"]
    assert text == _hyps(recipe / "exp/decode/test-joint_beam/hyp.txt")[first["id"]]


def test_an_lm_of_the_corpus_sentences_lowers_the_test_wer_at_the_same_beam(recipe):
    """Shallow fusion: a Transformer LM trained on the corpus's sentences (the transcripts of
    train, dev and test, so it has seen the test text: this checks that fusion steers the
    search, not that the LM generalises) lowers the joint beam search's WER (beam 10, CTC 0.3).
    Measured on 2026-12-01: 16.0% -> 9.1%. (An LM of other sentences of the grammar only,
    which draws each word at random within its class, gave 16.0% -> 15.4%.) On 2026-12-03, with
    the LM on the shared stack (configs/lm/tiny.yaml): 12.9% -> 9.8%; the LM code before it gave
    10.0% with the same recogniser."""
    manifests = recipe / "manifests"
    asr = [sys.executable, "-m", "asr.cli"]
    sentences = ", ".join(str(manifests / f"{name}.jsonl") for name in ("train", "dev", "test"))
    subprocess.run(
        [*asr, "lm", "train", "--config", str(REPO / "configs/lm/tiny.yaml"), "--out", str(recipe / "lm"),
         "--set", f"lm.data.tokenizer={recipe / 'tokenizer'}", "--set", f"lm.data.manifests=[{sentences}]",
         "--device", "cpu"],
        check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    out = recipe / "exp/decode/test-joint_beam-lm0.5"
    subprocess.run(
        [*asr, "decode", "--exp", str(recipe / "exp"), "--manifest", str(manifests / "test.jsonl"),
         "--method", "joint_beam", "--beam", "10", "--ctc-weight", "0.3", "--lm", str(recipe / "lm"),
         "--lm-weight", "0.5", "--out", str(out)],
        check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    fused, plain = json.loads((out / "wer.json").read_text())["wer"], _wer(recipe, "joint_beam")
    assert fused < 0.85 * plain, (fused, plain)


# --------------------------------------------------------------------------- word times, long audio
# (the trained model of the recipe; docs/transcription.md, "Word times" and "Long audio")


def test_word_times_land_within_100_ms_of_the_synthesised_silence_boundaries(recipe):
    """Phrases spoken alone by espeak-ng and joined with known pauses: the first word of each
    phrase starts, and its last word ends, where the synthesiser's speech starts and ends."""
    import numpy as np

    import asr
    from tests.support.spoken_words import boundary_errors, phrase_sets

    recognizer = asr.load(recipe / "exp")
    errors, boundaries = [], 0
    for phrases, audio, bounds in phrase_sets(8):
        result = recognizer.transcribe(audio, 16000)
        found, total = boundary_errors(phrases, bounds, [(w.text, w.start, w.end) for w in result.words])
        errors, boundaries = errors + found, boundaries + total
    errors = np.array(errors)
    assert len(errors) >= 0.6 * boundaries, (len(errors), boundaries)
    assert np.median(errors) <= 0.03 and (errors <= 0.1).mean() >= 0.9, np.round(np.sort(errors), 3)


def test_a_long_recording_is_segmented_at_its_pauses_with_the_wer_of_its_utterances(recipe):
    """The 90 test utterances in three ~2-minute recordings of 30, joined with 1.5-3 s pauses:
    transcribed whole (VAD segments capped at the longest training utterance), no more words are
    wrong than when the utterances are decoded one by one, beyond chance.

    The two differ where a segment's audio is not its utterance's (more silence around it, two
    utterances in one segment), and how often that changes a transcript depends on the model just
    trained: a fixed margin of 2 points failed once at 13.1% against 10.2% (14 words of 481). So
    the comparison is paired, with a margin derived from the changes themselves: the utterances
    (or runs of them that one segment spans) are scored both ways, and the long-audio transcript's
    extra errors d, summed, must stay within 3 standard deviations of what changes as likely to
    help as to hurt would give, sum(d) <= 3 sqrt(sum(d^2)) (one-sided p ~ 0.001). A word lost or
    doubled at every cut (d >= 1 in most of the 90 units) gives sum(d) ~ 90 against ~ 28."""
    import random

    import numpy as np
    import torch

    import asr
    from asr.audio import load_audio

    recognizer = asr.load(recipe / "exp")
    utterances = [json.loads(line) for line in (recipe / "manifests/test.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    extra_errors = []  # d per unit: long-audio errors minus one-by-one errors
    for first in range(0, 90, 30):
        group = utterances[first : first + 30]
        waves = [load_audio(u["audio"], 16000)[0] for u in group]
        pauses = [torch.zeros(int(rng.uniform(1.5, 3.0) * 16000)) for _ in waves[1:]]
        pieces = [piece for pair in zip(waves, [*pauses, torch.zeros(0)]) for piece in pair]
        recording = torch.cat(pieces)
        assert 100 < recording.numel() / 16000 < 140
        result = recognizer.transcribe(recording)
        assert len(result.segments) >= 25  # cut at the pauses, not every 20 s
        assert all(s.end - s.start <= 3.5 for s in result.segments)
        starts = np.cumsum([0] + [p.numel() for p in pieces])[::2][: len(waves)] / 16000
        spans = [(start, start + w.numel() / 16000) for start, w in zip(starts, waves)]
        alone = [r.text for r in recognizer.decode_batch(waves)]
        for members, texts in _units(spans, result.segments):
            reference = " ".join(group[i]["text"] for i in members)
            extra_errors.append(_errors(reference, " ".join(texts)) - _errors(reference, " ".join(alone[i] for i in members)))
    d = np.array(extra_errors)
    assert len(d) >= 75, len(d)  # most segments hold one utterance
    assert d.sum() <= 3 * np.sqrt((d**2).sum()), (d.sum(), np.sqrt((d**2).sum()), np.sort(d))


def _units(spans: list[tuple[float, float]], segments: list) -> list[tuple[list[int], list[str]]]:
    """Group utterances (time spans in a recording) with the segments transcribed over them: a
    segment joins the utterances it overlaps (the nearest one if none) into one unit. Returns
    (utterance indices, segment texts) per unit, in time order."""
    unit = list(range(len(spans)))  # each utterance's unit: the first utterance in it
    placed = []
    for segment in segments:
        touched = [i for i, (start, end) in enumerate(spans) if min(end, segment.end) > max(start, segment.start)]
        middle = (segment.start + segment.end) / 2
        touched = touched or [min(range(len(spans)), key=lambda i: abs(sum(spans[i]) / 2 - middle))]
        for i in touched[1:]:  # consecutive: merge their units into the first one's
            unit = [unit[touched[0]] if u == unit[i] else u for u in unit]
        placed.append((touched[0], segment.text))
    members = {u: [i for i in range(len(spans)) if unit[i] == u] for u in sorted(set(unit))}
    return [(indices, [text for i, text in placed if unit[i] == u]) for u, indices in members.items()]


def _errors(reference: str, hypothesis: str) -> int:
    from asr.metrics import Transcripts, score

    return score(Transcripts({"u": reference}), Transcripts({"u": hypothesis})).words.errors
