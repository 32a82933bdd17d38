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
  attention rescoring;
* Whisper's safeguards (asr.decode.fallback): temperature fallback to sampling
  (asr.decode.sampling), and no-speech detection, for the attention searches of Whisper models.

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
from asr.decode.fallback import with_fallback
from asr.decode.filters import LogitFilter, model_filters
from asr.decode.greedy import attention_greedy
from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.rescore import attention_rescoring
from asr.decode.sampling import sample_search
from asr.decode.scorers import DecoderScorer
from asr.model import ASRModel
from asr.nn.int8 import int8_model
from asr.precision import autocast, resolve_precision
from asr.text.language import language_prompt, no_speech_token
from asr.text.tokenizer import Tokenizer

LM = torch.nn.Module  # asr.nn.lm.TransformerLM (not imported here: decoding without one stays light)
SAFEGUARDED = ("attention_greedy", "attention_beam")  # the methods openai-whisper's safeguards apply to


@dataclass(frozen=True)
class DecodingTask:
    """One decode's model, options (method decided), prompt, filters and LM, and the tokenizer
    (the safeguards read text and the no-speech token from it; None: without them)."""

    model: ASRModel
    options: DecodeOptions
    prompt: tuple[int, ...]
    filters: tuple[LogitFilter, ...]
    lm: LM | None = None
    tokenizer: Tokenizer | None = None

    @classmethod
    def build(
        cls, model: ASRModel, options: DecodeOptions, tokenizer: Tokenizer | None = None, lm: LM | None = None
    ) -> DecodingTask:
        """The task of ``options`` for ``model``; a ``language`` needs the model's ``tokenizer``
        (a language the model cannot take is a LanguageError here, before any decoding)."""
        options = options.for_model(model.ctc is not None)
        if options.precision == "int8":  # the same model with int8 linear layers, made once per model
            model = int8_model(model)
        decoder_config = model.config.model.decoder
        prompt = language_prompt(tokenizer, tuple(decoder_config.prompt), options.language)
        filters = model_filters(decoder_config, len(prompt), options.no_repeat_ngram)
        return cls(model, options, prompt, filters, lm, tokenizer)

    @property
    def safeguarded(self) -> bool:
        """Whether Whisper's safeguards apply: an attention search of a model with a prompt,
        decoded with its tokenizer (they read its text and its no-speech token). Without a
        tokenizer the task is the plain search (asr.decode.search.decode_batch): as in
        openai-whisper, where ``decode`` is the search and ``transcribe`` adds the fallback."""
        return bool(self.prompt) and self.options.method in SAFEGUARDED and self.tokenizer is not None

    @torch.inference_mode()
    def decode(self, waves: Tensor, wave_lengths: Tensor) -> list[list[Hypothesis]]:
        """waves (B, S) zero-padded, wave_lengths (B,) samples -> per utterance, hypotheses best
        first. The model should be in eval mode (dropout and SpecAugment off)."""
        return self.search(*self.encode(waves, wave_lengths))

    @torch.inference_mode()
    def encode(self, waves: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waves (B, S), wave_lengths (B,) -> encoder output (B, T, D) in fp32, lengths (B,).

        With ``precision="bf16"`` the encoder runs under bf16 autocast (where the device computes
        bf16 natively: elsewhere fp32, with a warning); its output is cast back, so the search's
        scores are fp32 either way."""
        precision = "fp32" if self.options.precision == "int8" else self.options.precision  # int8: in the weights
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
        for index, hyps in zip(valid.tolist(), self._search(memory, lengths)):
            results[index] = hyps
        return results

    def _search(self, memory: Tensor, lengths: Tensor) -> list[list[Hypothesis]]:
        if not self.safeguarded:
            return self._method(memory, lengths)
        first = self.decoder_scorer(lengths, no_speech_token(self.tokenizer))
        temperature = self.options.temperatures[0]
        found = self._at(memory, lengths, temperature, first)
        no_speech = first.no_speech_probs or [None] * memory.shape[0]
        return with_fallback(found, self._at, memory, lengths, self.options, self.tokenizer.decode, no_speech)  # type: ignore[union-attr]

    def _at(
        self, memory: Tensor, lengths: Tensor, temperature: float, scorer: DecoderScorer | None = None
    ) -> list[list[Hypothesis]]:
        """The method's search at temperature 0, else sampling (best of options.best_of)."""
        if temperature == 0.0:
            return self._method(memory, lengths, scorer)
        scorer = scorer or self.decoder_scorer(lengths)
        options = self.options
        return sample_search(scorer, memory, lengths, options, temperature, options.best_of, options.seed)

    def _method(self, memory: Tensor, lengths: Tensor, scorer: DecoderScorer | None = None) -> list[list[Hypothesis]]:
        model, options, method = self.model, self.options, self.options.method
        if method == "ctc_greedy":
            log_probs = model.ctc_log_probs(memory)  # (B, T, V)
            scores = ctc_best_path_scores(log_probs, lengths).tolist()
            return [[Hypothesis(t, s)] for t, s in zip(ctc_greedy(log_probs, lengths), scores)]
        if method == "attention_greedy":
            return attention_greedy(scorer or self.decoder_scorer(lengths), memory, lengths, options)
        if method in ("attention_beam", "joint_beam"):
            return beam_search(self.scorers(lengths, scorer), memory, lengths, options)
        if method == "attention_rescoring":
            log_probs = model.ctc_log_probs(memory)
            return attention_rescoring(model.decoder, memory, lengths, log_probs, options, self.prompt)
        raise ValueError(f"unknown decoding method {method!r}")  # DecodeOptions checks it first

    def decoder_scorer(self, lengths: Tensor, no_speech: int | None = None) -> DecoderScorer:
        """The decoder as a scorer, with this task's prompt and filters (and the ``no_speech``
        token whose probability it reads). Its cache is made to hold every step the length
        limit allows (encoder outputs of ``lengths`` (N,)), so it never grows."""
        capacity = int(max_token_lengths(lengths, self.options.max_length_ratio).max()) + 1
        decoder = self.model.decoder
        return DecoderScorer(decoder, capacity=capacity, prompt=self.prompt, filters=self.filters, no_speech=no_speech)

    def scorers(self, lengths: Tensor, decoder: DecoderScorer | None = None) -> Weighted:
        """The weighted scorers of a beam search over encoder outputs of ``lengths`` (N,): the
        decoder, and for joint_beam CTC prefix scores, weighted (1 - w) and w (Watanabe et al.,
        2017); with an LM and options.lm_weight > 0, the LM, weighted lm_weight (shallow
        fusion, asr.decode.lm)."""
        options = self.options
        decoder = decoder or self.decoder_scorer(lengths)
        scorers: dict = {"decoder": (decoder, 1.0)}
        if options.method == "joint_beam" and options.ctc_weight > 0.0:
            ctc = CTCPrefixScorer(self.model.ctc_log_probs)
            scorers = {"decoder": (decoder, 1.0 - options.ctc_weight), "ctc": (ctc, options.ctc_weight)}
        if self.lm is not None and options.lm_weight > 0.0:
            from asr.decode.lm import LMScorer

            scorers["lm"] = (LMScorer(self.lm), options.lm_weight)
        return scorers
