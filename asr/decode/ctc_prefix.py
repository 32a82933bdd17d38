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

This is the algorithm of ESPnet's CTCPrefixScoreTH (Seki et al., 2019, "Vectorized beam search
for CTC-attention-based speech recognition"), written out for this code base: every hypothesis of
every utterance and K candidate tokens each are scored in one (T, N*G, K) tensor pass, and only
the K best decoder candidates of each hypothesis are scored ("partial scoring"). A prefix of L
tokens needs at least L frames, so the recursion for h starts at frame L.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

NEG_INF = float("-inf")


@dataclass
class CTCPrefixState:
    """Forward variables of N*G hypotheses (G per utterance, utterance-major rows)."""

    log_probs: Tensor  # (T, N, V) float32; frames past an utterance's end are -inf
    lengths: Tensor  # (N,) valid frames per utterance (>= 1)
    r: Tensor  # (T, 2, N*G): log r^n_t(g) and log r^b_t(g) of each hypothesis's prefix g
    score: Tensor  # (N*G,) psi(g), the prefix score of g
    last: Tensor  # (N*G,) last token of g; <sos> for the empty prefix
    prefix_length: int  # tokens in every g: hypotheses grow in lockstep

    @property
    def group(self) -> int:
        return self.r.shape[2] // self.log_probs.shape[1]


@dataclass
class CTCCandidateScores:
    """Prefix scores of K candidate extensions of each hypothesis, and what selecting one needs."""

    scores: Tensor  # (N*G, K) psi(g + c)
    r: Tensor  # (T, 2, N*G, K) forward variables of each g + c
    candidates: Tensor  # (N*G, K) the tokens c
    state: CTCPrefixState  # the state that was extended


@dataclass(frozen=True)
class CTCPrefixScorer:
    blank: int = BLANK_ID
    eos: int = SOS_EOS_ID  # also <sos>, the "last token" of the empty prefix

    def init(self, log_probs: Tensor, lengths: Tensor, group: int) -> CTCPrefixState:
        """Start G empty-prefix hypotheses per utterance.

        log_probs (N, T, V) CTC log-probabilities; lengths (N,) valid frames, each >= 1.
        """
        time = int(lengths.max())
        x = log_probs[:, :time].float().transpose(0, 1).contiguous()  # (T, N, V)
        padded = torch.arange(time, device=x.device)[:, None] >= lengths[None, :]  # (T, N)
        x = x.masked_fill(padded[..., None], NEG_INF)
        hyps = x.shape[1] * group
        r = x.new_full((time, 2, hyps), NEG_INF)
        # The empty prefix is emitted by all-blank paths: r^b_t = sum of log y_tau(blank), tau <= t.
        r[:, 1] = x[:, :, self.blank].cumsum(dim=0).repeat_interleave(group, dim=1)
        return CTCPrefixState(
            log_probs=x,
            lengths=lengths,
            r=r,
            score=x.new_zeros(hyps),
            last=torch.full((hyps,), self.eos, dtype=torch.long, device=x.device),
            prefix_length=0,
        )

    def score(self, state: CTCPrefixState, candidates: Tensor) -> CTCCandidateScores:
        """Prefix scores psi(g + c) of candidates (N*G, K) (no <eos> among them) -> (N*G, K)."""
        x = state.log_probs
        time, utts, _ = x.shape
        hyps, k = candidates.shape
        group = hyps // utts
        # log y_t(c) for each hypothesis's candidates, gathered per utterance: (T, N*G, K).
        x_c = x.gather(2, candidates.reshape(utts, group * k)[None].expand(time, -1, -1))
        x_c = x_c.view(time, hyps, k)
        x_blank = x[:, :, self.blank].repeat_interleave(group, dim=1)[..., None]  # (T, N*G, 1)

        r_n, r_b = state.r[:, 0], state.r[:, 1]  # (T, N*G) each
        repeat = candidates[None] == state.last[None, :, None]  # (1, N*G, K)
        phi = torch.where(repeat, r_b[..., None], torch.logaddexp(r_n, r_b)[..., None])  # (T, N*G, K)
        # phi_prev[t] = phi_{t-1}: g complete by the frame before t.
        before_start = 0.0 if state.prefix_length == 0 else NEG_INF
        phi_prev = torch.cat([phi.new_full((1, hyps, k), before_start), phi[:-1]])

        start = state.prefix_length  # g + c has prefix_length + 1 tokens: frames 0..start-1 can't hold it
        r = x.new_full((time, 2, hyps, k), NEG_INF)
        if start >= time:
            return CTCCandidateScores(x.new_full((hyps, k), NEG_INF), r, candidates, state)
        r[start, 0] = phi_prev[start] + x_c[start]
        for t in range(start + 1, time):
            r[t, 0] = torch.logaddexp(r[t - 1, 0], phi_prev[t]) + x_c[t]
            r[t, 1] = torch.logaddexp(r[t - 1, 0], r[t - 1, 1]) + x_blank[t]
        psi = torch.logsumexp(phi_prev[start:] + x_c[start:], dim=0)  # (N*G, K)
        return CTCCandidateScores(psi, r, candidates, state)

    def score_eos(self, state: CTCPrefixState) -> Tensor:
        """psi(g + <eos>) = log P_ctc(g | x), read at each utterance's last frame: (N*G,)."""
        last_frame = (state.lengths - 1).repeat_interleave(state.group)  # (N*G,)
        total = torch.logaddexp(state.r[:, 0], state.r[:, 1])  # (T, N*G)
        return total.gather(0, last_frame[None]).squeeze(0)

    def select(self, scored: CTCCandidateScores, rows: Tensor, cols: Tensor) -> CTCPrefixState:
        """New hypotheses g + c: rows (N*G,) pick the extended hypothesis, cols (N*G,) its candidate.
        Rows must stay grouped by utterance, G per utterance."""
        state = scored.state
        return CTCPrefixState(
            log_probs=state.log_probs,
            lengths=state.lengths,
            r=scored.r[:, :, rows, cols],
            score=scored.scores[rows, cols],
            last=scored.candidates[rows, cols],
            prefix_length=state.prefix_length + 1,
        )

    def select_utterances(self, state: CTCPrefixState, keep: Tensor) -> CTCPrefixState:
        """Keep utterances ``keep`` (N',) and their hypotheses; frames past the longest are cut."""
        group = state.group
        rows = (keep[:, None] * group + torch.arange(group, device=keep.device)).reshape(-1)
        lengths = state.lengths.index_select(0, keep)
        time = int(lengths.max())
        return CTCPrefixState(
            log_probs=state.log_probs[:time].index_select(1, keep),
            lengths=lengths,
            r=state.r[:time].index_select(2, rows),
            score=state.score.index_select(0, rows),
            last=state.last.index_select(0, rows),
            prefix_length=state.prefix_length,
        )
