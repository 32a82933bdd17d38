"""Whisper's decoding safeguards (openai-whisper's ``transcribe``, ``decode_with_fallback``):

* temperature fallback: a result that is too repetitive (gzip compression ratio of its text
  above ``compression_ratio_threshold``, 2.4) or too unlikely (average decoder log-prob per
  token, <eos> included, below ``logprob_threshold``, -1.0) is decoded again by sampling at the
  next of ``temperatures`` (0.2, 0.4, ... 1.0; best of ``best_of`` = 5 samples, asr.decode.sampling);
  if every one fails, the result of highest average log-prob among those not too repetitive
  stands (faster-whisper's choice; ``fallback_pick="last"``: the last temperature's, as
  openai-whisper, whose T = 1.0 samples of noisy audio are mostly wrong words);
* no speech: the probability of <|nospeech|> after <|startoftranscript|> (the first step's
  logits, before any suppression); above ``no_speech_threshold`` (0.6) with an average log-prob
  below ``logprob_threshold`` the utterance is silence: no fallback, and an empty result.

Batched: each round re-decodes only the utterances that failed, all of them in one batch.
Each result records the temperature that gave it and the no-speech probability.

They apply where openai-whisper applies them: to the attention searches (greedy and beam) of
models with a Whisper prompt (imported or fine-tuned Whisper), in `asr decode`, `asr
transcribe` and the API (the decoding task built with the tokenizer; decode_batch is the plain
search, as openai-whisper's ``decode``). Native models, trained with
label smoothing, score well-recognised speech below -1.0 per token, so the thresholds do not
transfer; their guard against loops is the repeated n-gram filter (``no_repeat_ngram``).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

from torch import Tensor

from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions

Search = Callable[[Tensor, Tensor, float], list[list[Hypothesis]]]  # (memory, lengths, temperature)


def compression_ratio(text: str) -> float:
    """len(text) / len(gzip-compressed text), in UTF-8 bytes (openai-whisper's measure): a
    looping transcript compresses well. 0 for empty text."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def average_log_prob(hyp: Hypothesis) -> float:
    """The decoder's log-prob per token, <eos> included (openai-whisper's ``avg_logprob``)."""
    score = hyp.attention
    return float("-inf") if score is None else score / (len(hyp.tokens) + 1)


def fails(hyp: Hypothesis, text: str | None, no_speech: float | None, options: DecodeOptions) -> bool:
    """Whether a result needs the next temperature: too repetitive or too unlikely, unless it
    is silence (then it is skipped instead, see :func:`is_silence`)."""
    if is_silence(hyp, no_speech, options):
        return False
    ratio = options.compression_ratio_threshold
    if ratio is not None and text is not None and compression_ratio(text) > ratio:
        return True
    return options.logprob_threshold is not None and average_log_prob(hyp) < options.logprob_threshold


def is_silence(hyp: Hypothesis, no_speech: float | None, options: DecodeOptions) -> bool:
    """openai-whisper's skip rule: no-speech probability above the threshold and an average
    log-prob below its threshold (or no such threshold)."""
    if options.no_speech_threshold is None or no_speech is None or no_speech <= options.no_speech_threshold:
        return False
    return options.logprob_threshold is None or average_log_prob(hyp) < options.logprob_threshold


def with_fallback(
    first: list[list[Hypothesis]], search: Search, memory: Tensor, lengths: Tensor, options: DecodeOptions,
    text: Callable[[list[int]], str] | None, no_speech: list[float | None],
) -> list[list[Hypothesis]]:  # fmt: skip
    """``first``, the results at ``options.temperatures[0]`` of memory (N, T, D) and lengths
    (N,), decoded again with ``search`` at each next temperature where the best result
    :func:`fails`: only those utterances, all of them in one batch; silence becomes an empty
    result. ``text`` turns tokens into text (None: no compression-ratio check); ``no_speech``
    (N,) the utterances' no-speech probabilities (None where unknown)."""
    temperatures = options.temperatures
    results = [_marked(h, temperatures[0], p) for h, p in zip(first, no_speech)]
    tried = [[hyps] for hyps in results]  # per utterance, its results at every temperature so far
    for temperature in temperatures[1:]:
        failed = [i for i, hyps in enumerate(results) if _fails(hyps[0], text, no_speech[i], options)]
        if not failed:
            break
        rows = memory.new_tensor(failed, dtype=lengths.dtype).long()
        again = search(memory.index_select(0, rows), lengths.index_select(0, rows), temperature)
        for i, hyps in zip(failed, again):
            results[i] = _marked(hyps, temperature, no_speech[i])
            tried[i].append(results[i])
    if options.fallback_pick == "best":
        results = [_best(t, text, options) if _fails(r[0], text, p, options) else r
                   for r, t, p in zip(results, tried, no_speech)]  # fmt: skip
    return [[_silenced(hyps[0], options)] if is_silence(hyps[0], no_speech[i], options) else hyps
            for i, hyps in enumerate(results)]  # fmt: skip


def _best(tried: list[list[Hypothesis]], text: Callable[[list[int]], str] | None, options: DecodeOptions) -> list[Hypothesis]:
    """Of one utterance's results that all failed, the one of highest average log-prob among
    those within the compression-ratio threshold (all of them if none is)."""
    ratio = options.compression_ratio_threshold
    fluent = [h for h in tried if ratio is None or text is None or compression_ratio(text(h[0].tokens)) <= ratio]
    return max(fluent or tried, key=lambda hyps: average_log_prob(hyps[0]))


def _fails(hyp: Hypothesis, text: Callable[[list[int]], str] | None, no_speech: float | None, options: DecodeOptions) -> bool:
    return fails(hyp, text(hyp.tokens) if text is not None else None, no_speech, options)


def _marked(hyps: list[Hypothesis], temperature: float, no_speech: float | None) -> list[Hypothesis]:
    return [dataclasses.replace(h, temperature=temperature, no_speech=no_speech) for h in hyps]


def _silenced(hyp: Hypothesis, options: DecodeOptions) -> Hypothesis:
    """An utterance judged silent: no tokens, its temperature and no-speech probability kept."""
    return dataclasses.replace(empty_hypothesis(), temperature=hyp.temperature, no_speech=hyp.no_speech)
