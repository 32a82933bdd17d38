"""decode_batch on waveforms and decode_manifest end to end, on a tiny experiment made here."""

import io
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console

from asr.data.manifest import Utterance, write_manifest
from asr.decode.options import METHODS, DecodeOptions
from asr.decode.run import decode_manifest, duration_batches
from asr.decode.search import decode_batch

RATE = 16000
TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]
DURATIONS = [0.9, 1.4, 0.5, 1.1, 0.7, 1.4]  # a tie, to check the order of equal durations



def _write_corpus(root, texts, with_text=True) -> list[Utterance]:
    rng = np.random.default_rng(0)
    utterances = []
    for i, (text, seconds) in enumerate(zip(texts, DURATIONS)):
        samples = int(seconds * RATE)
        t = np.arange(samples) / RATE
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(samples)
        path = root / f"utt{i}.wav"
        sf.write(path, wave.astype(np.float32), RATE)
        speaker = f"spk{i % 2}"
        utt_id = f"{speaker}-1-{i:04d}"
        text = text if with_text else ""
        utterances.append(Utterance(utt_id, str(path), seconds, RATE, speaker, "1", text))
    return utterances


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, random_experiment):
    """exp/ with a tokenizer, config and checkpoint, and a manifest of six WAV files."""
    exp, model = random_experiment(TEXTS)
    root = tmp_path_factory.mktemp("decode")
    utterances = _write_corpus(root, TEXTS)
    manifest = root / "test.jsonl"
    write_manifest(utterances, manifest)
    return exp, manifest, utterances, model


def test_duration_batches_go_longest_first_and_cover_every_utterance(experiment):
    _, _, utterances, _ = experiment
    batches = duration_batches(utterances, 4)
    assert batches == [[1, 5, 3, 0], [4, 2]]


@pytest.mark.parametrize("method", METHODS)
def test_decode_batch_gives_each_utterance_the_result_it_gets_alone(experiment, method):
    _, _, utterances, model = experiment
    waves = [torch.from_numpy(sf.read(u.audio, dtype="float32")[0]) for u in utterances[:3]]
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(3, int(lengths.max()))
    for i, w in enumerate(waves):
        padded[i, : len(w)] = w
    options = DecodeOptions(method=method, beam=3)
    batched = decode_batch(model, padded, lengths, options)
    for i, wave in enumerate(waves):
        alone = decode_batch(model, wave[None], lengths[i : i + 1], options)[0]
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert batched[i][0].score == pytest.approx(alone[0].score, abs=1e-4)
        assert math.isfinite(alone[0].score)


def test_decode_manifest_writes_hypotheses_scores_timing_and_wer(experiment, tmp_path):
    exp, manifest, utterances, _ = experiment
    console = Console(file=io.StringIO(), width=120)
    options = DecodeOptions(method="joint_beam", beam=3, batch_size=4)
    summary = decode_manifest(exp, manifest, tmp_path / "out", options, console=console)

    out = tmp_path / "out"
    lines = (out / "hyp.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [u.id for u in utterances]  # manifest order
    assert all("\t" in line for line in lines)
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [u.id for u in utterances]
    assert [r["text"] for r in records] == [line.split("\t", 1)[1] for line in lines]
    assert any(r["tokens"] for r in records)
    for r in records:
        assert r["score"] == pytest.approx(0.7 * r["attention"] + 0.3 * r["ctc"], abs=1e-3)

    timing = json.loads((out / "timing.json").read_text())
    assert timing["audio_seconds"] == pytest.approx(sum(DURATIONS), abs=1e-3)
    assert timing["rtf"] > 0 and timing["method"] == "joint_beam" and timing["options"]["beam"] == 3
    assert summary.utterances == len(utterances) and summary.rtf == pytest.approx(timing["rtf"])

    report = json.loads((out / "wer.json").read_text())
    assert (out / "alignments.txt").is_file()
    assert report["num_utterances"] == len(utterances)
    assert summary.wer == pytest.approx(report["wer"]) and summary.wer > 0  # random model
    printed = console.file.getvalue()
    assert "real-time factor" in printed and "WER" in printed.upper()


def test_decode_manifest_output_does_not_depend_on_batch_size(experiment, tmp_path):
    exp, manifest, _, _ = experiment
    outputs = []
    for batch_size in (1, 3, 6):
        out = tmp_path / f"bs{batch_size}"
        options = DecodeOptions(method="joint_beam", beam=3, batch_size=batch_size)
        decode_manifest(exp, manifest, out, options, console=Console(file=io.StringIO()))
        outputs.append([json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()])
    for other in outputs[1:]:
        assert [r["tokens"] for r in other] == [r["tokens"] for r in outputs[0]]
        for a, b in zip(other, outputs[0]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_decode_manifest_without_references_skips_the_wer_report(experiment, tmp_path):
    exp, _, _, _ = experiment
    utterances = _write_corpus(tmp_path, TEXTS[:2], with_text=False)
    manifest = tmp_path / "untranscribed.jsonl"
    write_manifest(utterances, manifest)
    options = DecodeOptions(method="ctc_greedy", batch_size=2)
    summary = decode_manifest(exp, manifest, tmp_path / "out", options, console=Console(file=io.StringIO()))
    assert summary.wer is None and not (tmp_path / "out" / "wer.json").exists()
    assert len((tmp_path / "out" / "hyp.txt").read_text().splitlines()) == 2
