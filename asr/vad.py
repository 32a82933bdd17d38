"""Voice-activity detection by frame energy, and cutting long audio into decodable segments.

A 10 ms frame is speech when its energy is within ``floor_db`` of the loudest frame and clearly
above the noise floor. Speech frames separated by less than ``min_silence`` are one region;
regions get ``TAIL`` seconds of silence after them (``LEAD`` before), neighbours are packed together
while they fit in ``max_seconds``, and a region still longer is cut at its quietest frames
(:func:`split_segments`). A model decodes best on segments no longer than what it
was trained on, so callers pass the longest training utterance as ``max_seconds``.
"""

from __future__ import annotations

import torch
from torch import Tensor

FRAME_SECONDS = 0.01
# Context kept around speech: none before, 0.25 s after. Corpus utterances (LibriSpeech's, and
# espeak-ng's) start at the first sound and end with a little silence, and decoding segments
# cut the same way works best: on 90 synthetic test utterances joined with pauses, a model
# trained on espeak-ng speech lost 3 WER points with 0.05 s of leading silence.
LEAD, TAIL = 0.0, 0.25
SILENCE_DB = -80.0  # frame energy (dB of full scale) that is never speech: digital silence


def speech_frames(wave: Tensor, sample_rate: int, frame_seconds: float = FRAME_SECONDS, floor_db: float = 50.0) -> Tensor:
    """(S,) audio -> (F,) bool, True on frames whose energy is within ``floor_db`` of the loudest
    and above the noise floor: 10 dB over the quietest tenth of frames, or at most 10 dB under
    the loudest (so audio with no pauses at all is still all speech), and never below
    ``SILENCE_DB``."""
    frame = max(1, int(frame_seconds * sample_rate))
    count = wave.numel() // frame
    if count == 0:
        return torch.zeros(0, dtype=torch.bool)
    energy = wave[: count * frame].float().reshape(count, frame).square().mean(dim=1)
    db = 10 * torch.log10(energy.clamp(min=1e-10))  # (F,)
    loudest = float(db.max())
    noise = min(float(db.quantile(0.1)) + 10.0, loudest - 10.0)
    return db > max(loudest - floor_db, noise, SILENCE_DB)


def speech_regions(
    wave: Tensor, sample_rate: int, *, min_silence: float = 0.3, min_speech: float = 0.05,
    lead: float = LEAD, tail: float = TAIL,
) -> list[tuple[int, int]]:  # fmt: skip
    """(start, end) samples of the speech in ``wave``: runs of speech frames closer than
    ``min_silence`` joined, runs shorter than ``min_speech`` dropped, ``lead`` seconds of context
    added before and ``tail`` after, without overlapping a neighbour."""
    voiced = speech_frames(wave, sample_rate).tolist()
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    runs: list[list[int]] = []  # [first frame, one past the last]
    for f, speech in enumerate(voiced):
        if not speech:
            continue
        if runs and (f - runs[-1][1]) * FRAME_SECONDS < min_silence:
            runs[-1][1] = f + 1
        else:
            runs.append([f, f + 1])
    runs = [r for r in runs if (r[1] - r[0]) * FRAME_SECONDS >= min_speech]
    before, after, total = int(lead * sample_rate), int(tail * sample_rate), wave.numel()
    regions = []
    for i, (first, last) in enumerate(runs):
        start = max(0, first * frame - before, regions[-1][1] if regions else 0)
        end = min(total, last * frame + after)
        if i + 1 < len(runs):  # leave the neighbour its own margin: meet halfway at most
            end = min(end, (last * frame + runs[i + 1][0] * frame) // 2)
        if last == len(voiced):  # speech up to the last whole frame: keep the partial tail
            end = total
        regions.append((start, end))
    return regions


def pack_regions(regions: list[tuple[int, int]], max_samples: int) -> list[tuple[int, int]]:
    """Join neighbouring regions (with the silence between them) while the whole fits in
    ``max_samples``; a region that is longer on its own stays as it is."""
    packed: list[tuple[int, int]] = []
    for start, end in regions:
        if packed and end - packed[-1][0] <= max_samples:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def vad_segments(wave: Tensor, sample_rate: int, max_seconds: float) -> list[tuple[int, int]]:
    """(start, end) samples of segments of at most ``max_seconds`` that cover the speech.
    Audio that fits in ``max_seconds`` is one segment, untouched (decoded as ``asr decode``
    would decode it)."""
    limit = max(1, int(max_seconds * sample_rate))
    if wave.numel() <= limit:
        return [(0, wave.numel())] if wave.numel() > 0 else []
    segments = []
    for start, end in pack_regions(speech_regions(wave, sample_rate), limit):
        at = start
        for piece in split_segments(wave[start:end], sample_rate, max_seconds):
            if piece.numel() > 0:
                segments.append((at, at + piece.numel()))
            at += piece.numel()
    return segments


def split_segments(wave: torch.Tensor, sample_rate: int, max_seconds: float) -> list[torch.Tensor]:
    """Cut (S,) audio into pieces of at most ``max_seconds``, each cut at the middle of the
    lowest-energy 10 ms frame within the last third of its window (first such frame on a tie).

    The pieces are views of ``wave``; concatenated, they are ``wave`` again."""
    limit = max(1, int(max_seconds * sample_rate))
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    segments = []
    start = 0
    while wave.numel() - start > limit:
        search_from = (2 * limit // 3) // frame * frame
        frames = (limit - search_from) // frame  # whole frames between 2/3 of the window and its end
        if frames == 0:  # a window shorter than a frame or two: cut at the limit
            cut = limit
        else:
            tail = wave[start + search_from : start + search_from + frames * frame]
            energy = tail.reshape(frames, frame).square().mean(dim=1)  # (frames,)
            cut = max(1, search_from + int(energy.argmin()) * frame + frame // 2)
        segments.append(wave[start : start + cut])
        start += cut
    segments.append(wave[start:])
    return segments
