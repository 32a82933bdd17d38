"""asr.transcribe and `asr transcribe`, on a tiny random experiment made here.

The model is untrained, so the tests check structure and consistency (formats, rates, channels,
segmentation, error handling), never the quality of the text.
"""

import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console
from typer.testing import CliRunner

from asr.cli import app
from asr.decode.options import DecodeOptions
from asr.transcribe import FRAME_SECONDS, split_segments, transcribe_files

RATE = 16000  # the model's rate
TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]
GREEDY = DecodeOptions(method="attention_greedy", batch_size=4)


@pytest.fixture(scope="module")
def exp(random_experiment):
    """exp/ with tokenizer and checkpoints/last.pt of a tiny random model (16 kHz, 20 mels)."""
    return random_experiment(TEXTS, decoder_layers=1)[0]


def _speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """(S,) float32: a few tones with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 540.0, 1300.0))
    return (0.2 * envelope * wave / 3 + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _transcribe(exp, paths, options=GREEDY, **kwargs):
    return transcribe_files(exp, paths, options, console=Console(file=io.StringIO()), **kwargs)


# --------------------------------------------------------------------------- formats and rates


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_wav_flac_and_ogg_at_any_rate_are_transcribed(exp, tmp_path, rate):
    wave = _speechlike(1.5, rate)
    paths = []
    for ext, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")):
        paths.append(tmp_path / f"audio.{ext}")
        sf.write(paths[-1], wave, rate, subtype=subtype)
    results = _transcribe(exp, paths)
    assert [r.path for r in results] == [str(p) for p in paths]
    for result in results:
        assert result.error is None
        assert result.duration == pytest.approx(1.5, abs=0.02)  # resampled to the model's rate
        assert len(result.segments) == 1 and result.text == result.segments[0].text
    wav, flac, _ = results
    assert wav.text == flac.text  # both lossless, same samples


def test_stereo_is_mixed_down_to_the_same_text_as_mono(exp, tmp_path):
    wave = _speechlike(1.5, 44100, seed=1)
    sf.write(tmp_path / "mono.flac", wave, 44100, subtype="PCM_24")
    sf.write(tmp_path / "stereo.flac", np.stack([wave, wave], axis=1), 44100, subtype="PCM_24")
    sf.write(tmp_path / "stereo.wav", np.stack([wave, wave], axis=1), 44100, subtype="FLOAT")
    mono, stereo, stereo_wav = _transcribe(exp, [tmp_path / "mono.flac", tmp_path / "stereo.flac", tmp_path / "stereo.wav"])
    assert mono.error is None and mono.text  # the peaked random model says something
    assert stereo.text == mono.text and [s.text for s in stereo.segments] == [s.text for s in mono.segments]
    assert stereo_wav.duration == mono.duration


# --------------------------------------------------------------------------- segmentation


def _with_gaps(seconds: float, gaps: list[tuple[float, float]], rate: int = RATE) -> torch.Tensor:
    """Loud noise with exact silence in each (start, end) gap, in seconds."""
    wave = torch.from_numpy(0.3 * np.random.default_rng(0).standard_normal(int(seconds * rate))).float()
    for start, end in gaps:
        wave[int(start * rate) : int(end * rate)] = 0.0
    return wave


@pytest.mark.parametrize("seconds, limit", [(10.0, 2.0), (7.3, 3.0), (2.0, 0.5), (1.0, 0.013), (0.3, 0.0001)])
def test_segments_never_exceed_the_limit_and_concatenate_to_the_input(seconds, limit):
    wave = torch.randn(int(seconds * RATE))
    segments = split_segments(wave, RATE, limit)
    assert all(0 < s.numel() <= max(1, int(limit * RATE)) for s in segments)
    assert torch.equal(torch.cat(segments), wave)
    # every cut but the last falls in the last third of its window
    assert all(s.numel() >= int(limit * RATE) * 2 // 3 - int(FRAME_SECONDS * RATE) for s in segments[:-1])


def test_audio_within_the_limit_is_one_segment():
    wave = torch.randn(2 * RATE)
    (segment,) = split_segments(wave, RATE, 2.0)
    assert torch.equal(segment, wave)


def test_cuts_fall_in_the_quietest_frame():
    # window [0, 3) s: the search covers its last third [2, 3) s, which holds the gap [2.40, 2.45)
    wave = _with_gaps(5.0, [(2.40, 2.45), (1.0, 1.5)])  # a longer gap outside the search: ignored
    first = split_segments(wave, RATE, 3.0)[0]
    assert 2.40 * RATE < first.numel() < 2.45 * RATE
    # the quietest frame, not merely a quiet one: a softer stretch beats a louder one
    wave = _with_gaps(5.0, [])
    wave[int(2.2 * RATE) : int(2.3 * RATE)] *= 0.1
    wave[int(2.6 * RATE) : int(2.7 * RATE)] *= 0.01
    first = split_segments(wave, RATE, 3.0)[0]
    assert 2.6 * RATE < first.numel() < 2.7 * RATE


def test_long_file_is_split_into_the_expected_segments(exp, tmp_path):
    # limit 2 s: cuts in the gaps at 1.6 s (search [1.33, 2)) and 3.3 s (search [2.94, 3.61));
    # 5 - 3.3 = 1.7 s remain: three segments
    wave = _with_gaps(5.0, [(1.6, 1.65), (3.3, 3.35)]) * 0.5
    sf.write(tmp_path / "long.wav", wave.numpy(), RATE, subtype="FLOAT")
    (result,) = _transcribe(exp, [tmp_path / "long.wav"], segment_seconds=2.0)
    assert result.error is None and result.duration == pytest.approx(5.0)
    assert len(result.segments) == 3
    assert result.text == " ".join(s.text for s in result.segments if s.text)


def test_long_file_text_is_the_join_of_its_segments_transcribed_alone(exp, tmp_path):
    wave = torch.from_numpy(_speechlike(5.0, RATE, seed=2))
    sf.write(tmp_path / "long.wav", wave.numpy(), RATE, subtype="FLOAT")  # float: exact samples
    options = DecodeOptions(method="joint_beam", beam=3, batch_size=4)
    (whole,) = _transcribe(exp, [tmp_path / "long.wav"], options, segment_seconds=1.5)
    pieces = split_segments(wave, RATE, 1.5)
    assert len(whole.segments) == len(pieces) >= 4
    paths = []
    for i, piece in enumerate(pieces):
        paths.append(tmp_path / f"piece{i}.wav")
        sf.write(paths[-1], piece.numpy(), RATE, subtype="FLOAT")
    alone = _transcribe(exp, paths, options, segment_seconds=1.5)
    assert [r.text for r in alone] == [s.text for s in whole.segments]  # batched with padding == one at a time
    assert whole.text == " ".join(r.text for r in alone if r.text)
    assert whole.text.strip()


# --------------------------------------------------------------------------- bad input


def test_missing_and_unreadable_files_are_reported_and_the_others_transcribed(exp, tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _speechlike(1.0, RATE), RATE)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio\x00\x01" * 50)
    missing = tmp_path / "missing.flac"
    results = _transcribe(exp, [missing, good, garbage, good])
    assert [r.path for r in results] == [str(missing), str(good), str(garbage), str(good)]
    assert str(missing) in results[0].error and "not found" in results[0].error
    assert str(garbage) in results[2].error
    for bad in (results[0], results[2]):
        assert bad.text == "" and bad.segments == [] and bad.duration == 0.0
    assert results[1].error is None and results[1].text and results[1].text == results[3].text




@pytest.mark.parametrize(
    "samples, rate",
    [
        pytest.param(10, 8000, id="10-samples-8k"),
        pytest.param(300, 44100, id="300-samples-44k"),
        pytest.param(1200, 16000, id="75ms-under-min-input"),
    ],
)
def test_audio_shorter_than_the_model_input_gives_empty_text(exp, tmp_path, samples, rate):
    path = tmp_path / "short.wav"
    sf.write(path, _speechlike(1.0, rate)[:samples], rate)
    (result,) = _transcribe(exp, [path], DecodeOptions(method="joint_beam", beam=2, batch_size=1))
    assert result.error is None and result.text == ""
    assert result.duration == pytest.approx(samples / rate, abs=1e-3)


@pytest.mark.parametrize("rate", [16000, 8000])
def test_audio_without_samples_is_reported_as_empty(exp, tmp_path, rate):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), rate)
    (result,) = _transcribe(exp, [path], DecodeOptions(method="joint_beam", beam=2, batch_size=1))
    assert result.error == f"{path}: empty audio (no samples)" and result.text == ""


def test_segment_seconds_must_be_positive(exp, tmp_path):
    with pytest.raises(ValueError, match="segment-seconds"):
        _transcribe(exp, [tmp_path / "x.wav"], segment_seconds=0.0)


# --------------------------------------------------------------------------- command line


def test_cli_json_prints_one_object_per_file_and_exits_1_when_one_failed(exp, tmp_path):
    good = tmp_path / "good.ogg"
    sf.write(good, _speechlike(1.0, 22050), 22050)
    missing = tmp_path / "missing.wav"
    args = ["transcribe", "--exp", str(exp), str(good), str(missing), "--format", "json",
            "--method", "ctc_greedy", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(good), str(missing)]
    assert set(records[0]) == {"path", "text", "duration", "confidence", "segments", "error"}
    assert records[0]["error"] is None and records[0]["duration"] == pytest.approx(1.0, abs=0.01)
    assert str(missing) in records[1]["error"]
    assert result.stderr.strip().splitlines() == [f"error: {missing}: file not found"]


def test_cli_plain_writes_path_tab_text_to_out_and_exits_0(exp, tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"a{i}.flac")
        sf.write(paths[-1], _speechlike(1.0, RATE, seed=i), RATE)
    out = tmp_path / "out.txt"
    args = ["transcribe", "--exp", str(exp), *map(str, paths), "--out", str(out), "--method", "attention_greedy"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    expected = _transcribe(exp, paths, DecodeOptions(method="attention_greedy", length_norm=True))
    assert out.read_text().splitlines() == [f"{r.path}\t{r.text}" for r in expected]


def test_cli_subtitles_go_to_stdout_for_one_file_and_to_a_folder_for_several(exp, tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], _speechlike(1.5, RATE, seed=i), RATE)
    base = ["transcribe", "--exp", str(exp), "--method", "joint_beam", "--beam", "2", "--device", "cpu"]
    one = CliRunner().invoke(app, [*base, str(paths[0]), "--format", "vtt"])
    assert one.exit_code == 0, one.output
    assert one.stdout.startswith("WEBVTT\n\n") and " --> " in one.stdout
    refused = CliRunner().invoke(app, [*base, *map(str, paths), "--format", "srt"])
    assert refused.exit_code == 2 and "needs --out DIR" in refused.output
    several = CliRunner().invoke(app, [*base, *map(str, paths), "--format", "srt", "--out", str(tmp_path / "subs")])
    assert several.exit_code == 0, several.output
    for path in paths:
        srt = (tmp_path / "subs" / f"{path.stem}.srt").read_text()
        assert srt.startswith("1\n00:00:") and " --> " in srt
    tsv = CliRunner().invoke(app, [*base, *map(str, paths), "--format", "tsv"]).stdout.splitlines()
    assert tsv[0] == "path\tstart\tend\tconfidence\ttext" and [line.split("\t")[0] for line in tsv[1:]] == list(map(str, paths))
