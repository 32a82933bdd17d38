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

Time is the last, contiguous axis of every tensor: the log-probs are kept as (utterance, token,
frame), so a candidate's frames are one contiguous row to gather (a (T, V) layout would read one
cache line per frame), and the sums and cumulative sums over time run along memory.
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

UNDERFLOW = -80.0  # exp of less is below float32's smallest normal number: the term counts as 0


def _logsumexp(x: Tensor) -> Tensor:
    """torch.logsumexp over the last axis, for terms spread over thousands of nats.

    torch's exp is several times slower on arguments below about -88 (where float32 underflows)
    than on others, and most of a prefix score's terms are there: each term is shifted by the
    row's maximum as torch does, and those below UNDERFLOW are set to 0 instead of computed
    (against a largest term of 1, they cannot change a float32 sum). All -inf gives -inf."""
    top = x.amax(dim=-1, keepdim=True)
    top = top.masked_fill(torch.isinf(top), 0.0)
    shifted = x - top
    small = shifted < UNDERFLOW
    terms = shifted.clamp_(min=UNDERFLOW).exp_().masked_fill_(small, 0.0)
    return terms.sum(dim=-1).log_().add_(top.squeeze(-1))


@dataclass
class CTCPrefixState:
    """Forward variables of N*G hypotheses (G per utterance, utterance-major rows), time last."""

    log_probs: Tensor  # (N0, V, T0) float32 of the N0 >= N utterances the search began with; -inf past the end
    utterance: Tensor  # (N,) row of each utterance in log_probs
    valid: Tensor  # (N*G, T) True on the hypothesis's utterance's real frames
    blank_sums: Tensor  # (N*G, T) float64: B_t, the cumulative log y(blank) (0 per padded frame)
    blank_before: Tensor  # (N*G, T) float64: B_{t-1}
    lengths: Tensor  # (N,) valid frames per utterance (>= 1)
    forward: Tensor  # (2, N*G, T) float32: log r^n_t(g) and log r^b_t(g) of each hypothesis's prefix g
    total: Tensor  # (N*G, T) float32: logaddexp of the two, the paths that emit g by frame t
    last: Tensor  # (N*G,) last token of g; <sos> for the empty prefix
    prefix_length: int  # tokens in every g: hypotheses grow in lockstep
    group: int  # G, hypotheses per utterance

    def __post_init__(self) -> None:
        utterances, hyps = self.utterance.shape[0], self.forward.shape[1]
        assert hyps == utterances * self.group, f"{hyps} hypotheses are not {self.group} per utterance ({utterances})"

    def completed_before(self) -> tuple[Tensor, Tensor]:
        """phi_{t-1}(g) for each frame t, (N*G, T) each: when the next token repeats g's last
        (r^b only), and when it does not (r^n + r^b). Before frame 0 only the empty prefix is
        complete; a prefix of L tokens is -inf before frame L-1 by the recursion itself."""
        before_start = 0.0 if self.prefix_length == 0 else NEG_INF
        first = self.total.new_full((self.total.shape[0], 1), before_start)
        return torch.cat([first, self.forward[1, :, :-1]], dim=1), torch.cat([first, self.total[:, :-1]], dim=1)


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
        x = self.ctc_log_probs(memory[:, :time]).float()  # (N, T, V)
        valid = lengths_to_mask(lengths, time)  # (N, T)
        x_blank = x[:, :, self.blank].masked_fill(~valid, 0.0).double()  # (N, T), 0 past the end
        blank_sums = x_blank.cumsum(dim=1)
        x = x.transpose(1, 2).contiguous().masked_fill_(~valid[:, None], NEG_INF)  # (N, V, T)

        def per_hypothesis(t: Tensor) -> Tensor:  # (N, T) -> (N*G, T)
            return t.repeat_interleave(group, dim=0)

        r = x.new_full((2, x.shape[0] * group, time), NEG_INF)
        # The empty prefix is emitted by all-blank paths: r^b_t = sum of log y_tau(blank), tau <= t.
        r[1] = per_hypothesis(blank_sums.masked_fill(~valid, NEG_INF))
        last = torch.full((r.shape[1],), self.eos, dtype=torch.long, device=x.device)
        utterance = torch.arange(x.shape[0], device=x.device)
        return CTCPrefixState(
            x, utterance, per_hypothesis(valid), per_hypothesis(blank_sums), per_hypothesis(blank_sums - x_blank),
            lengths, r, r[1].clone(), last, 0, group,
        )  # fmt: skip

    def score(self, state: CTCPrefixState, candidates: Tensor | None) -> Scores:
        """Prefix scores psi(g + c) of candidates (N*G, K) (no <eos> among them) -> (N*G, K),
        and psi(g + <eos>) (N*G,)."""
        if candidates is None:  # every token: blank's and <eos>'s columns are meaningless
            vocab, hyps = state.log_probs.shape[1], state.forward.shape[1]
            candidates = torch.arange(vocab, device=state.forward.device).expand(hyps, vocab)
            scored = self.extend(state, candidates)
            scored.scores[:, [self.blank, self.eos]] = NEG_INF
        else:
            scored = self.extend(state, candidates)
        return Scores(scored.scores, self.score_eos(state), scored)

    def extend(self, state: CTCPrefixState, candidates: Tensor) -> CTCCandidateScores:
        """psi(g + c) = logsumexp_t (phi_{t-1}(g) + log y_t(c)) of each hypothesis g and each of
        its candidates c (N*G, K)."""
        x_c = self._label_log_probs(state, candidates)  # (N*G, K, T)
        repeat_phi, phi = state.completed_before()  # (N*G, T) each
        repeat = (candidates == state.last[:, None])[..., None]  # (N*G, K, 1)
        phi_prev = torch.where(repeat, repeat_phi[:, None], phi[:, None])  # (N*G, K, T)
        psi = _logsumexp(phi_prev.add_(x_c))  # (N*G, K)
        return CTCCandidateScores(psi, candidates, state)

    def _label_log_probs(self, state: CTCPrefixState, tokens: Tensor) -> Tensor:
        """log y_t(c) of each hypothesis's tokens (N*G, K), gathered per utterance: (N*G, K, T),
        one contiguous row of frames per token."""
        x = state.log_probs
        _, vocab, frames = x.shape
        utts, time = state.utterance.shape[0], state.valid.shape[1]
        hyps, k = tokens.shape
        assert hyps == utts * state.group, f"{hyps} candidate rows are not {state.group} per utterance ({utts})"
        rows = tokens.reshape(utts, state.group * k) + state.utterance[:, None] * vocab  # (N, G*K) into (N0*V)
        return x.view(-1, frames)[:, :time].index_select(0, rows.reshape(-1)).view(hyps, k, time)

    def score_eos(self, state: CTCPrefixState) -> Tensor:
        """psi(g + <eos>) = log P_ctc(g | x), read at each utterance's last frame: (N*G,) float32."""
        last_frame = (state.lengths - 1).repeat_interleave(state.group)  # (N*G,)
        return state.total.gather(1, last_frame[:, None]).squeeze(1)

    def select(self, scored: CTCCandidateScores, selection: Selection) -> CTCPrefixState:
        """New hypotheses g + c: row ``selection.rows`` extended by candidate ``selection.cols``,
        with their forward variables. Rows must stay grouped by utterance, G per utterance."""
        state, rows = scored.state, selection.rows
        tokens = scored.candidates[rows, selection.cols]  # (N*G,)
        repeat_phi, phi = state.completed_before()
        repeat = (tokens == state.last[rows])[:, None]
        phi_prev = torch.where(repeat, repeat_phi.index_select(0, rows), phi.index_select(0, rows))  # (N*G, T)
        x_c = self._label_log_probs(state, tokens[:, None])[:, 0]  # (N*G, T)
        r = self._forward(state, phi_prev, x_c)
        total = torch.logaddexp(r[0], r[1])
        return CTCPrefixState(
            state.log_probs, state.utterance, state.valid, state.blank_sums, state.blank_before, state.lengths,
            r.float(), total.float(), tokens, state.prefix_length + 1, state.group,
        )  # fmt: skip

    def _forward(self, state: CTCPrefixState, phi_prev: Tensor, x_c: Tensor) -> Tensor:
        """The forward variables (2, N*G, T) float64 of h = g + c from phi_{t-1}(g) and
        log y_t(c), (N*G, T) each, in closed form (see the module docstring). Rows of one
        utterance share its frames, so valid and the blank sums need no reordering."""
        valid = state.valid
        x_c = x_c.masked_fill(~valid, 0.0).double()  # finite past the end: the sums stay finite
        sums = x_c.cumsum(dim=1)  # C_t
        r_n = sums + torch.logcumsumexp(phi_prev - (sums - x_c), dim=1)
        r_n_prev = torch.cat([r_n.new_full((r_n.shape[0], 1), NEG_INF), r_n[:, :-1]], dim=1)
        r_b = state.blank_sums + torch.logcumsumexp(r_n_prev - state.blank_before, dim=1)
        return torch.stack([r_n, r_b]).masked_fill(~valid[None], NEG_INF)

    def select_utterances(self, state: CTCPrefixState, keep: Tensor) -> CTCPrefixState:
        """Keep utterances ``keep`` (N',) and their hypotheses; frames past the longest are cut
        (the log-probs stay as they are: only the utterances' rows into them change)."""
        rows = utterance_rows(keep, state.group)
        lengths = state.lengths.index_select(0, keep)
        time = int(lengths.max())

        def cut(t: Tensor) -> Tensor:  # (..., N*G, T) -> the kept rows and frames
            return t[..., :time].index_select(t.dim() - 2, rows)

        return CTCPrefixState(
            log_probs=state.log_probs,
            utterance=state.utterance.index_select(0, keep),
            valid=cut(state.valid),
            blank_sums=cut(state.blank_sums),
            blank_before=cut(state.blank_before),
            lengths=lengths,
            forward=cut(state.forward),
            total=cut(state.total),
            last=state.last.index_select(0, rows),
            prefix_length=state.prefix_length,
            group=state.group,
        )
