"""asr.formats: plain / json / tsv lines and SRT / WebVTT subtitles from transcriptions."""

import json
import re

import pytest

from asr.decode.align import Word
from asr.formats import FormatError, check_format, cues, render, timestamp, to_lines
from asr.decode.hypothesis import Hypothesis
from asr.transcribe import Candidate, Segment, Transcription


def _result() -> Transcription:
    first = Segment(0.2, 2.5, "THE OLD HORSE", 0.6, [Word("THE", 0.3, 0.45, 0.5), Word("OLD", 0.5, 0.8, 0.7),
                    Word("HORSE", 1.6, 2.4, 0.6)], [Candidate("THE OLD HORSE", Hypothesis([5, 6, 7], -1.5, {"decoder": -1.0, "ctc": -2.0}))])  # fmt: skip
    second = Segment(3.0, 9.0, "A B C", 0.9, [Word("A", 3.1, 4.0, 0.9), Word("B", 4.1, 6.0, 0.9), Word("C", 6.1, 8.5, 0.9)])
    return Transcription("a.wav", "THE OLD HORSE A B C", 9.0, [first, second])


def test_timestamps_round_to_milliseconds():
    assert timestamp(0) == "00:00:00,000"
    assert timestamp(61.2345) == "00:01:01,234" or timestamp(61.2345) == "00:01:01,235"
    assert timestamp(3725.0456, ".") == "01:02:05.046"
    assert timestamp(-0.01) == "00:00:00,000"


def test_cues_break_at_pauses_segment_ends_and_the_length_limit():
    found = cues(_result())
    # 0.8 -> 1.6 s is a pause longer than 0.6 s; A B C would span 5.4 s > 5 s
    assert [(c.start, c.end, c.text) for c in found] == [
        (0.3, 0.8, "THE OLD"), (1.6, 2.4, "HORSE"), (3.1, 6.0, "A B"), (6.1, 8.5, "C"),
    ]  # fmt: skip
    assert all(len(c.text) <= 10 for c in cues(_result(), max_chars=10))


def test_srt_has_numbered_cues_with_comma_milliseconds():
    text = render(_result(), "srt")
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 4
    assert blocks[0] == "1\n00:00:00,300 --> 00:00:00,800\nTHE OLD"
    assert all(re.fullmatch(r"\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n.+", b) for b in blocks)


def test_vtt_starts_with_its_header_and_uses_dots():
    text = render(_result(), "vtt")
    assert text.startswith("WEBVTT\n\n00:00:00.300 --> 00:00:00.800\nTHE OLD\n")
    assert text.count(" --> ") == 4


def test_without_word_times_each_segment_is_one_cue():
    result = Transcription("a.wav", "HI THERE", 2.0, [Segment(0.0, 1.0, "HI"), Segment(1.0, 2.0, ""), Segment(1.5, 2.0, "THERE")])
    assert [(c.start, c.end, c.text) for c in cues(result)] == [(0.0, 1.0, "HI"), (1.5, 2.0, "THERE")]


def test_plain_tsv_and_json_lines():
    good, bad = _result(), Transcription("b.wav", error="b.wav: file not found")
    assert to_lines([good, bad], "plain") == "a.wav\tTHE OLD HORSE A B C\n"
    tsv = to_lines([good, bad], "tsv").splitlines()
    assert tsv == ["path\tstart\tend\tconfidence\ttext", "a.wav\t0.200\t2.500\t0.600\tTHE OLD HORSE", "a.wav\t3.000\t9.000\t0.900\tA B C"]
    records = [json.loads(line) for line in to_lines([good, bad], "json").splitlines()]
    assert records[1]["error"] == "b.wav: file not found"
    first = records[0]["segments"][0]
    assert first["words"][1] == {"text": "OLD", "start": 0.5, "end": 0.8, "confidence": 0.7}
    assert first["nbest"] == [{"text": "THE OLD HORSE", "tokens": [5, 6, 7], "score": -1.5, "attention": -1.0, "ctc": -2.0}]
    assert records[0]["confidence"] == pytest.approx((0.5 + 0.7 + 0.6 + 0.9 * 3) / 6)


def test_an_unknown_format_is_an_error_naming_the_choices():
    with pytest.raises(FormatError, match="plain, json, tsv, srt, vtt"):
        check_format("docx")
