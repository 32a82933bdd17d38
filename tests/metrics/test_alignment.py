"""asr.metrics.alignment: the sclite-style aligned view of one utterance."""

from __future__ import annotations

from asr.metrics import Transcripts, WerReport, format_alignment, score


def _score(pairs: dict[str, tuple[str, str]], speakers: dict[str, str] | None = None) -> WerReport:
    refs = Transcripts({k: r for k, (r, _) in pairs.items()}, dict(speakers or {}))
    hyps = Transcripts({k: h for k, (_, h) in pairs.items()})
    return score(refs, hyps)


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
