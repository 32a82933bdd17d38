"""Transcriptions as text: plain, JSON lines, TSV, and SRT / WebVTT subtitles.

    plain  path<TAB>text, one line per file
    json   one object per file: text, duration, confidence, segments with words and n-best
    tsv    path<TAB>start<TAB>end<TAB>confidence<TAB>text, one line per segment, with a header
    srt    subtitles (SubRip): numbered cues "00:00:01,250 --> 00:00:03,000"
    vtt    subtitles (WebVTT): "WEBVTT", then cues "00:00:01.250 --> 00:00:03.000"

Subtitle cues are built from the word times: a cue ends at a segment's end, before a pause of
``max_gap`` seconds, or before it would pass ``max_chars`` characters or ``max_seconds``.
Without word times (``timestamps`` off), each segment is one cue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from asr.transcribe import Transcription

FORMATS = ("plain", "json", "tsv", "srt", "vtt")
SUBTITLES = ("srt", "vtt")


class FormatError(ValueError):
    """An output format that does not exist."""


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def cues(result: Transcription, max_chars: int = 42, max_seconds: float = 5.0, max_gap: float = 0.6) -> list[Cue]:
    """Subtitle cues of one transcription (see the module docstring)."""
    found: list[Cue] = []
    for segment in result.segments:
        if not segment.words:
            if segment.text:
                found.append(Cue(segment.start, segment.end, segment.text))
            continue
        line = [segment.words[0]]
        for word in segment.words[1:]:
            text = " ".join(w.text for w in line + [word])
            if word.start - line[-1].end >= max_gap or len(text) > max_chars or word.end - line[0].start > max_seconds:
                found.append(Cue(line[0].start, line[-1].end, " ".join(w.text for w in line)))
                line = []
            line.append(word)
        found.append(Cue(line[0].start, line[-1].end, " ".join(w.text for w in line)))
    return found


def timestamp(seconds: float, separator: str = ",") -> str:
    """Seconds -> HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT, ``separator="."``).

    >>> timestamp(3725.0456)
    '01:02:05,046'
    """
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(result: Transcription) -> str:
    blocks = [
        f"{i}\n{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n" for i, c in enumerate(cues(result), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(result: Transcription) -> str:
    blocks = [f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{c.text}\n" for c in cues(result)]
    return "\n".join(["WEBVTT\n", *blocks])


def to_lines(results: list[Transcription], output_format: str) -> str:
    """plain, json or tsv text for all results (failed files are left out of plain and tsv;
    json has them, with their ``error``)."""
    check_format(output_format)
    lines = []
    if output_format == "tsv":
        lines.append("path\tstart\tend\tconfidence\ttext")
    for result in results:
        if output_format == "json":
            lines.append(json.dumps(result.to_json(), ensure_ascii=False))
        elif result.error is not None:
            continue
        elif output_format == "plain":
            lines.append(f"{result.path}\t{result.text}")
        else:
            for s in result.segments:
                confidence = "" if s.confidence is None else f"{s.confidence:.3f}"
                lines.append(f"{result.path}\t{s.start:.3f}\t{s.end:.3f}\t{confidence}\t{s.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def check_format(output_format: str) -> None:
    if output_format not in FORMATS:
        raise FormatError(f"--format {output_format!r} is not one of {', '.join(FORMATS)}")


def render(result: Transcription, output_format: str) -> str:
    """One transcription in any format (subtitles, or the one-file case of the others)."""
    if output_format == "srt":
        return to_srt(result)
    if output_format == "vtt":
        return to_vtt(result)
    return to_lines([result], output_format)
