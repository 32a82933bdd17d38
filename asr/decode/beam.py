"""Batched beam search over weighted scorers (the decoder, CTC prefix scores, ...).

Several utterances and all their hypotheses advance together as one tensor batch: each utterance
owns G = beam fixed slots (rows n*G .. n*G+G-1), so one call per scorer and step serves every
hypothesis, and the scorers' states are reordered by row indices. Per step:

1. the full scorers (``partial`` False: the decoder) score every next token of every hypothesis;
2. their weighted sum picks K candidates per hypothesis (the pre-beam: K = G, or
   ceil(pre_beam_ratio * G) when a partial scorer such as CTC could reorder them), which the
   partial scorers then score ("partial scoring"); every scorer also scores <eos>;
3. score = sum of weight * scorer score, e.g. (1 - w) * decoder log-prob + w * CTC prefix score
   (Watanabe et al., 2017);
4. each utterance keeps its G best non-<eos> extensions; an <eos> extension that ranks among
   them is finished, and is kept among the utterance's G best finished ones (on the device),
   ranked by :class:`asr.decode.ranking.Ranker`;
5. an utterance leaves the batch by the rules of :mod:`asr.decode.end_rules`.

Nothing waits for the device inside a step except the check whether an utterance has ended.
Dead slots (the G-1 empty slots of the first step, or hypotheses nothing could extend) hold -inf
and are never finished.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from asr.decode.end_rules import max_token_lengths, utterances_done
from asr.decode.hypothesis import Hypothesis, empty_hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import Scorer, Scores, Selection, combine
from asr.nn.masks import NEG_INF, utterance_rows
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

Weighted = Mapping[str, tuple[Scorer, float]]  # name -> (scorer, weight)


@dataclass
class Beams:
    """The alive hypotheses of the utterances still decoding: G rows per utterance."""

    utterances: Tensor  # (n,) index of each utterance in the original batch
    tokens: Tensor  # (n*G, L_max) tokens so far (the first ``length`` columns), without <sos>
    score: Tensor  # (n*G,) joint score of the tokens; -inf marks a dead slot
    length: int  # tokens of every hypothesis (they grow in lockstep)

    @classmethod
    def start(cls, utterances: int, group: int, max_tokens: int, device: torch.device) -> Beams:
        """One empty hypothesis per utterance, in slot 0; the other slots dead."""
        score = torch.full((utterances, group), NEG_INF, device=device)
        score[:, 0] = 0.0
        tokens = torch.zeros(utterances * group, max_tokens, dtype=torch.long, device=device)
        return cls(torch.arange(utterances, device=device), tokens, score.view(-1), 0)

    def grow(self, rows: Tensor, new_tokens: Tensor, score: Tensor) -> Beams:
        """Hypotheses rows (n*G,) extended by new_tokens (n*G,), with their new scores."""
        tokens = self.tokens.index_select(0, rows)
        tokens[:, self.length] = new_tokens
        return Beams(self.utterances, tokens, score, self.length + 1)

    def keep(self, keep: Tensor, group: int) -> Beams:
        """Only the utterances ``keep`` (n',) (indices into the current n)."""
        rows = utterance_rows(keep, group)
        return Beams(self.utterances[keep], self.tokens[rows], self.score[rows], self.length)


@dataclass
class Finished:
    """Each utterance's G best finished hypotheses, best first, ties to the earlier finished."""

    score: Tensor  # (N, G) ranking score; -inf: empty slot
    tokens: Tensor  # (N, G, L_max)
    lengths: Tensor  # (N, G) tokens without <eos>
    parts: dict[str, Tensor]  # scorer name -> (N, G) its score of the hypothesis with <eos>
    count: Tensor  # (N,) hypotheses finished so far, kept or not

    @classmethod
    def empty(cls, utterances: int, group: int, max_tokens: int, names: list[str], device: torch.device) -> Finished:
        score = torch.full((utterances, group), NEG_INF, device=device)
        tokens = torch.zeros(utterances, group, max_tokens, dtype=torch.long, device=device)
        lengths = torch.zeros(utterances, group, dtype=torch.long, device=device)
        parts = {name: torch.zeros_like(score) for name in names}
        return cls(score, tokens, lengths, parts, torch.zeros(utterances, dtype=torch.long, device=device))

    def add(self, beams: Beams, accepted: Tensor, ranked: Tensor, parts: dict[str, Tensor]) -> None:
        """Merge the <eos> extensions ``accepted`` (n*G,) of ``beams``, ranked (n*G,), into the
        G best of their utterances; ``parts`` (n*G,) each are the scorers' scores."""
        utts, group = beams.utterances, self.score.shape[1]
        new = ranked.masked_fill(~accepted, NEG_INF).view(-1, group)  # (n, G)
        merged, order = torch.cat([self.score[utts], new], dim=1).sort(dim=1, descending=True, stable=True)
        order = order[:, :group]  # (n, G) into [old G, new G]

        def pick(old: Tensor, fresh: Tensor) -> Tensor:  # (n, G, ...) each -> the kept (n, G, ...)
            both = torch.cat([old, fresh], dim=1)
            index = order.view(order.shape + (1,) * (both.dim() - 2)).expand((-1, -1) + both.shape[2:])
            return both.gather(1, index)

        tokens = beams.tokens.view(-1, group, beams.tokens.shape[1])
        self.tokens[utts] = pick(self.tokens[utts], tokens)
        self.lengths[utts] = pick(self.lengths[utts], torch.full_like(new, beams.length, dtype=torch.long))
        for name, part in parts.items():
            self.parts[name][utts] = pick(self.parts[name][utts], part.view(-1, group))
        self.score[utts] = merged[:, :group]
        self.count[utts] += accepted.view(-1, group).sum(dim=1)

    def hypotheses(self) -> list[list[Hypothesis]]:
        """Per utterance, its finished hypotheses best first (one empty, -inf, if none)."""
        score, lengths, tokens = self.score.tolist(), self.lengths.tolist(), self.tokens.tolist()
        parts = {name: part.tolist() for name, part in self.parts.items()}
        results = []
        for n, row in enumerate(score):
            hyps = [
                Hypothesis(tokens[n][g][: lengths[n][g]], s, {k: p[n][g] for k, p in parts.items()})
                for g, s in enumerate(row)
                if s != NEG_INF
            ]
            results.append(hyps or [empty_hypothesis()])
        return results


def beam_search(
    scorers: Weighted, memory: Tensor, memory_lengths: Tensor, options: DecodeOptions
) -> list[list[Hypothesis]]:
    """Beam search for N utterances at once, on the weighted sum of ``scorers``' scores.

    memory (N, T, D) encoder output; memory_lengths (N,) frames, each >= 1. Returns, per
    utterance, up to ``options.beam`` finished hypotheses, best first (one empty hypothesis
    scored -inf if none finished).
    """
    n, group = memory.shape[0], options.beam
    ranker = Ranker.from_options(options)
    limits = max_token_lengths(memory_lengths, options.max_length_ratio)  # (N,)
    max_tokens = int(limits.max())
    token_bound = sum(weight * scorer.max_token_score for scorer, weight in scorers.values() if weight > 0)
    states = {name: scorer.init(memory, memory_lengths, group) for name, (scorer, _) in scorers.items()}
    # One column more than any hypothesis can hold: the last step still grows (dead) slots.
    beams = Beams.start(n, group, max_tokens + 1, memory.device)
    finished = Finished.empty(n, group, max_tokens + 1, list(scorers), memory.device)
    special = torch.tensor([BLANK_ID, SOS_EOS_ID], device=memory.device)
    weights = {name: weight for name, (_, weight) in scorers.items()}

    for step in range(max_tokens + 1):
        candidates, scored = _score(scorers, states, options, special)  # (H, K), {name: Scores}, H = n' * G
        cand_score = combine({name: s.tokens for name, s in scored.items()}, weights)  # (H, K)
        eos_score = combine({name: s.eos for name, s in scored.items()}, weights)  # (H,)
        alive = torch.isfinite(beams.score)  # (H,)
        at_limit = (step >= limits[beams.utterances]).repeat_interleave(group)  # (H,)
        cand_score = cand_score.masked_fill(~alive[:, None] | at_limit[:, None], NEG_INF)

        top_score, rows, cols = _keep_best(cand_score, group)
        # An <eos> extension finishes if it ranks within the beam: at or above the G-th best kept
        # extension of its utterance (as whisper does).
        accepted = alive & torch.isfinite(eos_score) & (eos_score >= top_score[:, -1].repeat_interleave(group))
        finished.add(beams, accepted, ranker.rank(eos_score, step + 1), {k: s.eos for k, s in scored.items()})

        selection = Selection(rows, cols, candidates[rows, cols])
        beams = beams.grow(rows, selection.tokens, top_score.reshape(-1))
        states = {name: scorer.select(scored[name].state, selection) for name, (scorer, _) in scorers.items()}

        done = _done(beams, finished, limits, group, ranker, token_bound)
        if bool(done.any()):  # the one wait for the device per step
            if bool(done.all()):
                break
            keep = (~done).nonzero().squeeze(1)
            beams = beams.keep(keep, group)
            states = {name: scorer.select_utterances(states[name], keep) for name, (scorer, _) in scorers.items()}

    return finished.hypotheses()


def _score(
    scorers: Weighted, states: dict[str, Any], options: DecodeOptions, special: Tensor
) -> tuple[Tensor, dict[str, Scores]]:
    """One step of every scorer: the K candidates (H, K) chosen by the full scorers' weighted
    sum (their plain sum if none has weight), never the ``special`` tokens, and each scorer's
    Scores of them."""
    full = {name: scorer.score(states[name], None) for name, (scorer, _) in scorers.items() if not scorer.partial}
    weights = {name: weight for name, (_, weight) in scorers.items()}
    if not any(weights[name] > 0.0 for name in full):
        weights = {name: 1.0 for name in full}
    pre_beam = combine({name: s.tokens for name, s in full.items()}, weights)  # (H, V)
    pre_beam = pre_beam.index_fill(1, special, NEG_INF)  # never blank, and <eos> is scored apart
    k = _candidates_per_hypothesis(options, pre_beam.shape[1], partial=len(full) < len(scorers))
    candidates = pre_beam.topk(k, dim=-1).indices  # (H, K)
    scored = {name: Scores(s.tokens.gather(1, candidates), s.eos, s.state) for name, s in full.items()}
    for name, (scorer, _) in scorers.items():
        if scorer.partial:
            scored[name] = scorer.score(states[name], candidates)
    return candidates, scored


def _candidates_per_hypothesis(options: DecodeOptions, vocab: int, partial: bool) -> int:
    """K: G suffice for full scorers only (the G best of an utterance are among its hypotheses'
    G best each); with a partial scorer, the pre-beam is wider because it can reorder them.
    Never more than the tokens that can be chosen (not blank, not <eos>)."""
    k = max(options.beam, math.ceil(options.pre_beam_ratio * options.beam)) if partial else options.beam
    return max(1, min(k, vocab - 2))


def _keep_best(cand_score: Tensor, group: int) -> tuple[Tensor, Tensor, Tensor]:
    """The G best of each utterance's G*K candidates (H, K) -> their scores (n, G), parent rows
    (n*G,) and candidate columns (n*G,). A stable sort: ties go to the lower row, then column."""
    hyps, k = cand_score.shape
    assert hyps % group == 0, f"{hyps} hypotheses are not {group} per utterance"
    utts = hyps // group
    top_score, flat = cand_score.view(utts, group * k).sort(dim=1, descending=True, stable=True)
    top_score, flat = top_score[:, :group], flat[:, :group]
    base = torch.arange(utts, device=cand_score.device)[:, None] * group
    return top_score, (base + flat // k).reshape(-1), (flat % k).reshape(-1)


def _done(
    beams: Beams, finished: Finished, limits: Tensor, group: int, ranker: Ranker, token_bound: float
) -> Tensor:
    """(n,) True for the utterances to stop (see asr.decode.end_rules.utterances_done)."""
    utts = beams.utterances
    bound = ranker.best_possible(
        beams.score, beams.length, limits[utts].repeat_interleave(group), token_bound
    )
    return utterances_done(finished.score[utts, 0], bound.view(-1, group), finished.count[utts], group)
