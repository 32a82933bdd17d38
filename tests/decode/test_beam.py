"""Batched beam search over weighted scorers, on a tiny random model: the properties decoding
relies on (batched == one at a time, cached == full recomputation, scores == recomputed
log-probs, beam 1 == greedy) and the scorer mapping (a weight-0 scorer changes nothing, a
constant per token is a length bonus)."""

import pytest
import torch

from asr.decode.greedy import attention_greedy
from asr.decode.options import DecodeOptions
from asr.decode.scorers import DecoderScorer, Scores
from asr.nn.masks import utterance_rows


class ConstantScorer:
    """Adds ``value`` per token and per <eos>, whatever the tokens: a scorer with no model."""

    partial = False

    def __init__(self, value: float, vocab: int):
        self.value, self.vocab = value, vocab
        self.max_token_score = value

    def init(self, memory, memory_lengths, group):
        return torch.zeros(memory.shape[0] * group), group

    def score(self, state, candidates):
        total, group = state
        grown = total + self.value
        width = self.vocab if candidates is None else candidates.shape[1]
        return Scores(grown[:, None].expand(-1, width), grown, (grown, group))

    def select(self, scored_state, selection):
        grown, group = scored_state
        return grown[selection.rows], group

    def select_utterances(self, state, keep):
        total, group = state
        return total[utterance_rows(keep, group)], group


class NoiseScorer(ConstantScorer):
    """Random scores, some -inf (impossible), which a weight of 0 must ignore, never turning
    them into NaN."""

    partial = True

    def score(self, state, candidates):
        total, group = state
        generator = torch.Generator().manual_seed(int(total.shape[0]))
        noise = -10.0 * torch.rand(total.shape[0], self.vocab, generator=generator)
        noise[torch.rand(noise.shape, generator=generator) < 0.3] = float("-inf")
        tokens = noise if candidates is None else noise.gather(1, candidates)
        return Scores(tokens, noise[:, 2], state)


def _one_at_a_time(run_beam, model, memory, lengths, options, joint):
    out = []
    for n, length in enumerate(lengths.tolist()):
        out += run_beam(model, memory[n : n + 1, :length], lengths[n : n + 1], options, joint)
    return out


def test_beam_of_one_is_greedy(model, memory, lengths, run_beam, assert_same):
    options = DecodeOptions(method="attention_beam", beam=1)
    with torch.inference_mode():
        greedy = attention_greedy(DecoderScorer(model.decoder), memory, lengths, options)
    assert_same(greedy, run_beam(model, memory, lengths, options, joint=False))
    assert len({len(h[0].tokens) for h in greedy}) > 1  # not a degenerate case


@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
def test_batched_beam_search_equals_one_utterance_at_a_time(model, memory, lengths, run_beam, assert_same, joint):
    options = DecodeOptions(beam=4)
    batched = run_beam(model, memory, lengths, options, joint)
    assert_same(batched, _one_at_a_time(run_beam, model, memory, lengths, options, joint))
    # Hypotheses differ between utterances, and the n-best lists hold several entries.
    assert len({tuple(hyps[0].tokens) for hyps in batched}) > 1
    assert max(len(hyps) for hyps in batched) > 1


@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
def test_cached_decoder_gives_the_search_of_full_recomputation(
    model, memory, lengths, run_beam, assert_same, full_recompute_scorer, joint
):
    options = DecodeOptions(beam=3)
    cached = run_beam(model, memory, lengths, options, joint)
    reference = run_beam(model, memory, lengths, options, joint, decoder=full_recompute_scorer(model.decoder))
    assert_same(cached, reference)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3, 1.0])
def test_hypothesis_scores_are_the_recomputed_weighted_log_probs(
    model, memory, lengths, run_beam, teacher_forced, ctc_log_prob, ctc_weight
):
    options = DecodeOptions(beam=3, ctc_weight=ctc_weight)
    results = run_beam(model, memory, lengths, options, joint=ctc_weight > 0)
    with torch.inference_mode():
        for n, hyps in enumerate(results):
            length = int(lengths[n])
            for hyp in hyps:
                attention = teacher_forced(model, memory[n], length, hyp.tokens)
                assert hyp.attention == pytest.approx(attention, abs=1e-3)
                if ctc_weight == 0.0:
                    assert hyp.ctc is None and hyp.score == pytest.approx(attention, abs=1e-3)
                    continue
                ctc = ctc_log_prob(model, memory[n], length, hyp.tokens)
                assert hyp.ctc == pytest.approx(ctc, abs=1e-3)
                joint = (1 - ctc_weight) * attention + ctc_weight * ctc
                assert hyp.score == pytest.approx(joint, abs=1e-3)
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_length_bonus_favours_longer_hypotheses(model, memory, lengths, run_beam):
    plain = run_beam(model, memory, lengths, DecodeOptions(beam=4), joint=False)
    bonus = run_beam(model, memory, lengths, DecodeOptions(beam=4, length_bonus=2.0), joint=False)
    assert sum(len(h[0].tokens) for h in bonus) > sum(len(h[0].tokens) for h in plain)
    for hyps in bonus:
        for hyp in hyps:
            assert hyp.score == pytest.approx(hyp.attention + 2.0 * (len(hyp.tokens) + 1), abs=1e-4)


@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
@pytest.mark.parametrize("partial", [False, True], ids=["full", "partial"])
def test_an_extra_scorer_of_weight_zero_changes_nothing(model, memory, lengths, run_beam, assert_same, joint, partial):
    options = DecodeOptions(beam=4, pre_beam_ratio=1.0)  # a partial scorer would widen the pre-beam
    noise = NoiseScorer(0.0, model.vocab_size)
    noise.partial = partial
    plain = run_beam(model, memory, lengths, options, joint)
    extra = run_beam(model, memory, lengths, options, joint, extra={"noise": (noise, 0.0)})
    assert_same(plain, extra)
    assert [[h.attention for h in hyps] for hyps in plain] == [[h.attention for h in hyps] for hyps in extra]


@pytest.mark.parametrize("bonus", [1.5, -1.0])
@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
def test_a_scorer_adding_a_constant_per_token_is_a_length_bonus(model, memory, lengths, run_beam, joint, bonus):
    with_bonus = run_beam(model, memory, lengths, DecodeOptions(beam=4, length_bonus=bonus), joint)
    constant = {"bonus": (ConstantScorer(bonus, model.vocab_size), 1.0)}
    with_scorer = run_beam(model, memory, lengths, DecodeOptions(beam=4), joint, extra=constant)
    assert [[h.tokens for h in hyps] for hyps in with_scorer] == [[h.tokens for h in hyps] for hyps in with_bonus]
    for hyps_a, hyps_b in zip(with_scorer, with_bonus):
        for a, b in zip(hyps_a, hyps_b):
            assert a.score == pytest.approx(b.score, abs=1e-3)
            assert a.attention == pytest.approx(b.attention, abs=1e-5)
    if bonus > 0:  # not a no-op: the bonus makes outputs longer
        plain = run_beam(model, memory, lengths, DecodeOptions(beam=4), joint)
        assert sum(len(h[0].tokens) for h in with_bonus) > sum(len(h[0].tokens) for h in plain)
