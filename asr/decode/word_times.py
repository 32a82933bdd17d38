"""Word times of a decoded segment by either aligner: CTC forced alignment (:mod:`asr.decode.align`)
or the decoder's cross-attention (:mod:`asr.decode.attention_align`).

``ctc`` is the default where the model has a CTC head (its spans are sharper); models without
one (an imported Whisper model before fine-tuning) get ``cross-attention``.
"""

from __future__ import annotations

from torch import Tensor

from asr.decode.align import FrameClock, Word, align_tokens, cut_at_pauses, snap_to_speech, words_from_spans
from asr.decode.attention_align import attention_words, token_times
from asr.model import ASRModel
from asr.text.tokenizer import Tokenizer
from asr.vad import speech_frames

ALIGNERS = ("ctc", "cross-attention")
BRIDGE_SECONDS = 0.1  # cross-attention starts move back over pauses shorter than this


def default_aligner(model: ASRModel) -> str:
    return "ctc" if getattr(model, "ctc", None) is not None else "cross-attention"


def check_aligner(align: str | None, model: ASRModel) -> str:
    """``align`` (None: the model's default) checked against what the model has."""
    align = align or default_aligner(model)
    if align not in ALIGNERS:
        raise ValueError(f"--align {align!r} is not one of {', '.join(ALIGNERS)}")
    if align == "ctc" and getattr(model, "ctc", None) is None:
        raise ValueError("--align ctc: this model has no CTC head (model.ctc_head: false); use --align cross-attention")
    return align


def word_times(
    model: ASRModel, tokenizer: Tokenizer, align: str, memory: Tensor, length: int, wave: Tensor, tokens: list[int],
    offset_seconds: float = 0.0, prompt: tuple[int, ...] | None = None,
) -> list[Word]:
    """Words of ``tokens`` with times and confidences, from one segment's encoder output
    ``memory`` (T, D) of which ``length`` frames are valid, made from ``wave`` (S,); times are
    shifted by ``offset_seconds``, where the segment starts. Each boundary is then moved to an
    edge of speech in the wave's frame energy (:func:`fit_to_speech`). Empty when the tokens
    cannot be aligned (more tokens than CTC frames). ``prompt``: the decoding task's (Whisper's
    start tokens for this call's language; None: the model's own)."""
    if not tokens or length == 0:
        return []
    clock = FrameClock.of(model)
    if align == "ctc":
        spans = align_tokens(model.ctc_log_probs(memory[:length]), tokens)
        pieces = tokenizer.pieces(tokens) if spans else []
        words = words_from_spans(spans, pieces, tokenizer.decode, clock, offset_seconds)
    else:
        # Whisper's encoder sees a 30 s window: only the frames that hold the segment's audio count.
        per_frame = round(clock.stride * model.config.features.sample_rate)  # samples
        frames = min(length, -(-wave.numel() // per_frame))
        times = token_times(model, memory, length, max(1, frames), tokens, prompt)
        words = attention_words(times, tokens, tokenizer, clock, offset_seconds)
    return fit_to_speech(words, align, speech_frames(wave.cpu(), model.config.features.sample_rate), offset_seconds)


def fit_to_speech(words: list[Word], align: str, voiced: Tensor, offset_seconds: float) -> list[Word]:
    """Boundaries moved to the edges of ``voiced`` frames (asr.decode.align.snap_to_speech).
    Cross-attention words are first cut at the pauses inside them (``cut_at_pauses``), and their
    starts may move back over pauses under 0.1 s (``bridge``): its times lag the audio (on
    espeak-ng phrases a phrase's first word starts ~150 ms late, its last ends in the pause)."""
    if align == "cross-attention":
        words = cut_at_pauses(words, voiced, offset=offset_seconds)
        return snap_to_speech(words, voiced, offset=offset_seconds, bridge=BRIDGE_SECONDS)
    return snap_to_speech(words, voiced, offset=offset_seconds)
