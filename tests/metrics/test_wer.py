"""asr.metrics.wer: counts checked by hand and against jiwer, SER, speakers, confusions,
missing and extra hypotheses."""

from __future__ import annotations

import random

import jiwer
import pytest

from asr.metrics import ErrorCounts, Transcripts, WerReport, format_alignment, format_report_text, score


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
