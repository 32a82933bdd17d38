"""One entry point for every search: waveforms -> encoder -> the method the options name."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from asr.decode.beam import Weighted, beam_search
from asr.decode.ctc_prefix import CTCPrefixScorer
from asr.decode.end_rules import max_token_lengths
from asr.decode.ctc import ctc_best_path_scores, ctc_greedy
from asr.decode.greedy import attention_greedy
from asr.decode.heap import keep_freed_memory
from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.rescore import attention_rescoring
from asr.decode.scorers import DecoderScorer
from asr.model import ASRModel
from asr.precision import autocast, resolve_precision

LM = torch.nn.Module  # asr.nn.lm.TransformerLM (not imported here: decoding without one stays light)


@torch.inference_mode()
def decode_batch(
    model: ASRModel, waves: Tensor, wave_lengths: Tensor, options: DecodeOptions, lm: LM | None = None
) -> list[list[Hypothesis]]:
    """waves (B, S) zero-padded, wave_lengths (B,) samples -> per utterance, hypotheses best first.

    The model should be in eval mode (dropout and SpecAugment off)."""
    keep_freed_memory()  # the encoder's large activations are reused by the next batch (asr.decode.heap)
    encoded, enc_lengths = encode(model, waves, wave_lengths, options.precision)
    return search_encoded(model, encoded, enc_lengths, options, lm)


@torch.inference_mode()
def encode(model: ASRModel, waves: Tensor, wave_lengths: Tensor, precision: str = "fp32") -> tuple[Tensor, Tensor]:
    """waves (B, S), wave_lengths (B,) -> encoder output (B, T, D) in fp32, lengths (B,).

    With ``precision="bf16"`` the encoder runs under bf16 autocast (where the device computes
    bf16 natively: elsewhere fp32, with a warning); its output is cast back, so the search's
    scores are fp32 either way."""
    used = resolve_precision(precision, waves.device, key="precision")
    if used.reason:
        warnings.warn(f"precision={precision} runs as {used.used}: {used.reason}", stacklevel=2)
    with autocast(waves.device, used.used):
        encoded, enc_lengths = model.encode(waves, wave_lengths)
    return encoded.float(), enc_lengths


@torch.inference_mode()
def search_encoded(
    model: ASRModel, encoded: Tensor, enc_lengths: Tensor, options: DecodeOptions, lm: LM | None = None
) -> list[list[Hypothesis]]:
    """encoded (B, T, D), enc_lengths (B,) -> per utterance, hypotheses best first.

    An utterance too short to leave any encoder frame decodes to an empty hypothesis.
    """
    results: list[list[Hypothesis]] = [[empty_hypothesis()] for _ in range(encoded.shape[0])]
    valid = (enc_lengths > 0).nonzero().squeeze(1)
    if valid.numel() == 0:
        return results
    lengths = enc_lengths.index_select(0, valid)
    memory = encoded.index_select(0, valid)[:, : int(lengths.max())]  # (B', T', D)
    keep_freed_memory()
    found = _search(model, memory, lengths, options, lm)
    for index, hyps in zip(valid.tolist(), found):
        results[index] = hyps
    return results


def _search(
    model: ASRModel, memory: Tensor, lengths: Tensor, options: DecodeOptions, lm: LM | None = None
) -> list[list[Hypothesis]]:
    method = options.method
    if method == "ctc_greedy":
        log_probs = model.ctc_log_probs(memory)  # (B, T, V)
        scores = ctc_best_path_scores(log_probs, lengths).tolist()
        return [[Hypothesis(t, s)] for t, s in zip(ctc_greedy(log_probs, lengths), scores)]
    if method == "attention_greedy":
        capacity = int(max_token_lengths(lengths, options.max_length_ratio).max()) + 1
        return attention_greedy(DecoderScorer(model.decoder, capacity=capacity), memory, lengths, options)
    if method in ("attention_beam", "joint_beam"):
        return beam_search(beam_scorers(model, options, lengths, lm), memory, lengths, options)
    if method == "attention_rescoring":
        log_probs = model.ctc_log_probs(memory)
        return attention_rescoring(model.decoder, memory, lengths, log_probs, options)
    raise ValueError(f"unknown decoding method {method!r}")  # DecodeOptions checks it first


def beam_scorers(model: ASRModel, options: DecodeOptions, lengths: Tensor, lm: LM | None = None) -> Weighted:
    """The weighted scorers of a beam search over encoder outputs of ``lengths`` (N,): the
    decoder, and for joint_beam CTC prefix scores, weighted (1 - w) and w (Watanabe et al.,
    2017); with ``lm`` and options.lm_weight > 0, the LM, weighted lm_weight (shallow fusion,
    asr.decode.lm). The decoder's cache is made to hold every step the length limit allows,
    so it never grows."""
    capacity = int(max_token_lengths(lengths, options.max_length_ratio).max()) + 1
    decoder = DecoderScorer(model.decoder, capacity=capacity)
    scorers: dict = {"decoder": (decoder, 1.0)}
    if options.method == "joint_beam" and options.ctc_weight > 0.0:
        ctc = CTCPrefixScorer(model.ctc_log_probs)
        scorers = {"decoder": (decoder, 1.0 - options.ctc_weight), "ctc": (ctc, options.ctc_weight)}
    if lm is not None and options.lm_weight > 0.0:
        from asr.decode.lm import LMScorer

        scorers["lm"] = (LMScorer(lm), options.lm_weight)
    return scorers
