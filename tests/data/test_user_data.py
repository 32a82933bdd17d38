"""asr.data.kaldi and asr.data.jsonl: users' own data -> checked manifests, bad entries reported."""

import json

import numpy as np
import pytest
import soundfile as sf

from asr.data.jsonl import default_speaker, prepare_jsonl
from asr.data.kaldi import ARCHIVE, PIPE, prepare_kaldi
from asr.data.librispeech import PrepareError
from asr.data.manifest import read_manifest


def _tone(path, seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def _rejected(path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0] == "path\treason"
    return dict(line.split("\t") for line in lines[1:])


@pytest.fixture
def kaldi_dir(tmp_path):
    _tone(tmp_path / "a.wav", 3.0)
    _tone(tmp_path / "b.flac", 1.0, rate=8000)
    (tmp_path / "bad.wav").write_bytes(b"not audio" * 50)
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(
        f"recA {tmp_path}/a.wav\nrecB {tmp_path}/b.flac\nrecC sox x.sph -t wav - |\n"
        f"recD {tmp_path}/bad.wav\nrecE {tmp_path}/gone.wav\nrecF feats.ark:123\nrecG {tmp_path}/a.wav\n"
    )
    (data / "text").write_text(
        "u1 Hello, world!\nu2 good morning\nu3 piped\nu4 broken audio\nu5 missing audio\n"
        "u6 no recording\nu7 你好\nu8 past the end\nu1 again\nu9 archived\n"
    )
    (data / "segments").write_text(
        "u1 recA 0.0 1.0\nu2 recA 1.5 -1\nu3 recC 0 1\nu4 recD 0 1\nu5 recE 0 1\nu6 recZ 0 1\n"
        "u7 recB 0 0.5\nu8 recB 0.5 4.0\nu9 recF 0 1\n"
    )
    (data / "utt2spk").write_text("u1 anna\nu2 ben\n")
    return data


def test_kaldi_segments_become_files_and_bad_entries_are_reported(kaldi_dir, tmp_path):
    report = prepare_kaldi(kaldi_dir, tmp_path / "out")
    utts = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [(u.id, u.speaker, u.text) for u in utts] == [("u1", "anna", "HELLO WORLD"), ("u2", "ben", "GOOD MORNING")]
    assert [u.duration for u in utts] == [pytest.approx(1.0), pytest.approx(1.5)]  # -1: to the end
    assert sf.info(utts[1].audio).frames == 24000 and utts[1].audio.startswith(str(tmp_path / "out" / "train-audio"))
    rejected = _rejected(tmp_path / "out" / "train.rejected.tsv")
    by_reason = sorted(rejected.values())
    assert by_reason == sorted([PIPE, ARCHIVE, "unreadable audio", "no audio file", "no audio file",
                                "empty transcript", "segment outside the audio", "duplicate utterance id",
                                "no transcript"])  # fmt: skip
    assert rejected[f"{kaldi_dir}/wav.scp:3"] == PIPE and rejected[f"{kaldi_dir}/text:7"] == "empty transcript"
    assert rejected[f"{tmp_path}/a.wav"] == "no transcript"  # recG: listed, never used
    assert report.kept == 2 and sum(report.rejected.values()) == len(rejected)


def test_kaldi_without_segments_uses_recording_ids_and_the_unicode_normalizer_keeps_other_scripts(tmp_path):
    _tone(tmp_path / "x.wav", 1.0)
    data = tmp_path / "d"
    data.mkdir()
    (data / "wav.scp").write_text("spk1-u1 ../x.wav\n")  # relative to the data directory
    (data / "text").write_text("spk1-u1 你好，世界\n")
    report = prepare_kaldi(data, tmp_path / "out", name="zh", normalizer="unicode")
    (utt,) = read_manifest(tmp_path / "out" / "zh.jsonl")
    assert (utt.text, utt.speaker, utt.audio) == ("你好 世界", "spk1", str((tmp_path / "x.wav").resolve()))
    assert report.kept == 1 and report.rejected == {}


def test_a_kaldi_directory_without_text_is_a_one_line_error(tmp_path):
    (tmp_path / "wav.scp").write_text("a a.wav\n")
    with pytest.raises(PrepareError, match="text not found"):
        prepare_kaldi(tmp_path, tmp_path / "out")


def test_jsonl_needs_only_id_audio_and_text(tmp_path):
    _tone(tmp_path / "one.wav", 1.25)
    (tmp_path / "clips").mkdir()
    _tone(tmp_path / "clips" / "two.flac", 0.5, rate=22050)
    lines = [
        {"id": "anna_1", "audio": str(tmp_path / "one.wav"), "text": "It's fine."},
        {"id": "b-2", "audio": "clips/two.flac", "text": "yes", "speaker": "bob"},  # relative to the file
        {"id": "c3", "audio": "clips/missing.wav", "text": "no"},
        {"id": "d4", "text": "no audio field"},
        {"id": "e5", "audio": "one.wav", "text": "  "},
    ]
    src = tmp_path / "mine.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    report = prepare_jsonl(src, tmp_path / "out")
    utts = read_manifest(tmp_path / "out" / "mine.jsonl")
    assert [(u.id, u.speaker, u.text, u.sample_rate) for u in utts] == [
        ("anna_1", "anna", "IT'S FINE", 16000), ("b-2", "bob", "YES", 22050)]  # fmt: skip
    assert [u.duration for u in utts] == [pytest.approx(1.25), pytest.approx(0.5)]
    rejected = _rejected(tmp_path / "out" / "mine.rejected.tsv")
    assert rejected == {
        str(tmp_path / "clips" / "missing.wav"): "no audio file",
        f"{src}:4": "malformed transcript line",
        f"{src}:5": "empty transcript",
        f"{src}:6": "malformed transcript line",
    }
    assert report.kept == 2


@pytest.mark.parametrize("utt_id, speaker", [("1089-134686-0000", "1089"), ("anna_03", "anna"), ("solo", "solo")])
def test_default_speaker_is_the_id_prefix(utt_id, speaker):
    assert default_speaker(utt_id) == speaker
