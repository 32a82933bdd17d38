"""asr.metrics.transcripts: reading id<TAB>text files and JSONL manifests to score."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.data.manifest import Utterance, write_manifest
from asr.metrics import TranscriptError, Transcripts, load_transcripts, score


def test_load_tsv_with_librispeech_ids_and_empty_text(tmp_path: Path):
    path = tmp_path / "hyp.txt"
    path.write_text("1089-134686-0000\tHello, world\n\n121-121726-0001\t\n1089-134686-0002\n")
    loaded = load_transcripts(path)
    assert loaded.texts == {
        "1089-134686-0000": "Hello, world",
        "121-121726-0001": "",
        "1089-134686-0002": "",
    }
    assert loaded.speakers == {
        "1089-134686-0000": "1089",
        "121-121726-0001": "121",
        "1089-134686-0002": "1089",
    }


def test_load_tsv_without_librispeech_ids_has_no_speakers(tmp_path: Path):
    path = tmp_path / "ref.tsv"
    path.write_text("utt_a\tA B\nutt_b\tC\n")
    assert load_transcripts(path) == Transcripts({"utt_a": "A B", "utt_b": "C"}, {})


def test_load_tsv_malformed_line_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.txt"
    path.write_text("u1\tA B\nu2\tC\nu3 SPACE SEPARATED TEXT\n")
    with pytest.raises(TranscriptError, match=r"bad\.txt:3: expected 'id<TAB>text'"):
        load_transcripts(path)
    path.write_text("u1\tA\n\nu1\tB\n")
    with pytest.raises(TranscriptError, match=r"bad\.txt:3: duplicate id 'u1'"):
        load_transcripts(path)


def test_load_manifest_by_suffix_and_by_content(tmp_path: Path):
    utts = [
        Utterance("s1-c-0", "/a.flac", 1.0, 16000, "spk1", "c", "Hello world"),
        Utterance("s2-c-1", "/b.flac", 2.0, 16000, "spk2", "c", "Good bye"),
    ]
    for name in ("test.jsonl", "manifest_without_suffix"):
        write_manifest(utts, tmp_path / name)
        loaded = load_transcripts(tmp_path / name)
        assert loaded.texts == {"s1-c-0": "Hello world", "s2-c-1": "Good bye"}
        assert loaded.speakers == {"s1-c-0": "spk1", "s2-c-1": "spk2"}


def test_load_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        load_transcripts(tmp_path / "nope.txt")


def test_manifest_refs_against_tsv_hyps(tmp_path: Path):
    utts = [Utterance("1-2-3", "/a.flac", 1.0, 16000, "1", "2", "Hello world.")]
    write_manifest(utts, tmp_path / "ref.jsonl")
    (tmp_path / "hyp.txt").write_text("1-2-3\thello word\n")
    report = score(load_transcripts(tmp_path / "ref.jsonl"), load_transcripts(tmp_path / "hyp.txt"))
    assert report.substitutions == [("WORLD", "WORD", 1)]
    assert [s.speaker for s in report.speakers] == ["1"]
