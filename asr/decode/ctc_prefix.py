"""Batched CTC prefix scoring, the CTC half of joint CTC/attention beam search.

The CTC prefix score of a token prefix h is psi(h) = log P(h is the start of the output | x):
the total probability of every CTC path whose label sequence begins with h (Watanabe et al.,
2017, "Hybrid CTC/attention architecture for end-to-end speech recognition", algorithm 2). It
is computed left to right from two forward variables over frames t of the prefix g it extends:

    r^n_t(g): paths over frames 0..t that emit g and end in g's last label,
    r^b_t(g): paths over frames 0..t that emit g and end in blank.

For h = g + c (c not <eos>), with phi_t(g) = r^b_t(g) + (r^n_t(g) unless c repeats g's last
label, since "aa" needs a blank between to mean two a's):

    r^n_t(h) = logaddexp(r^n_{t-1}(h), phi_{t-1}(g)) + log y_t(c)
    r^b_t(h) = logaddexp(r^n_{t-1}(h), r^b_{t-1}(h)) + log y_t(blank)
    psi(h)   = logsumexp_t (phi_{t-1}(g) + log y_t(c))        (c first emitted at frame t)

and psi(g + <eos>) = logaddexp(r^n_{T-1}(g), r^b_{T-1}(g)) = log P_ctc(g | x), at the utterance's
own last frame T-1. Before frame 0 only the empty prefix is complete (phi_{-1}(<sos>) = 0).

Both recursions are linear in probability space, so they are solved for all frames at once
instead of frame by frame: with C_t = sum_{tau<=t} log y_tau(c) and B_t the same for blank,

    r^n_t(h) = C_t + logcumsumexp_{s<=t} (phi_{s-1}(g) - C_{s-1})
    r^b_t(h) = B_t + logcumsumexp_{s<=t} (r^n_{s-1}(h) - B_{s-1})

a few tensor ops per step rather than a Python loop over frames. The cumulative sums grow to
thousands of nats, so this runs in float64, where their cancellation costs nothing visible
(tests/decode/test_ctc_prefix.py checks it against the frame loop it replaced).

Every hypothesis of every utterance and K candidate tokens each are scored in one (T, N*G, K)
pass, and only the K best candidates of the other scorers are scored ("partial scoring"), as in
ESPnet's CTCPrefixScoreTH (Seki et al., 2019, "Vectorized beam search for CTC-attention-based
speech recognition"). Frames past an utterance's end hold -inf in the forward variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from asr.decode.scorers import Scores, Selection
from asr.nn.masks import NEG_INF, lengths_to_mask, utterance_rows
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID


@dataclass
class CTCPrefixState:
    """Forward variables of N*G hypotheses (G per utterance, utterance-major rows)."""

    log_probs: Tensor  # (T, N, V) float32; 0 on frames past an utterance's end (see valid)
    valid: Tensor  # (T, N) True on an utterance's real frames
    blank_sums: Tensor  # (T, N) float64: B_t, the cumulative log y(blank)
    lengths: Tensor  # (N,) valid frames per utterance (>= 1)
    r: Tensor  # (T, 2, N*G) float64: log r^n_t(g) and log r^b_t(g) of each hypothesis's prefix g
    last: Tensor  # (N*G,) last token of g; <sos> for the empty prefix
    prefix_length: int  # tokens in every g: hypotheses grow in lockstep
    group: int  # G, hypotheses per utterance

    def __post_init__(self) -> None:
        utterances, hyps = self.log_probs.shape[1], self.r.shape[2]
        assert hyps == utterances * self.group, f"{hyps} hypotheses are not {self.group} per utterance ({utterances})"


@dataclass
class CTCCandidateScores:
    """Prefix scores of K candidate extensions of each hypothesis, and what selecting one needs."""

    scores: Tensor  # (N*G, K) psi(g + c), float32
    r: Tensor  # (T, 2, N*G, K) forward variables of each g + c
    candidates: Tensor  # (N*G, K) the tokens c
    state: CTCPrefixState  # the state that was extended


@dataclass(frozen=True)
class CTCPrefixScorer:
    """A partial scorer: psi(g + c) for the candidates it is given (all tokens if none)."""

    ctc_log_probs: Callable[[Tensor], Tensor]  # encoder output (N, T, D) -> (N, T, V) log-probs
    blank: int = BLANK_ID
    eos: int = SOS_EOS_ID  # also <sos>, the "last token" of the empty prefix
    partial: ClassVar[bool] = True
    max_token_score: ClassVar[float] = 0.0  # a prefix's probability only falls as it grows

    def init(self, memory: Tensor, lengths: Tensor, group: int) -> CTCPrefixState:
        """Start G empty-prefix hypotheses per utterance: memory (N, T, D), lengths (N,) >= 1."""
        time = int(lengths.max())
        x = self.ctc_log_probs(memory[:, :time]).float().transpose(0, 1).contiguous()  # (T, N, V)
        valid = lengths_to_mask(lengths, time).T  # (T, N)
        x = x.masked_fill(~valid[..., None], 0.0)  # finite past the end: the cumulative sums stay finite
        blank_sums = x[:, :, self.blank].double().cumsum(dim=0)  # (T, N)
        r = blank_sums.new_full((time, 2, x.shape[1] * group), NEG_INF)
        # The empty prefix is emitted by all-blank paths: r^b_t = sum of log y_tau(blank), tau <= t.
        r[:, 1] = blank_sums.masked_fill(~valid, NEG_INF).repeat_interleave(group, dim=1)
        last = torch.full((r.shape[2],), self.eos, dtype=torch.long, device=x.device)
        return CTCPrefixState(x, valid, blank_sums, lengths, r, last, 0, group)

    def score(self, state: CTCPrefixState, candidates: Tensor | None) -> Scores:
        """Prefix scores psi(g + c) of candidates (N*G, K) (no <eos> among them) -> (N*G, K),
        and psi(g + <eos>) (N*G,)."""
        if candidates is None:  # every token: blank's and <eos>'s columns are meaningless
            vocab, hyps = state.log_probs.shape[2], state.r.shape[2]
            candidates = torch.arange(vocab, device=state.r.device).expand(hyps, vocab)
            scored = self.extend(state, candidates)
            scored.scores[:, [self.blank, self.eos]] = NEG_INF
        else:
            scored = self.extend(state, candidates)
        return Scores(scored.scores, self.score_eos(state), scored)

    def extend(self, state: CTCPrefixState, candidates: Tensor) -> CTCCandidateScores:
        """Forward variables and prefix scores of each hypothesis extended by each candidate."""
        x = state.log_probs
        time, utts, _ = x.shape
        hyps, k = candidates.shape
        group = state.group
        assert hyps == utts * group, f"{hyps} candidate rows are not {group} per utterance ({utts})"
        # log y_t(c) for each hypothesis's candidates, gathered per utterance: (T, N*G, K).
        x_c = x.gather(2, candidates.reshape(utts, group * k)[None].expand(time, -1, -1))
        x_c = x_c.view(time, hyps, k).double()
        valid = state.valid.repeat_interleave(group, dim=1)[..., None]  # (T, N*G, 1)
        blank_sums = state.blank_sums.repeat_interleave(group, dim=1)[..., None]  # (T, N*G, 1)
        x_blank = x[:, :, self.blank].repeat_interleave(group, dim=1)[..., None]  # (T, N*G, 1)

        r_n, r_b = state.r[:, 0], state.r[:, 1]  # (T, N*G) each
        repeat = candidates[None] == state.last[None, :, None]  # (1, N*G, K)
        phi = torch.where(repeat, r_b[..., None], torch.logaddexp(r_n, r_b)[..., None])  # (T, N*G, K)
        # phi_prev[t] = phi_{t-1}: g complete by the frame before t (-inf before g can be: a
        # prefix of L tokens needs L frames, which the forward variables already say).
        before_start = 0.0 if state.prefix_length == 0 else NEG_INF
        phi_prev = torch.cat([phi.new_full((1, hyps, k), before_start), phi[:-1]])

        sums = x_c.cumsum(dim=0)  # C_t
        new_n = sums + torch.logcumsumexp(phi_prev - (sums - x_c), dim=0)
        new_n_prev = torch.cat([new_n.new_full((1, hyps, k), NEG_INF), new_n[:-1]])
        new_b = blank_sums + torch.logcumsumexp(new_n_prev - (blank_sums - x_blank), dim=0)
        r = torch.stack([new_n, new_b], dim=1).masked_fill(~valid[:, None], NEG_INF)  # (T, 2, N*G, K)
        psi = torch.logsumexp((phi_prev + x_c).masked_fill(~valid, NEG_INF), dim=0)  # (N*G, K)
        return CTCCandidateScores(psi.float(), r, candidates, state)

    def score_eos(self, state: CTCPrefixState) -> Tensor:
        """psi(g + <eos>) = log P_ctc(g | x), read at each utterance's last frame: (N*G,) float32."""
        last_frame = (state.lengths - 1).repeat_interleave(state.group)  # (N*G,)
        total = torch.logaddexp(state.r[:, 0], state.r[:, 1])  # (T, N*G)
        return total.gather(0, last_frame[None]).squeeze(0).float()

    def select(self, scored: CTCCandidateScores, selection: Selection) -> CTCPrefixState:
        """New hypotheses g + c: row ``selection.rows`` extended by candidate ``selection.cols``.
        Rows must stay grouped by utterance, G per utterance."""
        state, rows, cols = scored.state, selection.rows, selection.cols
        r = scored.r[:, :, rows, cols]
        last = scored.candidates[rows, cols]
        return CTCPrefixState(
            state.log_probs, state.valid, state.blank_sums, state.lengths, r, last, state.prefix_length + 1, state.group
        )

    def select_utterances(self, state: CTCPrefixState, keep: Tensor) -> CTCPrefixState:
        """Keep utterances ``keep`` (N',) and their hypotheses; frames past the longest are cut."""
        rows = utterance_rows(keep, state.group)
        lengths = state.lengths.index_select(0, keep)
        time = int(lengths.max())
        return CTCPrefixState(
            log_probs=state.log_probs[:time].index_select(1, keep),
            valid=state.valid[:time].index_select(1, keep),
            blank_sums=state.blank_sums[:time].index_select(1, keep),
            lengths=lengths,
            r=state.r[:time].index_select(2, rows),
            last=state.last.index_select(0, rows),
            prefix_length=state.prefix_length,
            group=state.group,
        )
