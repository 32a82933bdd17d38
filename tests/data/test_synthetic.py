import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from asr.data import synthetic
from asr.data.librispeech import prepare_librispeech
from asr.data.manifest import read_manifest
from asr.data.synthetic import (
    SyntheticError,
    make_sentences,
    make_synthetic_corpus,
    vocabulary,
)
from asr.text.normalize import normalize_text
from librispeech_tree import make_librispeech_tree

QUIET = Console(quiet=True)
SMALL = dict(speakers_train=2, speakers_dev=1, speakers_test=1, utterances_per_speaker=3, seed=0)


def test_sentences_are_seeded_short_and_from_a_small_vocabulary():
    sentences = make_sentences(500, seed=3)
    assert sentences == make_sentences(500, seed=3)
    assert sentences != make_sentences(500, seed=4)
    assert all(3 <= len(s.split()) <= 8 for s in sentences)
    assert all(normalize_text(s) == s for s in sentences)
    words = {w for s in sentences for w in s.split()}
    assert words <= vocabulary() and 90 <= len(vocabulary()) <= 130
    assert {"DON'T", "IT'S"} <= words
    assert len(set(sentences)) > 400  # varied, not a handful of repeats


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # No skip without espeak-ng: recipes/setup.sh installs it, and its absence must fail loudly.
    assert shutil.which("espeak-ng"), "espeak-ng is missing: run recipes/setup.sh"
    return make_synthetic_corpus(
        tmp_path_factory.mktemp("syn"), num_workers=2, console=QUIET, **SMALL
    )


def _transcripts(root: Path, split: str) -> dict[str, str]:
    lines = {}
    for path in sorted((root / "LibriSpeech" / split).rglob("*.trans.txt")):
        for line in path.read_text().splitlines():
            utt_id, text = line.split(" ", 1)
            lines[utt_id] = text
    return lines


def test_layout_audio_and_transcripts(corpus: Path):
    speakers = {}
    for split, count in (("train", 2), ("dev", 1), ("test", 1)):
        folder = corpus / "LibriSpeech" / split
        speaker_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
        assert (folder / ".complete").is_file()
        assert len(speaker_dirs) == count
        for speaker_dir in speaker_dirs:
            assert speaker_dir.name.isdigit()
            [chapter_dir] = list(speaker_dir.iterdir())
            prefix = f"{speaker_dir.name}-{chapter_dir.name}"
            expected = [f"{prefix}-{n:04d}.flac" for n in range(3)] + [f"{prefix}.trans.txt"]
            assert sorted(p.name for p in chapter_dir.iterdir()) == expected
            for flac in chapter_dir.glob("*.flac"):
                info = sf.info(flac)
                assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
                assert 0.5 < info.duration < 6.0
                audio, _ = sf.read(flac)
                assert np.abs(audio).max() > 0.05  # speech, not silence
            speakers[speaker_dir.name] = split
        texts = _transcripts(corpus, split)
        assert len(texts) == 3 * count
        assert all(
            normalize_text(t) == t and set(t.split()) <= vocabulary() for t in texts.values()
        )
    assert len(speakers) == 4  # speaker-disjoint: no id in two splits

    recorded = json.loads((corpus / "LibriSpeech" / "SPEAKERS.json").read_text())
    assert {s["id"]: s["split"] for s in recorded} == speakers
    assert len({(s["voice"], s["speed"], s["pitch"]) for s in recorded}) == 4
    assert len({s["voice"] for s in recorded}) == 4
    assert all(140 <= s["speed"] <= 190 and 30 <= s["pitch"] <= 70 for s in recorded)


def test_same_seed_same_corpus_and_rerun_is_skipped(corpus: Path, tmp_path: Path):
    again = make_synthetic_corpus(tmp_path / "again", console=QUIET, **SMALL)
    for split in ("train", "dev", "test"):
        assert _transcripts(again, split) == _transcripts(corpus, split)
    first = sorted((again / "LibriSpeech").rglob("*.flac"))[0]
    mtime = first.stat().st_mtime_ns
    make_synthetic_corpus(tmp_path / "again", console=QUIET, **SMALL)
    assert first.stat().st_mtime_ns == mtime  # complete with the same parameters: nothing redone

    other = make_synthetic_corpus(tmp_path / "again", console=QUIET, **{**SMALL, "seed": 1})
    assert _transcripts(other, "train") != _transcripts(corpus, "train")
    assert (
        len(list((other / "LibriSpeech").rglob("*.flac"))) == 12
    )  # old corpus replaced, not mixed


def test_prepare_on_the_synthetic_corpus(corpus: Path, tmp_path: Path):
    reports = prepare_librispeech(corpus, ["train", "dev", "test"], tmp_path / "m", console=QUIET)
    assert {name: r.kept for name, r in reports.items()} == {"train": 6, "dev": 3, "test": 3}
    assert all(r.rejected == {} for r in reports.values())
    dev = read_manifest(tmp_path / "m" / "dev.jsonl")
    assert {u.id: u.text for u in dev} == _transcripts(corpus, "dev")
    assert all(u.sample_rate == 16000 and u.duration > 0.5 for u in dev)


def test_missing_espeak_says_how_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(synthetic.shutil, "which", lambda name: None)
    with pytest.raises(SyntheticError, match="apt-get install espeak-ng"):
        make_synthetic_corpus(tmp_path, console=QUIET, **SMALL)


def test_refuses_to_replace_folders_it_did_not_make(tmp_path: Path):
    (tmp_path / "LibriSpeech" / "train").mkdir(parents=True)
    with pytest.raises(SyntheticError, match="not made by this tool"):
        make_synthetic_corpus(tmp_path, console=QUIET, **SMALL)
    assert (tmp_path / "LibriSpeech" / "train").is_dir()


def test_make_librispeech_tree(tmp_path: Path):
    wave = np.full(800, 0.25, np.float32)
    subset = make_librispeech_tree(
        tmp_path, "dev", [("1", "10", "one", wave), ("2", "20", "two", None), ("1", "10", "", None)]
    )
    assert subset == tmp_path / "LibriSpeech" / "dev"
    assert (subset / "1" / "10" / "1-10.trans.txt").read_text() == "1-10-0000 one\n1-10-0001\n"
    assert (subset / "2" / "20" / "2-20.trans.txt").read_text() == "2-20-0000 two\n"
    audio, rate = sf.read(subset / "1" / "10" / "1-10-0000.flac", dtype="float32")
    assert rate == 16000 and np.allclose(audio, 0.25, atol=1e-4)
    assert sf.info(subset / "2" / "20" / "2-20-0000.flac").frames == 16000  # default: a 1 s tone
