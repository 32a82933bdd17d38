"""Scoring transcripts: WER / CER / SER via jiwer, sclite-style alignments,
per-speaker scores, top confusions, and reports (rich tables, JSON, text).

Typical use (what ``asr wer REF HYP`` does)::

    report = score(load_transcripts(ref_path), load_transcripts(hyp_path))
    print_report(report, Console())
    write_report(report, out_dir)
"""

from asr.metrics.alignment import AlignedWord, format_alignment
from asr.metrics.report import format_report_text, print_report, write_report
from asr.metrics.transcripts import TranscriptError, Transcripts, load_transcripts
from asr.metrics.wer import ErrorCounts, SpeakerScore, UtteranceScore, WerReport, score

__all__ = [
    "AlignedWord",
    "ErrorCounts",
    "SpeakerScore",
    "TranscriptError",
    "Transcripts",
    "UtteranceScore",
    "WerReport",
    "format_alignment",
    "format_report_text",
    "load_transcripts",
    "print_report",
    "score",
    "write_report",
]
