"""The result type every search returns: per utterance, a list of hypotheses, best first."""

from __future__ import annotations

from dataclasses import dataclass

from asr.nn.masks import NEG_INF


@dataclass(frozen=True)
class Hypothesis:
    """One decoded token sequence and its scores (natural-log probabilities).

    ``score`` is what the search ranked by: the weighted sum of the partial scores, then the
    length normalisation or bonus of :class:`asr.decode.ranking.Ranker`. The partial scores are
    None where the search did not compute them (e.g. ``attention`` for CTC greedy search).
    """

    tokens: list[int]  # without <sos>/<eos>
    score: float
    attention: float | None = None  # sum of decoder log-probs of the tokens and <eos>
    ctc: float | None = None  # CTC log-prob of the tokens (prefix score at <eos>)

    @classmethod
    def from_parts(cls, tokens: list[int], score: float, parts: dict[str, float]) -> Hypothesis:
        """A beam search result; ``parts`` are its scorers' scores by name (see
        asr.decode.search: "decoder" and "ctc" fill ``attention`` and ``ctc``)."""
        return cls(tokens, score, attention=parts.get("decoder"), ctc=parts.get("ctc"))


def empty_hypothesis() -> Hypothesis:
    """What an utterance with no encoder frames (or no surviving hypothesis) decodes to."""
    return Hypothesis(tokens=[], score=NEG_INF)
