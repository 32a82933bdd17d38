"""Audio that decodes but cannot be used (NaN, Inf, silence under a transcript): every command
names the file and the reason, leaves it out, and keeps every other result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from asr.audio import EMPTY, NONFINITE, SILENT
from asr.data.manifest import Utterance, read_manifest, write_manifest
from reliability_kit import (
    RATE, TEXTS, World, asr, assert_one_line_error, limit_for_extra, run_asr, snapshot, speechlike, write_wave,
)  # fmt: skip
from librispeech_tree import make_librispeech_tree


def _nan(seconds: float = 1.0) -> np.ndarray:
    wave = speechlike(seconds, seed=7)
    wave[len(wave) // 3] = np.nan  # one sample is enough
    return wave


def _inf(seconds: float = 1.0) -> np.ndarray:
    wave = speechlike(seconds, seed=8)
    wave[-1] = -np.inf
    return wave


def _silent(seconds: float = 1.0) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


BAD = {"nan": (_nan, NONFINITE), "inf": (_inf, NONFINITE), "silent": (_silent, SILENT)}


def _manifest_with_bad(world: World, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The test manifest plus one utterance of each bad kind; returns it and id -> reason."""
    utterances = read_manifest(world.test_manifest)
    expected = {}
    for n, (name, (make, reason)) in enumerate(BAD.items()):
        path = write_wave(tmp_path / f"{name}.wav", make())
        utt_id = f"21-5-{90 + n:04d}"
        utterances.insert(n + 1, Utterance(utt_id, str(path), 1.0, RATE, "21", "5", "HELLO WORLD"))
        expected[utt_id] = reason
    manifest = tmp_path / "with-bad.jsonl"
    write_manifest(utterances, manifest)
    return manifest, expected


def test_prepare_lists_bad_audio_in_rejected_tsv_and_keeps_the_rest(tmp_path):
    good = [("31", "4", TEXTS[i], speechlike(0.8, seed=i)) for i in range(3)]
    bad = [("31", "4", "HELLO", make()) for make, _ in BAD.values()]
    make_librispeech_tree(tmp_path, "dev", good + bad, float_wav=True)
    result = asr("prepare", "librispeech", "--root", tmp_path, "--subsets", "dev", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    kept = read_manifest(tmp_path / "m" / "dev.jsonl")
    assert [u.id for u in kept] == ["31-4-0000", "31-4-0001", "31-4-0002"]
    rows = (tmp_path / "m" / "dev.rejected.tsv").read_text().splitlines()
    assert rows[0] == "path\treason"
    listed = {Path(row.split("\t")[0]).stem: row.split("\t")[1] for row in rows[1:]}
    assert listed == {"31-4-0003": NONFINITE, "31-4-0004": NONFINITE, "31-4-0005": SILENT}


def test_silence_without_a_transcript_is_not_rejected_by_prepare(tmp_path):
    make_librispeech_tree(tmp_path, "dev", [("31", "4", "HELLO", speechlike(0.8)), ("31", "4", "", _silent())], float_wav=True)
    result = asr("prepare", "librispeech", "--root", tmp_path, "--subsets", "dev", "--out", tmp_path / "m")
    assert result.exit_code == 0
    rows = (tmp_path / "m" / "dev.rejected.tsv").read_text().splitlines()
    assert [row.split("\t")[1] for row in rows[1:]] == ["empty transcript"]  # not "silent audio"


@pytest.mark.parametrize("method", ["ctc_greedy", "attention_beam", "joint_beam", "attention_rescoring"])
def test_decode_reports_bad_audio_per_utterance_and_decodes_the_rest(world, tmp_path, method):
    manifest, expected = _manifest_with_bad(world, tmp_path)
    out = tmp_path / "out"
    result = asr("decode", "--exp", world.exp, "--manifest", manifest, "--out", out, "--method", method, "--beam", "2")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and all(f"{i}: " in e and r in e for e, (i, r) in zip(errors, expected.items()))
    rejected = (out / "rejected.tsv").read_text().splitlines()
    assert rejected[0] == "id\treason"
    assert {row.split("\t")[0]: row for row in rejected[1:]}.keys() == expected.keys()
    good_ids = [u.id for u in read_manifest(world.test_manifest)]
    hyp_ids = [line.split("\t")[0] for line in (out / "hyp.txt").read_text().splitlines()]
    assert hyp_ids == good_ids  # every good utterance, in manifest order
    # Alone, the good utterances decode to the same text: the bad ones changed nothing else.
    alone = tmp_path / "alone"
    assert asr("decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", alone, "--method", method, "--beam", "2").exit_code == 0
    assert (alone / "hyp.txt").read_text() == (out / "hyp.txt").read_text()
    report = json.loads((out / "wer.json").read_text())
    assert sorted(report["missing"]) == sorted(expected)  # scored as deletions, and named
    timing = json.loads((out / "timing.json").read_text())
    assert timing["rejected"] == 3 and timing["utterances"] == len(good_ids)
    assert all(math.isfinite(v) for v in (timing["rtf"], timing["audio_seconds"]))


@pytest.mark.parametrize("method", ["attention_greedy", "attention_rescoring"])
def test_transcribe_reports_bad_audio_per_file_and_keeps_the_others(world, tmp_path, method):
    good = [write_wave(tmp_path / f"good{i}.wav", speechlike(1.0, seed=i)) for i in range(2)]
    bad = {name: write_wave(tmp_path / f"{name}.wav", make()) for name, (make, _) in BAD.items()}
    paths = [good[0], *bad.values(), good[1]]
    out = tmp_path / "out.jsonl"
    result = asr("transcribe", "--exp", world.exp, *paths, "--format", "json", "--out", out, "--method", method, "--beam", "2")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in paths]
    for record, (name, (_, reason)) in zip(records[1:4], BAD.items()):
        assert record["error"] == f"{bad[name]}: {reason}" and record["text"] == ""
    alone = asr("transcribe", "--exp", world.exp, *good, "--format", "json", "--method", method, "--beam", "2")
    assert [json.loads(line) for line in alone.stdout.splitlines()] == [records[0], records[4]]
    assert result.stderr.strip().splitlines() == [f"error: {bad[n]}: {r}" for n, (_, r) in BAD.items()]


def test_training_and_cmvn_never_see_bad_audio(world, tmp_path):
    utterances = read_manifest(world.train_manifest)
    expected = {}
    for n, (name, (make, reason)) in enumerate(BAD.items()):
        path = write_wave(tmp_path / f"{name}.wav", make(0.8))
        utterances.append(Utterance(f"11-5-{90 + n:04d}", str(path), 0.8, RATE, "11", "5", "HELLO"))
        expected[utterances[-1].id] = reason
    manifest = tmp_path / "train.jsonl"
    write_manifest(utterances, manifest)
    exp = tmp_path / "exp"
    from reliability_kit import TINY_MODEL

    sets = [a for o in [*TINY_MODEL, f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}"] for a in ("--set", o)]
    result = asr("train", "--config", world.config, "--exp", exp, *sets, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    cmvn = json.loads((exp / "cmvn.json").read_text())
    assert all(math.isfinite(v) for v in cmvn["mean"] + cmvn["var"])
    for report in ("train.rejected.tsv", "dev.rejected.tsv"):
        rows = [line.split("\t") for line in (exp / report).read_text().splitlines()[2:]]
        assert {row[0]: row[2] for row in rows} == expected
    assert "left out 3 of 9 utterances" in result.stderr
    log = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in log if r.get("event") in ("train", "valid"))
    # A rerun (resume) reuses the list instead of reading the audio again, and changes nothing.
    before = snapshot(exp / "train.rejected.tsv", exp / "cmvn.json")
    assert asr("train", "--config", world.config, "--exp", exp, *sets, "--device", "cpu").exit_code == 0
    assert snapshot(exp / "train.rejected.tsv", exp / "cmvn.json") == before


def test_a_file_too_large_for_memory_is_refused_per_file(world, tmp_path):
    """Under ``ulimit -v``, a recording whose samples cannot fit is reported, not loaded: the
    process neither dies nor takes the machine down, and the other file is transcribed."""
    long_wav = tmp_path / "long.wav"
    import soundfile as sf

    with sf.SoundFile(long_wav, "w", 16000, 1, subtype="PCM_16") as f:  # 40 min, 77 MB on disk
        block = (speechlike(60.0) * 32767).astype(np.int16)
        for _ in range(40):
            f.write(block)
    good = write_wave(tmp_path / "good.wav", speechlike(1.0))
    limit = limit_for_extra(200 << 20)  # loading needs 4 x 4 bytes x 38.4M samples = 614 MB
    result = run_asr("transcribe", "--exp", world.exp, long_wav, good, "--method", "ctc_greedy", "--device", "cpu", memory_limit=limit)
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"error: loading {long_wav}") and "would need about" in result.stderr
    assert result.stdout.startswith(f"{good}\t")


def test_decode_options_too_large_for_memory_are_refused_before_any_work(world, tmp_path):
    long_wav = write_wave(tmp_path / "long.wav", speechlike(120.0))
    manifest = tmp_path / "long.jsonl"
    write_manifest([Utterance(f"1-1-{i:04d}", str(long_wav), 120.0, RATE, "1", "1", "HELLO") for i in range(64)], manifest)
    limit = limit_for_extra(1 << 30)
    out = tmp_path / "out"
    result = run_asr("decode", "--exp", world.exp, "--manifest", manifest, "--out", out, "--method", "joint_beam",
                     "--beam", "200", "--batch-size", "64", "--device", "cpu", memory_limit=limit)  # fmt: skip
    assert_one_line_error(result, "joint_beam decoding of a batch of 64", "beam 200", "lower --batch-size or --beam")
    assert not out.exists()
    # The same machine decodes it with sane options: the estimate does not refuse real work.
    ok = run_asr("decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", out, "--method", "joint_beam",
                 "--beam", "4", "--device", "cpu", memory_limit=limit)  # fmt: skip
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("samples, reason", [(0, EMPTY), (1, SILENT)])
def test_a_0_sample_file_is_refused_as_a_1_sample_file_is(world, tmp_path, samples, reason):
    empty = write_wave(tmp_path / "short.wav", np.zeros(samples, np.float32))
    good = write_wave(tmp_path / "good.wav", speechlike(1.0))
    out = tmp_path / "out.jsonl"
    result = asr("transcribe", "--exp", world.exp, empty, good, "--format", "json", "--out", out, "--method", "ctc_greedy")
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip() == f"error: {empty}: {reason}"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["error"] == f"{empty}: {reason}" and records[1]["error"] is None


def test_decode_rejects_a_0_sample_utterance_with_a_transcript(world, tmp_path):
    empty = write_wave(tmp_path / "empty.wav", np.zeros(0, np.float32))
    utterances = [*read_manifest(world.test_manifest), Utterance("21-5-0099", str(empty), 0.0, RATE, "21", "5", "HELLO")]
    write_manifest(utterances, tmp_path / "m.jsonl")
    result = asr("decode", "--exp", world.exp, "--manifest", tmp_path / "m.jsonl", "--out", tmp_path / "d", "--method", "ctc_greedy")
    assert result.exit_code == 1
    assert (tmp_path / "d" / "rejected.tsv").read_text().splitlines()[1:] == [f"21-5-0099\t{empty}: {EMPTY}"]


def test_transcribe_shows_the_segments_of_a_long_file_as_they_are_decoded(world, tmp_path, monkeypatch):
    from rich.progress import Progress

    from asr import transcribe as pipeline

    shown = []

    class Recorded(Progress):
        def update(self, task, **fields):
            if fields.get("total"):
                shown.append((fields["description"], fields["completed"], fields["total"]))
            super().update(task, **fields)

    monkeypatch.setattr(pipeline, "counting_progress", lambda console, **kw: Recorded(console=console, **kw))
    wav = write_wave(tmp_path / "long.wav", speechlike(12.0))
    args = ["transcribe", "--exp", world.exp, wav, "--method", "ctc_greedy", "--segment-seconds", "1", "--no-vad", "--batch-size", "4"]
    result = asr(*args)
    assert result.exit_code == 0, result.stderr
    total = shown[0][2]
    assert total >= 12  # one-second segments at most
    assert shown == [(f"  segments of {wav}", done, total) for done in [0, *range(4, total, 4), total]]
