"""Word times and confidences from CTC forced alignment of a chosen hypothesis.

The CTC head gives, for every encoder frame, a distribution over tokens and blank. Forcing the
hypothesis's tokens through it (``torchaudio.functional.forced_align``: the best CTC path that
spells exactly those tokens) gives each token a run of frames; a word runs from the first frame
of its first token to the last frame of its last token. SentencePiece marks the first token of a
word with a leading "\u2581", which is how tokens are grouped into words.

CTC emits a token on a frame or two (its "spike"), usually near the start of the sound, so the
spans alone end words early. :func:`snap_to_speech` then moves each boundary to the nearest
edge between speech and silence in the waveform's frame energy, never past a neighbour.

Confidence is a posterior probability, in [0, 1]: a token's is the mean CTC probability of that
token over its frames, a word's the mean of its tokens', an utterance's the mean of its tokens'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torchaudio.functional as AF
from torch import Tensor

from asr.text.tokenizer import BLANK_ID

WORD_START = "\u2581"  # SentencePiece's word-boundary marker
BYTE_BPE_SPACE = "\u0120"  # "Ġ": a leading space in byte-level BPE (Whisper's tokenizer)


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float  # mean CTC posterior of its tokens over their frames, in [0, 1]

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TokenSpan:
    token: int
    start: int  # first encoder frame
    end: int  # one past the last encoder frame
    confidence: float


@dataclass(frozen=True)
class FrameClock:
    """Where encoder frames sit in time: frame t is centred on ``offset + t * stride`` seconds."""

    stride: float  # seconds between encoder frames (hop * subsampling)
    offset: float  # centre of frame 0: half of what one encoder frame sees

    @classmethod
    def of(cls, model) -> FrameClock:
        """The clock of an :class:`asr.model.ASRModel` (hop, window and subsampling)."""
        frontend, subsampling = model.frontend, model.encoder.subsampling
        rate = getattr(frontend, "sample_rate", model.config.features.sample_rate)
        hop = getattr(frontend, "hop", round(model.config.features.hop_ms * rate / 1000))
        n_fft = getattr(frontend, "n_fft", 2 * hop)
        # frames in per frame out, from the layer's own length formula (convolution strides)
        factor = max(1, round(1000 / max(1, int(subsampling.output_lengths(torch.tensor([1000]))[0]))))
        seen = (getattr(subsampling, "min_input_frames", factor) - 1) * hop + n_fft  # samples
        return cls(factor * hop / rate, seen / 2 / rate)

    def span_seconds(self, start: int, end: int) -> tuple[float, float]:
        """Frames [start, end) -> (start, end) seconds, each frame owning +-stride/2 around its centre."""
        first = self.offset + start * self.stride - self.stride / 2
        last = self.offset + (end - 1) * self.stride + self.stride / 2
        return max(0.0, first), last


def align_tokens(log_probs: Tensor, tokens: list[int], blank: int = BLANK_ID) -> list[TokenSpan]:
    """Force ``tokens`` through CTC frame log-probs (T, V) of one utterance's valid frames.

    Returns one span per token, in order. Tokens that cannot fit (more tokens, plus the blanks
    that repeats need, than frames) get no alignment: the result is then empty.
    """
    if not tokens or log_probs.shape[0] == 0:
        return []
    repeats = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)
    if len(tokens) + repeats > log_probs.shape[0]:
        return []
    frames = log_probs.float().cpu().unsqueeze(0)  # (1, T, V); forced_align runs on CPU here
    targets = torch.tensor([tokens], dtype=torch.int32)
    path, scores = AF.forced_align(frames, targets, blank=blank)
    spans = AF.merge_tokens(path[0], scores[0].exp(), blank=blank)
    return [TokenSpan(s.token, s.start, s.end, float(s.score)) for s in spans]


def words_from_spans(
    spans: list[TokenSpan],
    pieces: list[str],
    decode: Callable[[list[int]], str],
    clock: FrameClock,
    offset_seconds: float = 0.0,
) -> list[Word]:
    """Group token spans into words by the pieces' word-start marker (``decode`` turns a word's
    tokens into its text); times are shifted by ``offset_seconds``, where the segment starts."""
    groups: list[list[TokenSpan]] = []
    for span, piece in zip(spans, pieces, strict=True):
        if not groups or piece.startswith((WORD_START, BYTE_BPE_SPACE, " ")):
            groups.append([])
        groups[-1].append(span)
    words = []
    for group in groups:
        text = decode([span.token for span in group]).strip()
        if not text:  # a lone "\u2581" piece: a space, not a word
            continue
        start, end = clock.span_seconds(group[0].start, group[-1].end)
        confidence = sum(span.confidence for span in group) / len(group)
        words.append(Word(text, round(start + offset_seconds, 3), round(end + offset_seconds, 3), confidence))
    return words


def snap_to_speech(
    words: list[Word], voiced: Tensor, frame_seconds: float = 0.01, offset: float = 0.0, bridge: float = 0.0
) -> list[Word]:
    """Move word boundaries to the speech/silence edges of ``voiced`` (F,) frames (frame f spans
    offset + f * frame_seconds): a start moves back to where its run of speech begins (or forward
    to the first speech, if it sits in silence), an end forward to where the run ends (or back
    to the last speech). A word never crosses its neighbours' CTC times. With ``bridge`` > 0, a
    start also moves back over pauses shorter than ``bridge`` seconds to the speech before them
    (cross-attention starts come late: the speech before a short pause is the word's own)."""
    flags, gap = voiced.tolist(), round(bridge / frame_seconds)
    snapped = []
    for i, word in enumerate(words):
        lower = snapped[-1].end if snapped else 0.0
        upper = words[i + 1].start if i + 1 < len(words) else len(flags) * frame_seconds + offset
        first = _frame(word.start, frame_seconds, offset, len(flags))
        last = max(first, _frame(word.end, frame_seconds, offset, len(flags)) - 1)
        low = _frame(lower, frame_seconds, offset, len(flags))
        high = max(last + 1, _frame(upper, frame_seconds, offset, len(flags)))
        if any(flags[first : last + 1]):
            while first > low and flags[first - 1]:
                first -= 1
            while not flags[first]:
                first += 1
            first = _back_over_short_pauses(flags, first, low, gap)
            while last + 1 < high and flags[last + 1]:
                last += 1
            while not flags[last]:
                last -= 1
        start, end = offset + first * frame_seconds, offset + (last + 1) * frame_seconds
        snapped.append(Word(word.text, round(start, 3), round(end, 3), word.confidence))
    return snapped


def _back_over_short_pauses(flags: list[bool], first: int, low: int, gap: int) -> int:
    """From the speech onset ``first``, back over pauses of fewer than ``gap`` frames and the
    speech before each, never before frame ``low``."""
    while True:
        k = first
        while k > low and not flags[k - 1]:
            k -= 1
        if k == first or k <= low or first - k >= gap:
            return first
        while k > low and flags[k - 1]:
            k -= 1
        first = k


def cut_at_pauses(
    words: list[Word], voiced: Tensor, frame_seconds: float = 0.01, offset: float = 0.0, min_pause: float = 0.2
) -> list[Word]:
    """A word whose span holds a pause of at least ``min_pause`` seconds (in ``voiced``, framed
    as for :func:`snap_to_speech`) keeps only the part with the most speech. Cross-attention
    times need this: a phrase's last word tends to run on over the pause after it, into the
    first sounds of the next phrase, where snapping alone would carry it on to their end."""
    flags, gap = voiced.tolist(), max(1, round(min_pause / frame_seconds))
    cut = []
    for word in words:
        first = _frame(word.start, frame_seconds, offset, len(flags))
        last = _frame(word.end, frame_seconds, offset, len(flags))
        parts = _speech_parts(flags[first:last], gap)
        if len(parts) > 1:
            a, b = max(parts, key=lambda part: sum(flags[first + part[0] : first + part[1]]))
            start, end = offset + (first + a) * frame_seconds, offset + (first + b) * frame_seconds
            word = Word(word.text, round(start, 3), round(end, 3), word.confidence)
        cut.append(word)
    return cut


def _speech_parts(flags: list[bool], gap: int) -> list[tuple[int, int]]:
    """[first, last + 1) of the speech in ``flags``, split where ``gap`` or more frames are silent."""
    parts: list[list[int]] = []
    for f, speech in enumerate(flags):
        if speech:
            if parts and f - parts[-1][1] < gap:
                parts[-1][1] = f + 1
            else:
                parts.append([f, f + 1])
    return [(a, b) for a, b in parts]


def _frame(seconds: float, frame_seconds: float, offset: float, count: int) -> int:
    return min(max(0, round((seconds - offset) / frame_seconds)), count)
