"""The batched CTC prefix scorer, checked against F.ctc_loss, brute force over every path, and
the frame-by-frame recursion it replaced (kept here as the reference)."""

import math

import pytest
import torch
import torch.nn.functional as F

from asr.decode.ctc_prefix import CTCPrefixScorer
from asr.decode.scorers import Selection

EOS = 2  # asr.text.tokenizer.SOS_EOS_ID; blank is 0
NEG_INF = float("-inf")


def _scorer() -> CTCPrefixScorer:
    return CTCPrefixScorer(lambda x: x, blank=0, eos=EOS)  # "encoder output" = CTC log-probs


def reference_extend(x, lengths, r, last, prefix_length, group, candidates, blank=0):
    """The frame-by-frame recursion (Watanabe et al., 2017, algorithm 2) that the scorer ran
    before it was vectorised over time. x (T, N, V) with -inf past each utterance's end;
    r (T, 2, N*G). Returns psi (N*G, K) and the forward variables (T, 2, N*G, K)."""
    time, utts, _ = x.shape
    hyps, k = candidates.shape
    x_c = x.gather(2, candidates.reshape(utts, group * k)[None].expand(time, -1, -1)).view(time, hyps, k)
    x_blank = x[:, :, blank].repeat_interleave(group, dim=1)[..., None]
    r_n, r_b = r[:, 0], r[:, 1]
    repeat = candidates[None] == last[None, :, None]
    phi = torch.where(repeat, r_b[..., None], torch.logaddexp(r_n, r_b)[..., None])
    before_start = 0.0 if prefix_length == 0 else NEG_INF
    phi_prev = torch.cat([phi.new_full((1, hyps, k), before_start), phi[:-1]])
    start = prefix_length
    new_r = x.new_full((time, 2, hyps, k), NEG_INF)
    if start >= time:
        return x.new_full((hyps, k), NEG_INF), new_r
    new_r[start, 0] = phi_prev[start] + x_c[start]
    for t in range(start + 1, time):
        new_r[t, 0] = torch.logaddexp(new_r[t - 1, 0], phi_prev[t]) + x_c[t]
        new_r[t, 1] = torch.logaddexp(new_r[t - 1, 0], new_r[t - 1, 1]) + x_blank[t]
    return torch.logsumexp(phi_prev[start:] + x_c[start:], dim=0), new_r


def _time_first(state) -> torch.Tensor:
    """The scorer's forward variables (2, N*G, T) as the reference recursion keeps them, (T, 2, N*G)."""
    return state.forward.permute(2, 0, 1)


def test_scores_equal_the_frame_by_frame_recursion_over_many_steps():
    """Random hypotheses, reordered and grown for more steps than the shortest utterance has
    frames, in float64 for the reference: psi, eos scores and forward variables agree."""
    torch.manual_seed(7)
    utts, group, time, vocab, k = 3, 3, 16, 9, 4
    lengths = torch.tensor([16, 11, 5])
    log_probs = (torch.randn(utts, time, vocab) * 3).log_softmax(-1)
    scorer = _scorer()
    state = scorer.init(log_probs, lengths, group)
    x = log_probs.double().transpose(0, 1).masked_fill((torch.arange(time)[:, None] >= lengths)[..., None], NEG_INF)
    r, last = _time_first(state).double(), state.last.clone()
    assert torch.equal(torch.isinf(r), torch.isinf(_time_first(state)))
    for step in range(8):
        candidates = torch.stack([torch.randperm(vocab - 1)[:k] + 1 for _ in range(utts * group)])
        candidates[candidates == EOS] = 1  # never <eos>; repeats of the last token happen
        scored = scorer.score(state, candidates)
        psi, new_r = reference_extend(x, lengths, r, last, step, group, candidates)
        torch.testing.assert_close(scored.tokens.double(), psi, atol=1e-4, rtol=1e-5)
        eos = torch.logaddexp(r[:, 0], r[:, 1]).gather(0, (lengths - 1).repeat_interleave(group)[None])[0]
        torch.testing.assert_close(scored.eos.double(), eos, atol=1e-4, rtol=1e-5)
        rows = torch.cat([torch.randint(0, group, (group,)) + n * group for n in range(utts)])
        cols = torch.randint(0, k, (utts * group,))
        state = scorer.select(scored.state, Selection(rows, cols, candidates[rows, cols]))
        r, last = new_r[:, :, rows, cols], candidates[rows, cols]
        finite = torch.isfinite(r)
        assert torch.equal(finite, torch.isfinite(_time_first(state)))  # -inf exactly where it should be
        torch.testing.assert_close(_time_first(state)[finite].double(), r[finite], atol=1e-4, rtol=1e-6)
    # The short utterance ran out of frames: its prefixes are impossible, the others' are not.
    assert math.isinf(scorer.score_eos(state)[-1].item()) and math.isfinite(scorer.score_eos(state)[0].item())


def test_prefix_score_at_eos_equals_ctc_loss_for_batched_hypotheses():
    torch.manual_seed(3)
    utts, group, time, vocab = 3, 2, 12, 7
    lengths = torch.tensor([12, 9, 5])
    log_probs = (torch.randn(utts, time, vocab) * 2).log_softmax(-1)
    # Two sequences per utterance (one per hypothesis slot), all of the same length (lockstep),
    # with repeats, which need a blank between them.
    sequences = torch.tensor(
        [[3, 3, 4], [5, 1, 6], [6, 6, 6], [4, 3, 4], [1, 3, 1], [5, 5, 3]]
    )  # (N*G, U)
    scorer = _scorer()
    state = scorer.init(log_probs, lengths, group)
    rows = torch.arange(utts * group)
    for step in range(sequences.shape[1]):
        # Score a few candidates, the real next token among them, then select it.
        candidates = torch.stack([sequences[:, step], (sequences[:, step] % 6) + 1], dim=1)
        scored = scorer.score(state, candidates)
        state = scorer.select(scored.state, Selection(rows, torch.zeros_like(rows), sequences[:, step]))
    owner = torch.arange(utts).repeat_interleave(group)
    expected = -F.ctc_loss(
        log_probs[owner].transpose(0, 1),
        sequences,
        lengths[owner],
        torch.full((utts * group,), sequences.shape[1]),
        blank=0,
        reduction="none",
    )
    torch.testing.assert_close(scorer.score_eos(state), expected, atol=1e-4, rtol=1e-5)
    # Dropping an utterance keeps the others' states intact.
    kept = scorer.select_utterances(state, torch.tensor([0, 2]))
    torch.testing.assert_close(scorer.score_eos(kept), expected[[0, 1, 4, 5]], atol=1e-4, rtol=1e-5)


def test_prefix_score_is_the_probability_of_all_outputs_starting_with_the_prefix(sequence_probs):
    torch.manual_seed(4)
    time, vocab = 5, 4
    log_probs = (torch.randn(1, time, vocab) * 1.5).log_softmax(-1)
    totals = sequence_probs(log_probs[0])

    def brute_psi(prefix: tuple[int, ...]) -> float:
        mass = sum(p for seq, p in totals.items() if seq[: len(prefix)] == prefix)
        return math.log(mass) if mass > 0 else float("-inf")

    scorer = _scorer()
    state = scorer.init(log_probs, torch.tensor([time]), group=1)
    candidates = torch.tensor([[1, 3]])
    for prefix in [(), (3,), (3, 3), (3, 3, 1)]:
        if prefix:  # extend the state by the prefix's last token
            scored = scorer.score(state, torch.tensor([[prefix[-1]]]))
            state = scorer.select(scored.state, Selection(torch.tensor([0]), torch.tensor([0]), torch.tensor([prefix[-1]])))
        scored = scorer.score(state, candidates)
        expected = [brute_psi(prefix + (c,)) for c in (1, 3)]
        assert scored.tokens[0].tolist() == pytest.approx(expected, abs=1e-5)
        assert scored.eos.item() == pytest.approx(math.log(totals.get(prefix, 0.0)), abs=1e-5)
    # Without candidates every token is scored; blank and <eos> are not tokens to extend by.
    every = scorer.score(state, None).tokens[0]
    assert every[[1, 3]].tolist() == pytest.approx(scored.tokens[0].tolist(), abs=1e-6)
    assert every[0].item() == every[EOS].item() == float("-inf")


def test_a_batch_that_does_not_divide_into_groups_is_an_error():
    scorer = _scorer()
    state = scorer.init(torch.randn(2, 6, 5).log_softmax(-1), torch.tensor([6, 4]), group=3)
    with pytest.raises(AssertionError, match="3 per utterance"):
        scorer.score(state, torch.ones(5, 2, dtype=torch.long))  # 5 rows for 2 utterances of 3


def test_the_logsumexp_that_skips_underflowing_terms_equals_torchs():
    """Terms spread over thousands of nats, rows of -inf and rows of ordinary values."""
    from asr.decode.ctc_prefix import _logsumexp

    torch.manual_seed(5)
    x = torch.randn(6, 5, 40) * torch.tensor([1.0, 30.0, 1000.0]).repeat(2)[:, None, None]
    x[:, :, :7] = NEG_INF
    x[2, 3] = NEG_INF  # an impossible prefix stays impossible
    expected = torch.logsumexp(x, dim=-1)
    got = _logsumexp(x.clone())
    assert torch.equal(torch.isneginf(got), torch.isneginf(expected)) and bool(torch.isneginf(got[2, 3]))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(got[finite], expected[finite], atol=1e-6, rtol=1e-6)


def test_after_dropping_utterances_the_others_score_as_if_decoded_alone():
    """select_utterances keeps the log-probs of every utterance and only changes which rows it
    reads (and cuts the frames past the longest kept one): scoring on must not notice."""
    torch.manual_seed(8)
    utts, group, time, vocab = 3, 2, 14, 8
    lengths = torch.tensor([14, 9, 6])
    log_probs = (torch.randn(utts, time, vocab) * 2).log_softmax(-1)
    scorer = _scorer()
    both = scorer.init(log_probs, lengths, group)
    alone = scorer.init(log_probs[1:, :9], lengths[1:], group)
    sequences = torch.randint(3, vocab, (utts * group, 4))
    for step in range(sequences.shape[1]):
        if step == 2:  # utterance 0, the longest, finishes: 14 frames cut to 9
            both = scorer.select_utterances(both, torch.tensor([1, 2]))
        rows = torch.arange(both.forward.shape[1])
        tokens = sequences[-rows.shape[0] :, step]
        candidates = torch.stack([tokens, tokens % (vocab - 3) + 3], dim=1)
        scored_both, scored_alone = scorer.score(both, candidates), scorer.score(alone, candidates[-4:])
        assert torch.equal(scored_both.tokens[-4:], scored_alone.tokens)
        assert torch.equal(scored_both.eos[-4:], scored_alone.eos)
        selection = Selection(rows, torch.zeros_like(rows), tokens)
        both = scorer.select(scored_both.state, selection)
        kept = Selection(torch.arange(4), torch.zeros(4, dtype=torch.long), tokens[-4:])
        alone = scorer.select(scored_alone.state, kept)
    assert both.forward.shape[2] == 9
