"""The result type every search returns: per utterance, a list of hypotheses, best first; and
its one serialisation (scores.jsonl, nbest.jsonl and transcribe's n-best lists all use it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asr.nn.masks import NEG_INF

if TYPE_CHECKING:
    from asr.text.tokenizer import Tokenizer

# Record names of the scorers' scores: the decoder's is called "attention" in every output
# (as it was before scorers were named), the others by their scorer's name ("ctc", "lm").
RECORD_NAMES = {"decoder": "attention"}
ALWAYS_RECORDED = ("attention", "ctc")  # written (null when not computed) in every record


@dataclass(frozen=True)
class Hypothesis:
    """One decoded token sequence and its scores (natural-log probabilities).

    ``score`` is what the search ranked by: the weighted sum of the scorers' scores, then the
    length normalisation or bonus of :class:`asr.decode.ranking.Ranker`. ``scores`` holds each
    scorer's own score of the whole sequence with <eos>, by scorer name ("decoder", "ctc",
    "lm", ...); a scorer the search did not use is absent (e.g. "decoder" for CTC greedy search).
    With Whisper's safeguards (asr.decode.fallback), ``temperature`` is the temperature of the
    decode that gave it and ``no_speech`` the probability of <|nospeech|>; None otherwise.
    """

    tokens: list[int]  # without <sos>/<eos>
    score: float
    scores: Mapping[str, float] = field(default_factory=dict)
    temperature: float | None = None
    no_speech: float | None = None

    @property
    def attention(self) -> float | None:
        """The decoder's score: the sum of its log-probs of the tokens and <eos>."""
        return self.scores.get("decoder")

    @property
    def ctc(self) -> float | None:
        """The CTC log-prob of the tokens (prefix score at <eos>)."""
        return self.scores.get("ctc")

    def record(self, text: str) -> dict:
        """The hypothesis as JSON data: text, tokens, score and each scorer's score (null where
        not computed; JSON has no -inf, so an impossible score is null too)."""
        named = {RECORD_NAMES.get(name, name): value for name, value in self.scores.items()}
        parts = {name: None for name in ALWAYS_RECORDED} | named
        scores = {name: finite(value) for name, value in parts.items()}
        safeguards = {"temperature": self.temperature, "no_speech_prob": self.no_speech}
        extra = {k: v for k, v in safeguards.items() if v is not None}
        return {"text": text, "tokens": list(self.tokens), "score": finite(self.score), **scores, **extra}


def hypothesis_text(tokenizer: Tokenizer, tokens: list[int]) -> str:
    """The text of a token sequence on one line, single spaces (a lone word-boundary piece, as
    CTC greedy search can emit, would otherwise leave a double space)."""
    return " ".join(tokenizer.decode(tokens).split())


def finite(value: float | None) -> float | None:
    """JSON has no infinities: an impossible score (-inf) is written as null."""
    return value if value is not None and math.isfinite(value) else None


def empty_hypothesis() -> Hypothesis:
    """What an utterance with no encoder frames (or no surviving hypothesis) decodes to."""
    return Hypothesis(tokens=[], score=NEG_INF)
