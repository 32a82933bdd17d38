"""Decoding options: one frozen dataclass, checked in one place (``__post_init__``).

:class:`DecodeOptions` is the one decode config: the search's options and the decode's output
options, with one set of defaults. `asr decode` and `asr transcribe` take their option defaults
from it, ``--set decode.KEY=VALUE`` (:func:`with_overrides`) changes any of its fields, and the
Python API (asr.api) accepts its fields by name; tests/decode/test_options.py checks that all
of them agree. Every search reads what it needs from it; a bad value fails when the options are
built, with a message naming the option, never halfway through a decode.

This module imports nothing heavy (no torch): the CLI reads its defaults when it starts.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Literal

Method = Literal["ctc_greedy", "attention_greedy", "attention_beam", "joint_beam", "attention_rescoring"]
METHODS: tuple[str, ...] = (
    "ctc_greedy",  # best CTC path, repeats collapsed, blanks dropped
    "attention_greedy",  # decoder argmax, one token at a time
    "attention_beam",  # decoder beam search
    "joint_beam",  # beam search on (1-w)*decoder + w*CTC prefix score (Watanabe et al., 2017)
    "attention_rescoring",  # CTC prefix beam n-best, rescored by the decoder (wenet)
)


# Upper bounds: far above useful values (beams beyond ~60 stop helping), low enough that a typo
# cannot ask for memory no machine has; decoding also checks its memory estimate (decode.budget).
MAX_BEAM = 200
MAX_BATCH_SIZE = 1024
MAX_LENGTH_RATIO = 10.0
PRECISIONS = ("fp32", "bf16", "int8")
MAX_TEMPERATURE = 10.0
MAX_NGRAM = 100


def default_method(has_ctc_head: bool) -> Method:
    """The method used when none is asked for: joint_beam, or attention_beam for a model without
    a CTC head (imported Whisper models)."""
    return "joint_beam" if has_ctc_head else "attention_beam"


@dataclass(frozen=True)
class DecodeOptions:
    """How to turn encoder output into tokens.

    Ranking of finished hypotheses (:mod:`asr.decode.ranking`) is either ``score / length**alpha``
    (``length_norm=True``, Wu et al., 2016 without the +5 offset) or ``score + length_bonus * length``;
    length counts the tokens plus <eos>. The two are exclusive: pick one. With ``length_norm``
    the "cannot be beaten" end rule is loose, so a beam search usually ends an utterance only
    when ``beam`` hypotheses have finished (or at the length limit).
    """

    method: Method | None = None  # None: default_method() of the model (joint_beam, or attention_beam without CTC)
    beam: int = 10  # hypotheses kept per utterance (beam searches) / CTC n-best size (rescoring)
    ctc_weight: float = 0.3  # w in (1-w)*attention + w*CTC, for joint_beam and attention_rescoring
    length_norm: bool = False  # rank by score / length**length_alpha
    length_alpha: float = 1.0
    length_bonus: float = 0.0  # rank by score + length_bonus * length
    max_length_ratio: float = 1.0  # at most max(1, floor(ratio * encoder frames)) tokens
    pre_beam_ratio: float = 1.5  # joint_beam: CTC scores the top ceil(ratio*beam) decoder tokens
    batch_size: int = 8  # utterances decoded together
    lm_weight: float = 0.0  # beam searches with an LM: + lm_weight * log p_lm (shallow fusion)
    precision: Literal["fp32", "bf16", "int8"] = "fp32"  # bf16: the encoder under autocast; int8: every linear layer (CPU)
    # What a decode feeds and writes.
    language: str | None = None  # multilingual Whisper models: the prompt's language (None: the experiment's)
    nbest: int = 1  # hypotheses kept per utterance/segment in the output (nbest.jsonl, n-best lists)
    lm: str | None = None  # `asr decode`: an `asr lm train` folder fused into beam search (with lm_weight)
    normalizer: str | None = None  # `asr decode`: text normalisation of the WER report (None: the tokenizer's)
    # Whisper's safeguards (asr.decode.fallback), openai-whisper transcribe's defaults; they apply to
    # attention_greedy / attention_beam of models with a Whisper prompt. None switches a threshold off.
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # fallback; (0.0,): none
    best_of: int = 5  # samples per utterance at a temperature > 0
    compression_ratio_threshold: float | None = 2.4  # fall back above this gzip ratio of the text
    logprob_threshold: float | None = -1.0  # fall back below this average log-prob per token
    no_speech_threshold: float | None = 0.6  # silence above this <|nospeech|> probability (and low log-prob)
    no_repeat_ngram: int = 0  # > 0: no n-gram of this many tokens twice in a hypothesis (any model)
    seed: int = 0  # of the sampling at temperatures > 0
    # When every temperature fails: "best", the result of highest average log-prob among those under
    # the compression-ratio threshold (faster-whisper); "last", the last temperature's (openai-whisper).
    fallback_pick: Literal["best", "last"] = "best"

    def __post_init__(self) -> None:
        problems = []
        if self.method is not None and self.method not in METHODS:
            problems.append(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if not _positive_int(self.beam, MAX_BEAM):
            problems.append(f"beam must be an integer from 1 to {MAX_BEAM}, got {self.beam!r}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            problems.append(f"ctc_weight must be in [0, 1], got {self.ctc_weight!r}")
        if not math.isfinite(self.length_bonus):
            problems.append(f"length_bonus must be a finite number, got {self.length_bonus!r}")
        if not 0.0 <= self.length_alpha < math.inf:
            problems.append(f"length_alpha must be >= 0, got {self.length_alpha!r}")
        if self.length_norm and self.length_bonus != 0.0:
            problems.append(
                "length_norm and length_bonus are exclusive: set length_bonus=0 or length_norm=False"
            )
        if not 0.0 < self.max_length_ratio <= MAX_LENGTH_RATIO:
            problems.append(f"max_length_ratio must be > 0 and <= {MAX_LENGTH_RATIO}, got {self.max_length_ratio!r}")
        if not 0.0 <= self.lm_weight <= 10.0:
            problems.append(f"lm_weight must be >= 0 and <= 10, got {self.lm_weight!r}")
        if not 1.0 <= self.pre_beam_ratio <= 100.0:
            problems.append(f"pre_beam_ratio must be >= 1 and <= 100, got {self.pre_beam_ratio!r}")
        if not _positive_int(self.batch_size, MAX_BATCH_SIZE):
            problems.append(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, got {self.batch_size!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not _positive_int(self.nbest, MAX_BEAM):
            problems.append(f"nbest must be an integer from 1 to {MAX_BEAM}, got {self.nbest!r}")
        if self.lm is not None and self.lm_weight == 0.0:
            problems.append("lm needs an lm_weight above 0 (--lm-weight, e.g. 0.3)")
        problems += _safeguard_problems(self)
        if problems:
            raise ValueError("invalid decode options: " + "; ".join(problems))


    def for_model(self, has_ctc_head: bool) -> DecodeOptions:
        """These options with the method decided: the one asked for, else the model's default."""
        if self.method is not None:
            return self
        return dataclasses.replace(self, method=default_method(has_ctc_head))


def with_overrides(options: DecodeOptions, overrides: list[str]) -> DecodeOptions:
    """``options`` with ``decode.KEY=VALUE`` overrides (`--set`; values are YAML scalars) applied.
    A key that is not a field, or a value of the wrong type, is a ConfigError naming it."""
    from asr.config import ConfigError, apply_overrides, coerce_value

    values = apply_overrides({}, overrides)
    if set(values) - {"decode"} or not all(isinstance(v, dict) for v in values.values()):
        raise ConfigError(f"--set {overrides[0]!r}: decoding takes decode.KEY=VALUE overrides only (e.g. decode.beam=5)")
    hints = typing.get_type_hints(DecodeOptions)
    changes = values.get("decode", {})
    unknown = sorted(set(changes) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config key decode.{unknown[0]}; valid keys here: {', '.join(sorted(hints))}")
    coerced = {key: coerce_value(value, hints[key], f"decode.{key}") for key, value in changes.items()}
    return dataclasses.replace(options, **coerced)


def _safeguard_problems(options: DecodeOptions) -> list[str]:
    problems = []
    temps = options.temperatures
    if not temps or not all(isinstance(t, (int, float)) and 0.0 <= t <= MAX_TEMPERATURE for t in temps):
        problems.append(f"temperatures must be one or more numbers in [0, {MAX_TEMPERATURE:g}], got {temps!r}")
    if not _positive_int(options.best_of, MAX_BEAM):
        problems.append(f"best_of must be an integer from 1 to {MAX_BEAM}, got {options.best_of!r}")
    ratio, logprob, no_speech = options.compression_ratio_threshold, options.logprob_threshold, options.no_speech_threshold
    if ratio is not None and not 0.0 < ratio < math.inf:
        problems.append(f"compression_ratio_threshold must be > 0 (or None: off), got {ratio!r}")
    if logprob is not None and not -math.inf < logprob <= 0.0:
        problems.append(f"logprob_threshold must be <= 0 (or None: off), got {logprob!r}")
    if no_speech is not None and not 0.0 <= no_speech <= 1.0:
        problems.append(f"no_speech_threshold must be in [0, 1] (or None: off), got {no_speech!r}")
    if options.fallback_pick not in ("best", "last"):
        problems.append(f"fallback_pick must be best or last, got {options.fallback_pick!r}")
    if not (isinstance(options.no_repeat_ngram, int) and 0 <= options.no_repeat_ngram <= MAX_NGRAM):
        problems.append(f"no_repeat_ngram must be an integer from 0 (off) to {MAX_NGRAM}, got {options.no_repeat_ngram!r}")
    return problems


def _positive_int(value: object, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit
