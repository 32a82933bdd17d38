"""Batched beam search over the attention decoder, optionally joint with CTC prefix scores.

Several utterances and all their hypotheses advance together as one tensor batch: each utterance
owns G = beam fixed slots (rows n*G .. n*G+G-1), so one decoder call per step serves every
hypothesis, and the scorers' states are reordered by row indices. Per step:

1. the decoder scores every next token of every hypothesis (a full scorer);
2. <eos> is scored for every hypothesis; other tokens only for the decoder's K best per
   hypothesis (K = G, or ceil(pre_beam_ratio * G) when CTC scores them: partial scoring);
3. score = (1 - w) * decoder log-prob + w * CTC prefix score (Watanabe et al., 2017), w the
   ctc_weight (0 for attention-only search);
4. each utterance keeps its G best non-<eos> extensions; an <eos> extension that ranks among
   them is finished, and goes to the utterance's finished list, ranked by
   :class:`asr.decode.ranking.Ranker`;
5. an utterance leaves the batch by the rules of :mod:`asr.decode.end_rules`.

Dead slots (the G-1 empty slots of the first step, or hypotheses nothing could extend) hold -inf
and are never finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from asr.decode.ctc_prefix import CTCPrefixScorer
from asr.decode.end_rules import max_token_lengths, utterances_done
from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import TokenScorer, combine
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

NEG_INF = float("-inf")


@dataclass
class Beams:
    """The alive hypotheses of the utterances still decoding: G rows per utterance."""

    utterances: Tensor  # (n,) index of each utterance in the original batch
    tokens: Tensor  # (n*G, L) tokens so far, without <sos>
    attention: Tensor  # (n*G,) decoder log-prob of the tokens
    score: Tensor  # (n*G,) joint score of the tokens; -inf marks a dead slot

    @classmethod
    def start(cls, utterances: int, group: int, device: torch.device) -> Beams:
        """One empty hypothesis per utterance, in slot 0; the other slots dead."""
        score = torch.full((utterances, group), NEG_INF, device=device)
        score[:, 0] = 0.0
        tokens = torch.zeros(utterances * group, 0, dtype=torch.long, device=device)
        arange = torch.arange(utterances, device=device)
        return cls(arange, tokens, score.view(-1).clone(), score.view(-1))

    @property
    def last(self) -> Tensor:
        """(n*G,) each hypothesis's latest token, <sos> before the first."""
        if self.tokens.shape[1] == 0:
            return torch.full_like(self.score, SOS_EOS_ID, dtype=torch.long)
        return self.tokens[:, -1]

    def grow(self, rows: Tensor, new_tokens: Tensor, attention: Tensor, score: Tensor) -> Beams:
        """Hypotheses rows (n*G,) extended by new_tokens (n*G,), with their new scores."""
        tokens = torch.cat([self.tokens[rows], new_tokens[:, None]], dim=1)
        return Beams(self.utterances, tokens, attention, score)

    def keep(self, keep: Tensor, group: int) -> Beams:
        """Only the utterances ``keep`` (n',) (indices into the current n)."""
        rows = _utterance_rows(keep, group)
        return Beams(self.utterances[keep], self.tokens[rows], self.attention[rows], self.score[rows])


def beam_search(
    scorer: TokenScorer,
    memory: Tensor,
    memory_lengths: Tensor,
    options: DecodeOptions,
    ctc_log_probs: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Beam search for N utterances at once.

    memory (N, T, D) encoder output; memory_lengths (N,) frames, each >= 1; ctc_log_probs
    (N, T, V) for joint CTC/attention search (weight ``options.ctc_weight``), or None for
    attention-only search. Returns, per utterance, up to ``options.beam`` finished hypotheses,
    best first (one empty hypothesis scored -inf if none finished).
    """
    n, group = memory.shape[0], options.beam
    weight = options.ctc_weight if ctc_log_probs is not None else 0.0
    ctc = CTCPrefixScorer(BLANK_ID, SOS_EOS_ID) if weight > 0.0 else None
    ranker = Ranker.from_options(options)
    limits = max_token_lengths(memory_lengths, options.max_length_ratio)  # (N,)

    dec_state = scorer.init(memory, memory_lengths, group)
    ctc_state = ctc.init(ctc_log_probs, memory_lengths, group) if ctc is not None else None
    beams = Beams.start(n, group, memory.device)
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]

    for step in range(int(limits.max()) + 1):
        log_probs, dec_state = scorer.score(dec_state, beams.last)  # (H, V), H = n' * G
        alive = torch.isfinite(beams.score)  # (H,)

        # <eos> for every hypothesis.
        eos_attention = beams.attention + log_probs[:, SOS_EOS_ID]
        eos_ctc = ctc.score_eos(ctc_state) if ctc is not None else None
        eos_score = combine(eos_attention, eos_ctc, weight).masked_fill(~alive, NEG_INF)  # (H,)

        # Other tokens: the decoder's K best per hypothesis, then CTC on those only.
        k = _candidates_per_hypothesis(options, log_probs.shape[1], ctc is not None)
        without_eos = log_probs.index_fill(1, torch.tensor([SOS_EOS_ID], device=log_probs.device), NEG_INF)
        cand_log_probs, candidates = without_eos.topk(k, dim=-1)  # (H, K) each
        cand_attention = beams.attention[:, None] + cand_log_probs
        ctc_scored = ctc.score(ctc_state, candidates) if ctc is not None else None
        cand_score = combine(cand_attention, ctc_scored.scores if ctc_scored else None, weight)
        at_limit = (step >= limits[beams.utterances]).repeat_interleave(group)  # (H,)
        cand_score = cand_score.masked_fill(~alive[:, None] | at_limit[:, None], NEG_INF)

        top_score, rows, cols = _keep_best(cand_score, group)
        _finish(
            finished, beams, eos_score, eos_attention, eos_ctc, top_score[:, -1], group, ranker
        )

        # Grow the kept hypotheses and reorder the scorers' states to match.
        beams = beams.grow(rows, candidates[rows, cols], cand_attention[rows, cols], top_score.reshape(-1))
        dec_state = scorer.select(dec_state, rows)
        if ctc is not None:
            ctc_state = ctc.select(ctc_scored, rows, cols)

        done = _done(beams, finished, limits, group, ranker)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            beams = beams.keep(keep, group)
            dec_state = scorer.select_utterances(dec_state, keep)
            if ctc is not None:
                ctc_state = ctc.select_utterances(ctc_state, keep)

    return [_best_first(hyps, group) for hyps in finished]


def _candidates_per_hypothesis(options: DecodeOptions, vocab: int, partial: bool) -> int:
    """K: G suffice for attention only (the G best of an utterance are among its hypotheses' G
    best each); with CTC, the pre-beam is wider because CTC can reorder them. Never more than
    the tokens that can be chosen (not blank, not <eos>)."""
    k = max(options.beam, math.ceil(options.pre_beam_ratio * options.beam)) if partial else options.beam
    return max(1, min(k, vocab - 2))


def _keep_best(cand_score: Tensor, group: int) -> tuple[Tensor, Tensor, Tensor]:
    """The G best of each utterance's G*K candidates (H, K) -> their scores (n, G), parent rows
    (n*G,) and candidate columns (n*G,). A stable sort: ties go to the lower row, then column."""
    hyps, k = cand_score.shape
    utts = hyps // group
    top_score, flat = cand_score.view(utts, group * k).sort(dim=1, descending=True, stable=True)
    top_score, flat = top_score[:, :group], flat[:, :group]
    base = torch.arange(utts, device=cand_score.device)[:, None] * group
    return top_score, (base + flat // k).reshape(-1), (flat % k).reshape(-1)


def _finish(
    finished: list[list[Hypothesis]],
    beams: Beams,
    eos_score: Tensor,
    eos_attention: Tensor,
    eos_ctc: Tensor | None,
    threshold: Tensor,
    group: int,
    ranker: Ranker,
) -> None:
    """Move to ``finished`` the <eos> extensions (H,) that rank within the beam: at or above
    ``threshold`` (n,), the G-th best kept extension of their utterance (as whisper does)."""
    accepted = torch.isfinite(eos_score) & (eos_score >= threshold.repeat_interleave(group))
    for row in accepted.nonzero().squeeze(1).tolist():
        tokens = beams.tokens[row].tolist()
        finished[int(beams.utterances[row // group])].append(
            Hypothesis(
                tokens=tokens,
                score=ranker.rank(float(eos_score[row]), len(tokens) + 1),
                attention=float(eos_attention[row]),
                ctc=float(eos_ctc[row]) if eos_ctc is not None else None,
            )
        )


def _done(
    beams: Beams, finished: list[list[Hypothesis]], limits: Tensor, group: int, ranker: Ranker
) -> Tensor:
    """(n,) True for the utterances to stop (see asr.decode.end_rules.utterances_done)."""
    utterances = beams.utterances.tolist()
    best = [max((h.score for h in finished[u]), default=NEG_INF) for u in utterances]
    bound = ranker.best_possible(
        beams.score, beams.tokens.shape[1], limits[beams.utterances].repeat_interleave(group)
    )
    return utterances_done(
        torch.tensor(best, device=bound.device),
        bound.view(-1, group),
        torch.tensor([len(finished[u]) for u in utterances], device=bound.device),
        group,
    )


def _utterance_rows(utterances: Tensor, group: int) -> Tensor:
    """Rows (n'*G,) of the hypotheses of utterances (n',)."""
    return (utterances[:, None] * group + torch.arange(group, device=utterances.device)).reshape(-1)


def _best_first(hyps: list[Hypothesis], keep: int) -> list[Hypothesis]:
    if not hyps:
        return [empty_hypothesis()]
    return sorted(hyps, key=lambda h: -h.score)[:keep]  # stable: earlier finished wins ties
