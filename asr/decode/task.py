"""A decoding task: everything one decode call decides, assembled per call (as openai-whisper's
``DecodingTask``), from the model, its tokenizer and the :class:`DecodeOptions`:

* the prompt: the experiment's (Whisper's <|startoftranscript|> ... <|notimestamps|>, chosen at
  import), or that of the call's ``language`` (asr.text.language);
* the logit filters: suppressed tokens and the forced end of the model's config
  (asr.decode.filters);
* the weighted scorers of a beam search: the decoder, CTC prefix scores, an LM;
* the ranker (asr.decode.ranking) and the end rules (asr.decode.end_rules), which the searches
  build from the options;
* the method: CTC greedy, attention greedy, beam search, joint CTC/attention beam search or
  attention rescoring.

The model is only read: nothing of it changes per call, so one model (one Recognizer) serves
threads that decode with different languages and methods at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from asr.decode.beam import Weighted, beam_search
from asr.decode.ctc import ctc_best_path_scores, ctc_greedy
from asr.decode.ctc_prefix import CTCPrefixScorer
from asr.decode.end_rules import max_token_lengths
from asr.decode.filters import LogitFilter, model_filters
from asr.decode.greedy import attention_greedy
from asr.decode.heap import keep_freed_memory
from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.rescore import attention_rescoring
from asr.decode.scorers import DecoderScorer
from asr.model import ASRModel
from asr.precision import autocast, resolve_precision
from asr.text.language import language_prompt
from asr.text.tokenizer import Tokenizer

LM = torch.nn.Module  # asr.lm.model.TransformerLM (not imported here: decoding without one stays light)


@dataclass(frozen=True)
class DecodingTask:
    """One decode's model, options (method decided), prompt, filters and LM."""

    model: ASRModel
    options: DecodeOptions
    prompt: tuple[int, ...]
    filters: tuple[LogitFilter, ...]
    lm: LM | None = None

    @classmethod
    def build(
        cls, model: ASRModel, options: DecodeOptions, tokenizer: Tokenizer | None = None, lm: LM | None = None
    ) -> DecodingTask:
        """The task of ``options`` for ``model``; a ``language`` needs the model's ``tokenizer``
        (a language the model cannot take is a LanguageError here, before any decoding)."""
        options = options.for_model(model.ctc is not None)
        decoder_config = model.config.model.decoder
        prompt = language_prompt(tokenizer, tuple(decoder_config.prompt), options.language)
        return cls(model, options, prompt, model_filters(decoder_config, len(prompt)), lm)

    @torch.inference_mode()
    def decode(self, waves: Tensor, wave_lengths: Tensor) -> list[list[Hypothesis]]:
        """waves (B, S) zero-padded, wave_lengths (B,) samples -> per utterance, hypotheses best
        first. The model should be in eval mode (dropout and SpecAugment off)."""
        keep_freed_memory()  # the encoder's large activations are reused by the next batch (asr.decode.heap)
        return self.search(*self.encode(waves, wave_lengths))

    @torch.inference_mode()
    def encode(self, waves: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waves (B, S), wave_lengths (B,) -> encoder output (B, T, D) in fp32, lengths (B,).

        With ``precision="bf16"`` the encoder runs under bf16 autocast (where the device computes
        bf16 natively: elsewhere fp32, with a warning); its output is cast back, so the search's
        scores are fp32 either way."""
        precision = self.options.precision
        used = resolve_precision(precision, waves.device, key="precision")
        if used.reason:
            warnings.warn(f"precision={precision} runs as {used.used}: {used.reason}", stacklevel=3)
        with autocast(waves.device, used.used):
            encoded, enc_lengths = self.model.encode(waves, wave_lengths)
        return encoded.float(), enc_lengths

    @torch.inference_mode()
    def search(self, encoded: Tensor, enc_lengths: Tensor) -> list[list[Hypothesis]]:
        """encoded (B, T, D), enc_lengths (B,) -> per utterance, hypotheses best first.

        An utterance too short to leave any encoder frame decodes to an empty hypothesis."""
        results: list[list[Hypothesis]] = [[empty_hypothesis()] for _ in range(encoded.shape[0])]
        valid = (enc_lengths > 0).nonzero().squeeze(1)
        if valid.numel() == 0:
            return results
        lengths = enc_lengths.index_select(0, valid)
        memory = encoded.index_select(0, valid)[:, : int(lengths.max())]  # (B', T', D)
        keep_freed_memory()
        for index, hyps in zip(valid.tolist(), self._search(memory, lengths)):
            results[index] = hyps
        return results

    def _search(self, memory: Tensor, lengths: Tensor) -> list[list[Hypothesis]]:
        model, options, method = self.model, self.options, self.options.method
        if method == "ctc_greedy":
            log_probs = model.ctc_log_probs(memory)  # (B, T, V)
            scores = ctc_best_path_scores(log_probs, lengths).tolist()
            return [[Hypothesis(t, s)] for t, s in zip(ctc_greedy(log_probs, lengths), scores)]
        if method == "attention_greedy":
            return attention_greedy(self.decoder_scorer(lengths), memory, lengths, options)
        if method in ("attention_beam", "joint_beam"):
            return beam_search(self.scorers(lengths), memory, lengths, options)
        if method == "attention_rescoring":
            log_probs = model.ctc_log_probs(memory)
            return attention_rescoring(model.decoder, memory, lengths, log_probs, options, self.prompt)
        raise ValueError(f"unknown decoding method {method!r}")  # DecodeOptions checks it first

    def decoder_scorer(self, lengths: Tensor) -> DecoderScorer:
        """The decoder as a scorer, with this task's prompt and filters. Its cache is made to
        hold every step the length limit allows (encoder outputs of ``lengths`` (N,)), so it
        never grows."""
        capacity = int(max_token_lengths(lengths, self.options.max_length_ratio).max()) + 1
        return DecoderScorer(self.model.decoder, capacity=capacity, prompt=self.prompt, filters=self.filters)

    def scorers(self, lengths: Tensor) -> Weighted:
        """The weighted scorers of a beam search over encoder outputs of ``lengths`` (N,): the
        decoder, and for joint_beam CTC prefix scores, weighted (1 - w) and w (Watanabe et al.,
        2017); with an LM and options.lm_weight > 0, the LM, weighted lm_weight (shallow
        fusion, asr.lm.scorer)."""
        options = self.options
        decoder = self.decoder_scorer(lengths)
        scorers: dict = {"decoder": (decoder, 1.0)}
        if options.method == "joint_beam" and options.ctc_weight > 0.0:
            ctc = CTCPrefixScorer(self.model.ctc_log_probs)
            scorers = {"decoder": (decoder, 1.0 - options.ctc_weight), "ctc": (ctc, options.ctc_weight)}
        if self.lm is not None and options.lm_weight > 0.0:
            from asr.lm.scorer import LMScorer

            scorers["lm"] = (LMScorer(self.lm), options.lm_weight)
        return scorers
