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

Only the K best candidates of the other scorers are scored ("partial scoring", as in ESPnet's
CTCPrefixScoreTH, Seki et al., 2019, "Vectorized beam search for CTC-attention-based speech
recognition"), and only psi is needed to rank them: one (T, N*G, K) logsumexp for every
hypothesis of every utterance. The forward variables are computed in ``select``, for the G kept
extensions per utterance only, K times fewer. Both recursions are linear in probability space,
so they are solved for all frames at once instead of frame by frame: with
C_t = sum_{tau<=t} log y_tau(c) and B_t the same for blank,

    r^n_t(h) = C_t + logcumsumexp_{s<=t} (phi_{s-1}(g) - C_{s-1})
    r^b_t(h) = B_t + logcumsumexp_{s<=t} (r^n_{s-1}(h) - B_{s-1})

a few tensor ops per step rather than a Python loop over frames. The cumulative sums grow to
thousands of nats, so this runs in float64, where their cancellation costs nothing visible
(tests/decode/test_ctc_prefix.py checks it against the frame loop it replaced). Frames past an
utterance's end hold -inf in the forward variables.
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

    log_probs: Tensor  # (T, N, V) float32; -inf on frames past an utterance's end
    valid: Tensor  # (T, N) True on an utterance's real frames
    blank_sums: Tensor  # (T, N) float64: B_t, the cumulative log y(blank) (0 per padded frame)
    lengths: Tensor  # (N,) valid frames per utterance (>= 1)
    r: Tensor  # (T, 2, N*G) float32: log r^n_t(g) and log r^b_t(g) of each hypothesis's prefix g
    total: Tensor  # (T, N*G) float32: logaddexp of the two, the paths that emit g by frame t
    last: Tensor  # (N*G,) last token of g; <sos> for the empty prefix
    prefix_length: int  # tokens in every g: hypotheses grow in lockstep
    group: int  # G, hypotheses per utterance

    def __post_init__(self) -> None:
        utterances, hyps = self.log_probs.shape[1], self.r.shape[2]
        assert hyps == utterances * self.group, f"{hyps} hypotheses are not {self.group} per utterance ({utterances})"

    def completed_before(self) -> tuple[Tensor, Tensor]:
        """phi_{t-1}(g) for each frame t, (T, N*G) each: when the next token repeats g's last
        (r^b only), and when it does not (r^n + r^b). Before frame 0 only the empty prefix is
        complete; a prefix of L tokens is -inf before frame L-1 by the recursion itself."""
        before_start = 0.0 if self.prefix_length == 0 else NEG_INF
        first = self.total.new_full((1, self.total.shape[1]), before_start)
        return torch.cat([first, self.r[:-1, 1]]), torch.cat([first, self.total[:-1]])


@dataclass
class CTCCandidateScores:
    """Prefix scores of K candidate extensions of each hypothesis, and what selecting one needs."""

    scores: Tensor  # (N*G, K) psi(g + c), float32
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
        x = x.masked_fill(~valid[..., None], NEG_INF)
        blank_sums = x[:, :, self.blank].masked_fill(~valid, 0.0).double().cumsum(dim=0)  # (T, N)
        r = x.new_full((time, 2, x.shape[1] * group), NEG_INF)
        # The empty prefix is emitted by all-blank paths: r^b_t = sum of log y_tau(blank), tau <= t.
        r[:, 1] = blank_sums.masked_fill(~valid, NEG_INF).repeat_interleave(group, dim=1)
        last = torch.full((r.shape[2],), self.eos, dtype=torch.long, device=x.device)
        return CTCPrefixState(x, valid, blank_sums, lengths, r, r[:, 1].clone(), last, 0, group)

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
        """psi(g + c) = logsumexp_t (phi_{t-1}(g) + log y_t(c)) of each hypothesis g and each of
        its candidates c (N*G, K)."""
        x_c = self._label_log_probs(state, candidates)  # (T, N*G, K)
        repeat_phi, phi = state.completed_before()  # (T, N*G) each
        repeat = candidates[None] == state.last[None, :, None]  # (1, N*G, K)
        phi_prev = torch.where(repeat, repeat_phi[..., None], phi[..., None])  # (T, N*G, K)
        psi = torch.logsumexp(phi_prev + x_c, dim=0)  # (N*G, K)
        return CTCCandidateScores(psi, candidates, state)

    def _label_log_probs(self, state: CTCPrefixState, tokens: Tensor) -> Tensor:
        """log y_t(c) of each hypothesis's tokens (N*G, K), gathered per utterance: (T, N*G, K)."""
        x = state.log_probs
        time, utts, _ = x.shape
        hyps, k = tokens.shape
        assert hyps == utts * state.group, f"{hyps} candidate rows are not {state.group} per utterance ({utts})"
        return x.gather(2, tokens.reshape(utts, state.group * k)[None].expand(time, -1, -1)).view(time, hyps, k)

    def score_eos(self, state: CTCPrefixState) -> Tensor:
        """psi(g + <eos>) = log P_ctc(g | x), read at each utterance's last frame: (N*G,) float32."""
        last_frame = (state.lengths - 1).repeat_interleave(state.group)  # (N*G,)
        return state.total.gather(0, last_frame[None]).squeeze(0)

    def select(self, scored: CTCCandidateScores, selection: Selection) -> CTCPrefixState:
        """New hypotheses g + c: row ``selection.rows`` extended by candidate ``selection.cols``,
        with their forward variables. Rows must stay grouped by utterance, G per utterance."""
        state, rows = scored.state, selection.rows
        tokens = scored.candidates[rows, selection.cols]  # (N*G,)
        repeat_phi, phi = state.completed_before()
        phi_prev = torch.where(tokens == state.last[rows], repeat_phi[:, rows], phi[:, rows])  # (T, N*G)
        x_c = self._label_log_probs(state, tokens[:, None])[..., 0]  # (T, N*G)
        r = self._forward(state, phi_prev, x_c)
        total = torch.logaddexp(r[:, 0], r[:, 1])
        return CTCPrefixState(
            state.log_probs, state.valid, state.blank_sums, state.lengths, r.float(), total.float(), tokens,
            state.prefix_length + 1, state.group,
        )  # fmt: skip

    def _forward(self, state: CTCPrefixState, phi_prev: Tensor, x_c: Tensor) -> Tensor:
        """The forward variables (T, 2, N*G) float64 of h = g + c from phi_{t-1}(g) and
        log y_t(c), (T, N*G) each, in closed form (see the module docstring)."""
        valid = state.valid.repeat_interleave(state.group, dim=1)  # (T, N*G)
        blank_sums = state.blank_sums.repeat_interleave(state.group, dim=1)  # B_t
        x_blank = state.log_probs[:, :, self.blank].repeat_interleave(state.group, dim=1)
        x_c = x_c.masked_fill(~valid, 0.0).double()  # finite past the end: the sums stay finite
        sums = x_c.cumsum(dim=0)  # C_t
        r_n = sums + torch.logcumsumexp(phi_prev - (sums - x_c), dim=0)
        r_n_prev = torch.cat([r_n.new_full((1, r_n.shape[1]), NEG_INF), r_n[:-1]])
        r_b = blank_sums + torch.logcumsumexp(r_n_prev - (blank_sums - x_blank.masked_fill(~valid, 0.0)), dim=0)
        return torch.stack([r_n, r_b], dim=1).masked_fill(~valid[:, None], NEG_INF)

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
            total=state.total[:time].index_select(1, rows),
            last=state.last.index_select(0, rows),
            prefix_length=state.prefix_length,
            group=state.group,
        )
