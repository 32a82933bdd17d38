"""WER reports: counts checked by hand and against jiwer, alignments, loading, output."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import jiwer
import pytest
from rich.console import Console

from asr.data.manifest import Utterance, write_manifest
from asr.metrics import (
    ErrorCounts,
    TranscriptError,
    Transcripts,
    WerReport,
    format_alignment,
    format_report_text,
    load_transcripts,
    print_report,
    score,
    write_report,
)


def _score(pairs: dict[str, tuple[str, str]], speakers: dict[str, str] | None = None) -> WerReport:
    refs = Transcripts({k: r for k, (r, _) in pairs.items()}, dict(speakers or {}))
    hyps = Transcripts({k: h for k, (_, h) in pairs.items()})
    return score(refs, hyps)


# --- hand-computed cases -------------------------------------------------------------


def test_substitution_and_deletion_counted_exactly():
    report = _score({"u": ("A B C D", "A X C")})
    assert report.words == ErrorCounts(substitutions=1, deletions=1, insertions=0, hits=2)
    assert report.words.reference_length == 4
    assert report.wer == 0.5
    # Characters "A B C D" vs "A X C": B->X, and the trailing " D" deleted.
    assert report.chars == ErrorCounts(substitutions=1, deletions=2, insertions=0, hits=4)
    assert report.cer == pytest.approx(3 / 7)
    assert report.ser == 1.0
    assert report.num_utterances == 1


def test_insertion():
    report = _score({"u": ("A B", "A X B")})
    assert report.words == ErrorCounts(substitutions=0, deletions=0, insertions=1, hits=2)
    assert report.wer == 0.5
    assert report.insertions == [("X", 1)]


def test_empty_reference_counts_insertions_over_total_reference_words():
    report = _score({"silence": ("", "HELLO THERE"), "u": ("A B", "A B")})
    assert report.words == ErrorCounts(substitutions=0, deletions=0, insertions=2, hits=2)
    assert report.wer == 1.0  # 2 insertions / 2 reference words
    silence = report.utterances[0]
    assert silence.words.insertions == 2 and silence.words.reference_length == 0
    assert silence.words.rate == 2.0  # errors / max(0, 1), jiwer's convention
    assert report.sentence_errors == 1


def test_only_empty_references_match_jiwer():
    report = _score({"a": ("", "HELLO THERE"), "b": ("", "")})
    assert report.wer == jiwer.wer(["", ""], ["HELLO THERE", ""]) == 2.0
    assert _score({"b": ("", "")}).wer == 0.0


def test_identical_transcripts():
    report = _score({"a": ("THE CAT SAT", "THE CAT SAT"), "b": ("ON THE MAT", "ON THE MAT")})
    assert report.words == ErrorCounts(hits=6)
    assert report.wer == report.cer == report.ser == 0.0
    assert report.substitutions == report.deletions == report.insertions == []
    assert format_alignment(report.utterances[0].alignment) == [
        "REF:  the cat sat",
        "HYP:  the cat sat",
        "EVAL:",
    ]


def test_texts_are_normalised_before_scoring():
    report = _score({"u": ("Don't stop, Mr. Smith!", "DON'T STOP MR SMITH")})
    assert report.wer == 0.0
    assert report.utterances[0].ref == "DON'T STOP MR SMITH"


def test_no_utterances():
    report = score(Transcripts({}), Transcripts({"x": "A"}))
    assert report.num_utterances == 0 and report.wer == 0.0 and report.ser == 0.0
    assert report.extra == ["x"]


# --- agreement with jiwer on many pairs ------------------------------------------------

_VOCAB = "THE A CAT DOG SAT ON MAT HAT RAN FAST SLOW RED BLUE IT'S".split()


def _random_pairs(n: int, seed: int = 1234) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs, hyps = [], []
    for i in range(n):
        ref = [rng.choice(_VOCAB) for _ in range(rng.randint(0 if i % 17 == 0 else 1, 12))]
        hyp = []
        for word in ref:
            roll = rng.random()
            if roll < 0.1:
                hyp.append(rng.choice(_VOCAB))  # substitution (sometimes the same word)
            elif roll >= 0.2:
                hyp.append(word)  # else: deleted
            if rng.random() < 0.07:
                hyp.append(rng.choice(_VOCAB))  # insertion
        if i % 11 == 0:
            hyp = []  # a few empty hypotheses
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return refs, hyps


def test_totals_equal_jiwer_on_random_pairs():
    refs, hyps = _random_pairs(50)
    ids = [f"u{i}" for i in range(len(refs))]
    report = score(Transcripts(dict(zip(ids, refs))), Transcripts(dict(zip(ids, hyps))))
    assert report.wer == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    assert report.cer == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
    direct = jiwer.process_words(refs, hyps)
    assert (report.words.substitutions, report.words.deletions, report.words.insertions) == (
        direct.substitutions,
        direct.deletions,
        direct.insertions,
    )
    assert report.words.hits == direct.hits
    # Per-utterance counts add up to the totals, and agree with jiwer one pair at a time.
    for utt, ref, hyp in list(zip(report.utterances, refs, hyps))[:10]:
        assert utt.words.errors == round(jiwer.wer(ref, hyp) * max(len(ref.split()), 1))
    wrong = sum(1 for r, h in zip(refs, hyps) if r.split() != h.split())
    assert report.sentence_errors == wrong
    assert report.ser == wrong / 50


# --- SER, speakers, confusions, missing / extra --------------------------------------------


def test_sentence_error_rate():
    report = _score(
        {"a": ("A B", "A B"), "b": ("A B", "A"), "c": ("A", "B"), "d": ("A", "A A")}
    )
    assert report.sentence_errors == 3
    assert report.ser == 0.75


def test_per_speaker_wer():
    pairs = {
        "a1": ("A B C D", "A X C"),  # S=1 D=1 over 4
        "a2": ("E F", "E F"),  # 0 over 2
        "b1": ("G H", "G H I"),  # I=1 over 2
        "n1": ("J", "K"),  # no speaker: left out of the speaker table
    }
    report = _score(pairs, {"a1": "spkA", "a2": "spkA", "b1": "spkB"})
    by_speaker = {s.speaker: s for s in report.speakers}
    assert set(by_speaker) == {"spkA", "spkB"}
    assert by_speaker["spkA"].utterances == 2
    assert by_speaker["spkA"].words == ErrorCounts(substitutions=1, deletions=1, hits=4)
    assert by_speaker["spkA"].words.rate == pytest.approx(2 / 6)
    assert by_speaker["spkB"].words.rate == 0.5
    assert report.utterances[3].speaker is None


def test_speakers_sorted_numerically_and_absent_when_unknown():
    report = _score({"x": ("A", "A"), "y": ("B", "B")}, {"x": "1089", "y": "121"})
    assert [s.speaker for s in report.speakers] == ["121", "1089"]
    assert _score({"x": ("A", "B")}).speakers == []


def test_top_confusions_counted():
    report = _score(
        {
            "1": ("THE CAT SAT", "A CAT SAT"),
            "2": ("THE DOG", "A DOG"),
            "3": ("THE BIG RED MAT", "DE BIG RED MAT UH"),
            "4": ("IS IT", "IT"),
            "5": ("IT IS", "IT"),
        }
    )
    assert report.substitutions[:2] == [("THE", "A", 2), ("THE", "DE", 1)]
    assert report.deletions == [("IS", 2)]
    assert report.insertions == [("UH", 1)]


def test_missing_hypotheses_scored_as_deletions_and_extra_listed():
    refs = Transcripts({"a": "A B", "gone": "C D E", "b": "F"})
    hyps = Transcripts({"a": "A B", "b": "F", "stray": "X Y"})
    report = score(refs, hyps)
    assert report.missing == ["gone"]
    assert report.extra == ["stray"]
    assert [u.id for u in report.utterances] == ["a", "gone", "b"]  # extra not scored
    gone = report.utterances[1]
    assert gone.missing and gone.hyp == ""
    assert gone.words == ErrorCounts(deletions=3)
    assert report.words == ErrorCounts(deletions=3, hits=3)
    assert report.wer == 0.5
    assert "gone" in format_report_text(report) and "stray" in format_report_text(report)


# --- aligned view ------------------------------------------------------------------


def test_aligned_view_exact():
    report = _score({"u": ("THE CAT SAT ON MAT", "THE BAT SAT ON THE MAT NOW")})
    assert format_alignment(report.utterances[0].alignment) == [
        "REF:  the CAT sat on *** mat ***",
        "HYP:  the BAT sat on THE mat NOW",
        "EVAL:     S          I       I",
    ]
    deletion = _score({"u": ("A B C D", "A X C")}).utterances[0].alignment
    assert format_alignment(deletion) == [
        "REF:  a B c D",
        "HYP:  a X c ***",
        "EVAL:   S   D",
    ]


def test_aligned_view_wraps_to_width_without_splitting_columns():
    ref = " ".join(f"WORD{i}" for i in range(20))
    columns = _score({"u": (ref, ref)}).utterances[0].alignment
    lines = format_alignment(columns, width=40)
    assert len(lines) % 3 == 0 and len(lines) > 3
    assert all(len(line) <= 40 for line in lines)
    refs = [line for line in lines if line.startswith("REF:")]
    assert " ".join(line[6:] for line in refs) == ref.lower()


# --- loading ---------------------------------------------------------------------


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


# --- output ----------------------------------------------------------------------


def _mixed_report() -> WerReport:
    refs = Transcripts(
        {"1-1-1": "A B C D", "1-1-2": "", "2-1-1": "THE CAT", "2-1-2": "GONE"},
        {"1-1-1": "1", "1-1-2": "1", "2-1-1": "2", "2-1-2": "2"},
    )
    hyps = Transcripts({"1-1-1": "A X C", "1-1-2": "UM", "2-1-1": "THE CAT", "9-9-9": "EXTRA"})
    return score(refs, hyps)


def test_json_round_trip():
    report = _mixed_report()
    data = json.loads(json.dumps(report.to_json()))
    assert data == report.to_json()
    assert data["wer"] == report.wer and data["num_utterances"] == 4
    assert data["words"]["substitutions"] == 1 and data["words"]["deletions"] == 2
    assert data["words"]["insertions"] == 1 and data["words"]["reference_length"] == 7
    assert data["missing"] == ["2-1-2"] and data["extra"] == ["9-9-9"]
    first = data["utterances"][0]
    assert first["alignment"] == [["A", "A", "C"], ["B", "X", "S"], ["C", "C", "C"], ["D", None, "D"]]
    assert data["speakers"][0]["words"]["rate"] == pytest.approx(3 / 4)


def test_print_report_shows_tables_alignments_and_warnings():
    console = Console(file=io.StringIO(), width=120, record=True, color_system=None)
    print_report(_mixed_report(), console, alignments=1, top=5)
    out = console.export_text()
    assert "WER %" in out and "57.14" in out  # S=1 D=2 I=1 over 7 reference words
    assert "Per speaker" in out and "Top substitutions" in out and "B -> X" in out
    assert "REF:  a B c D" in out and "HYP:  a X c ***" in out
    assert "id: 1-1-2" not in out  # only the first utterance with errors is aligned
    assert "2-1-2" in out and "9-9-9" in out and "warning" in out


def test_write_report_to_directory_and_to_json_path(tmp_path: Path):
    report = _mixed_report()
    json_path, text_path = write_report(report, tmp_path / "out")
    assert (json_path.name, text_path.name) == ("wer.json", "alignments.txt")
    assert json.loads(json_path.read_text()) == report.to_json()
    text = text_path.read_text()
    for utt in report.utterances:  # every utterance, not only the wrong ones
        assert f"id: {utt.id}" in text
    assert "REF:  a B c D\nHYP:  a X c ***\nEVAL:   S   D\n" in text
    json_path, text_path = write_report(report, tmp_path / "res" / "test_clean.json")
    assert json_path.is_file() and text_path.name == "test_clean.alignments.txt"
