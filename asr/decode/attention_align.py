"""Word times and confidences from the decoder's cross-attention, for models without a CTC head.

As openai-whisper's ``find_alignment`` (whisper/timing.py): the decoder reads the chosen
hypothesis once more, teacher-forced (<sos>, its tokens), and returns its cross-attention
weights. The rows of the alignment heads (``decoder.alignment_heads`` in the config: openai-
whisper's per-model table for imported Whisper models, :mod:`asr.whisper.alignment_heads`;
every head of the decoder's upper half otherwise) are cut to the audio's own encoder frames and
renormalised, standardised over the tokens, median-filtered over time (width 7) and averaged
over the heads. Dynamic time warping then finds the monotonic path through this token x frame
matrix that collects the most attention; the first frame the path gives each row is where that
row's token starts, and the next row's first frame where it ends. Row k is the position that
predicts token k (row 0 is <sos>); the last row, which predicts <eos>, ends the last token.

Tokens are grouped into words as Whisper does: a token starting with a space (byte-level BPE
"Ġ", SentencePiece "\u2581") or made of punctuation starts a word; opening punctuation then joins
the word after it and closing punctuation the word before (``merge_punctuations``), each word
keeping its own times. A word's confidence is the mean probability the same pass gives its
tokens.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from asr.config import DecoderConfig
from asr.decode.align import BYTE_BPE_SPACE, WORD_START, FrameClock, Word
from asr.model import ASRModel, with_prompt
from asr.text.tokenizer import Tokenizer
from asr.text.special import SOS_EOS_ID

MEDIAN_WIDTH = 7  # frames (openai-whisper's medfilt_width)
PREPENDED = "\"'“¿([{-"  # openai-whisper's prepend_punctuations
APPENDED = "\"'.。,，!！?？:：”)]}、"  # openai-whisper's append_punctuations


@dataclass(frozen=True)
class TokenTimes:
    """What one teacher-forced pass gives a hypothesis of N tokens."""

    starts: list[int]  # N + 1 frames: token k spans [starts[k], starts[k + 1])
    probabilities: list[float]  # N: each token's probability given the ones before it


def alignment_heads(decoder_config: DecoderConfig) -> list[tuple[int, int]]:
    """The configured (layer, head) pairs, or every head of the upper half of the layers."""
    layers, heads = decoder_config.layers, decoder_config.heads
    chosen = list(decoder_config.alignment_heads) or [(l, h) for l in range(layers // 2, layers) for h in range(heads)]
    bad = [(l, h) for l, h in chosen if not (0 <= l < layers and 0 <= h < heads)]
    if bad:
        raise ValueError(f"model.decoder.alignment_heads: {bad[0]} is not a (layer, head) of {layers} layers x {heads} heads")
    return chosen


def token_times(
    model: ASRModel, memory: Tensor, memory_length: int, frames: int, tokens: list[int], prompt: tuple[int, ...] | None = None
) -> TokenTimes:
    """Teacher-force ``tokens`` over one utterance's encoder output ``memory`` (T, D), of which
    ``memory_length`` frames are attended and the first ``frames`` hold the audio (Whisper
    attends to its 30 s window's padding too; the times are found in the audio only)."""
    decoder = model.decoder
    prompt = model.config.model.decoder.prompt if prompt is None else prompt
    if decoder.max_positions and max(len(prompt) - 1, 0) + len(tokens) + 1 > decoder.max_positions:
        raise ValueError(f"{len(tokens)} tokens are more than the decoder's {decoder.max_positions} positions hold")
    inputs = torch.tensor([[SOS_EOS_ID, *tokens]], device=memory.device)  # (1, N+1)
    prompted, prefix = with_prompt(inputs, prompt)
    lengths = memory.new_tensor([memory_length], dtype=torch.long)
    logits, weights = decoder(prompted, memory[None], lengths, prefix=prefix, need_weights=True)
    chosen = torch.stack([weights[layer][0, head] for layer, head in alignment_heads(model.config.model.decoder)])
    matrix = attention_matrix(chosen.float(), frames)  # (N+1, frames)
    probs = logits[0, :-1].float().softmax(dim=-1).gather(1, inputs[0, 1:, None])[:, 0]
    return TokenTimes(first_frames(matrix), probs.tolist())


def attention_matrix(weights: Tensor, frames: int, width: int = MEDIAN_WIDTH) -> Tensor:
    """(K heads, U tokens, T frames) attention weights -> (U, frames): cut to the audio's
    frames, renormalised, standardised over the tokens, median-filtered, averaged over heads."""
    weights = weights[:, :, :frames]
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = (weights - mean) / std.clamp_min(1e-12)
    return median_filter(weights, width).mean(dim=0)


def first_frames(matrix: Tensor) -> list[int]:
    """(U, T) attention matrix -> the first frame that the best DTW path gives each row."""
    rows, cols = dtw(-matrix.double().cpu().numpy())
    return [int(frame) for frame in cols[np.diff(rows, prepend=-1) > 0]]


def median_filter(x: Tensor, width: int) -> Tensor:
    """Median over a sliding window of odd ``width`` along the last axis, the edges reflected
    (as openai-whisper's ``median_filter``)."""
    pad = width // 2
    if x.shape[-1] <= pad:  # too short to reflect: nothing to smooth
        return x
    padded = F.pad(x.reshape(-1, 1, x.shape[-1]), (pad, pad), mode="reflect")
    return padded.unfold(-1, width, 1).median(dim=-1).values.reshape(x.shape)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotonic path of least total ``cost`` (N, M) from (0, 0) to (N-1, M-1), moving one
    row, one column or both per step -> its (rows, cols), each as long as the path.

    The recurrence, ties and float32 sums of openai-whisper's ``dtw_cpu``; filled one
    anti-diagonal at a time (cells i + j = d depend on diagonals d-1 and d-2 only), so a
    numpy loop of N + M steps does it without numba.
    """
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    total[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), 2, dtype=np.int8)
    x = cost.astype(np.float64)  # float64 costs added to float32 sums, as openai-whisper does
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        step = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2)).astype(np.int8)
        total[i, j] = x[i - 1, j - 1] + np.choose(step, (c0, c1, c2))
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    trace[0, :], trace[:, 0] = 2, 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    rows, cols = np.array(path[::-1]).T
    return rows, cols


def word_groups(texts: list[str], pieces: list[str]) -> list[tuple[list[int], list[int]]]:
    """Token indices of each word: (all its tokens, those that time it), as openai-whisper's
    ``split_tokens_on_spaces`` and ``merge_punctuations`` (module docstring). ``texts`` are the
    tokens' decoded texts, ``pieces`` their vocabulary entries (which show a leading space)."""
    words: list[list[int]] = []
    for k, (text, piece) in enumerate(zip(texts, pieces, strict=True)):
        if not words or piece.startswith(_SPACES) or (text.strip() and text.strip() in string.punctuation):
            words.append([])
        words[-1].append(k)
    spelled = ["".join(_spelled(texts[k], pieces[k]) for k in word) for word in words]
    groups = [(list(word), list(word)) for word in words]
    for i in range(len(groups) - 2, -1, -1):  # opening punctuation joins the word after it
        if spelled[i].startswith(" ") and spelled[i].strip() in PREPENDED and spelled[i].strip():
            groups[i + 1] = (groups[i][0] + groups[i + 1][0], groups[i + 1][1])
            groups[i], spelled[i] = ([], []), ""
    before = None
    for i in (i for i, group in enumerate(groups) if group[0]):  # closing punctuation: the word before
        if before is not None and not spelled[before].endswith(" ") and spelled[i] in APPENDED and spelled[i]:
            groups[before] = (groups[before][0] + groups[i][0], groups[before][1])
            groups[i] = ([], [])
        else:
            before = i
    return [group for group in groups if group[0]]


_SPACES = (WORD_START, BYTE_BPE_SPACE, " ")


def _spelled(text: str, piece: str) -> str:
    """A token's text with its leading space, whatever the tokenizer marks it with."""
    return " " + text.lstrip() if piece.startswith(_SPACES) else text


def attention_words(
    times: TokenTimes,
    tokens: list[int],
    tokenizer: Tokenizer,
    clock: FrameClock,
    offset_seconds: float = 0.0,
) -> list[Word]:
    """Words with times (shifted by ``offset_seconds``, where the segment starts) and
    confidences from the :func:`token_times` of ``tokens``."""
    texts = [tokenizer.decode([t]) for t in tokens]
    words = []
    for members, timed in word_groups(texts, tokenizer.pieces(tokens)):
        text = tokenizer.decode([tokens[k] for k in members]).strip()
        if not text:  # a lone word-boundary piece: a space, not a word
            continue
        start, end = clock.span_seconds(times.starts[timed[0]], times.starts[timed[-1] + 1])
        confidence = sum(times.probabilities[k] for k in timed) / len(timed)
        words.append(Word(text, round(start + offset_seconds, 3), round(max(start, end) + offset_seconds, 3), confidence))
    return words
