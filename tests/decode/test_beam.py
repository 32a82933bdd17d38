"""Greedy and beam search over a tiny random model: the properties decoding relies on.

The decoder's output layer is scaled up so that its distributions are peaked: random models
then make clear choices, and hypotheses that must agree are not decided by near-ties.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from asr.config import DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
from asr.decode.beam import beam_search
from asr.decode.ctc import ctc_prefix_beam_search, ctc_sequence_log_probs
from asr.decode.end_rules import max_token_lengths, utterances_done
from asr.decode.greedy import attention_greedy
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.rescore import attention_rescoring
from asr.decode.scorers import DecoderScorer, next_token_log_probs
from asr.decode.search import search_encoded
from asr.model import ASRModel
from asr.text.tokenizer import SOS_EOS_ID

VOCAB = 12
D_MODEL = 32
LENGTHS = torch.tensor([30, 21, 14, 7])



def _model(eos_bias: float = 0.0) -> ASRModel:
    torch.manual_seed(4)
    config = ExperimentConfig(
        features=FeatureConfig(n_mels=20),
        model=ModelConfig(
            d_model=D_MODEL,
            encoder=EncoderConfig(layers=2, heads=2, ff_dim=64, conv_channels=8),
            decoder=DecoderConfig(layers=2, heads=2, ff_dim=64),
        ),
    )
    model = ASRModel(config, VOCAB).eval()
    with torch.no_grad():
        model.decoder.output.weight.mul_(3.0)
        model.decoder.output.bias[SOS_EOS_ID] += eos_bias
        model.ctc.weight.mul_(4.0)
    return model


@pytest.fixture(scope="module")
def model() -> ASRModel:
    return _model()


@pytest.fixture(scope="module")
def memory() -> torch.Tensor:
    """Encoder output (4, 30, D), zero after each utterance's length."""
    generator = torch.Generator().manual_seed(2)
    memory = torch.randn(len(LENGTHS), int(LENGTHS.max()), D_MODEL, generator=generator)
    return memory * (torch.arange(memory.shape[1]) < LENGTHS[:, None])[..., None]


class FullRecomputeScorer:
    """Reference decoder scorer: ``decoder.forward`` over each hypothesis's whole prefix at every
    step, no cache, the encoder output copied to every hypothesis (no folding)."""

    def __init__(self, decoder):
        self.decoder = decoder

    def init(self, memory, memory_lengths, group):
        prefixes = torch.zeros(memory.shape[0] * group, 0, dtype=torch.long)
        return memory, memory_lengths, group, prefixes

    def score(self, state, last_tokens):
        memory, lengths, group, prefixes = state
        prefixes = torch.cat([prefixes, last_tokens[:, None]], dim=1)
        logits, _ = self.decoder(
            prefixes, memory.repeat_interleave(group, 0), lengths.repeat_interleave(group, 0)
        )
        return next_token_log_probs(logits[:, -1]), (memory, lengths, group, prefixes)

    def select(self, state, rows):
        memory, lengths, group, prefixes = state
        return memory, lengths, group, prefixes[rows]

    def select_utterances(self, state, keep):
        memory, lengths, group, prefixes = state
        rows = (keep[:, None] * group + torch.arange(group)).reshape(-1)
        return memory[keep], lengths[keep], group, prefixes[rows]


def _beam(model, memory, lengths, options, joint: bool, scorer=None):
    with torch.inference_mode():
        ctc = model.ctc_log_probs(memory) if joint else None
        return beam_search(scorer or DecoderScorer(model.decoder), memory, lengths, options, ctc)


def _one_at_a_time(model, memory, options, joint):
    out = []
    for n, length in enumerate(LENGTHS.tolist()):
        out += _beam(model, memory[n : n + 1, :length], LENGTHS[n : n + 1], options, joint)
    return out


def _assert_same(results_a, results_b):
    def tokens(results):
        return [[h.tokens for h in hyps] for hyps in results]

    assert tokens(results_a) == tokens(results_b)
    for hyps_a, hyps_b in zip(results_a, results_b):
        for a, b in zip(hyps_a, hyps_b):
            assert a.score == pytest.approx(b.score, abs=1e-4)


def _teacher_forced(model, memory, length, tokens) -> float:
    """Decoder log P(tokens, <eos>) by one full forward pass."""
    inputs = torch.tensor([[SOS_EOS_ID] + tokens])
    logits, _ = model.decoder(inputs, memory[None, :length], torch.tensor([length]))
    log_probs = next_token_log_probs(logits[0])
    return float(log_probs.gather(1, torch.tensor([tokens + [SOS_EOS_ID]]).T).sum())


def _ctc(model, memory, length, tokens) -> float:
    log_probs = model.ctc_log_probs(memory[None, :length])  # (1, T, V)
    return -float(
        F.ctc_loss(
            log_probs.transpose(0, 1),
            torch.tensor([tokens or [3]]),  # an empty target still needs a (1, 1) tensor
            torch.tensor([length]),
            torch.tensor([len(tokens)]),
            blank=0,
            reduction="sum",
        )
    )


def test_options_are_checked_and_errors_name_the_option():
    assert DecodeOptions().method == "joint_beam"
    for kwargs, name in [
        ({"method": "viterbi"}, "method"),
        ({"beam": 0}, "beam"),
        ({"ctc_weight": 1.5}, "ctc_weight"),
        ({"max_length_ratio": 0.0}, "max_length_ratio"),
        ({"batch_size": 0}, "batch_size"),
        ({"length_norm": True, "length_bonus": 0.5}, "length_bonus"),
        ({"pre_beam_ratio": 0.5}, "pre_beam_ratio"),
    ]:
        with pytest.raises(ValueError, match=name):
            DecodeOptions(**kwargs)


def test_ranker_and_end_rules():
    assert Ranker().rank(-6.0, 3) == -6.0
    assert Ranker(length_norm=True, alpha=1.0).rank(-6.0, 3) == -2.0
    assert Ranker(bonus=0.5).rank(-6.0, 3) == -4.5
    score, limit = torch.tensor([-4.0]), torch.tensor([9])
    # The bound: a 2-token prefix may end with 3..10 tokens counting <eos>.
    assert Ranker().best_possible(score, 2, limit).item() == -4.0
    assert Ranker(bonus=0.5).best_possible(score, 2, limit).item() == -4.0 + 0.5 * 10
    assert Ranker(bonus=-0.5).best_possible(score, 2, limit).item() == -4.0 - 0.5 * 3
    assert Ranker(length_norm=True).best_possible(score, 2, limit).item() == pytest.approx(-0.4)
    assert max_token_lengths(torch.tensor([30, 7, 1]), 0.5).tolist() == [15, 3, 1]
    inf = float("inf")
    done = utterances_done(
        torch.tensor([-3.0, -3.0, -inf, -3.0]),  # best finished
        torch.tensor([[-2.0, -9.0], [-3.5, -inf], [-inf, -inf], [-2.0, -2.5]]),  # alive bounds
        torch.tensor([1, 1, 0, 2]),  # finished so far
        beam=2,
    )
    # can still improve | cannot | nothing alive | the beam is full of finished hypotheses
    assert done.tolist() == [False, True, True, True]


def test_beam_of_one_is_greedy(model, memory):
    options = DecodeOptions(method="attention_beam", beam=1)
    with torch.inference_mode():
        greedy = attention_greedy(DecoderScorer(model.decoder), memory, LENGTHS, options)
    beam = _beam(model, memory, LENGTHS, options, joint=False)
    _assert_same(greedy, beam)
    assert len({len(h[0].tokens) for h in greedy}) > 1  # not a degenerate case


@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
def test_batched_beam_search_equals_one_utterance_at_a_time(model, memory, joint):
    options = DecodeOptions(beam=4)
    batched = _beam(model, memory, LENGTHS, options, joint)
    _assert_same(batched, _one_at_a_time(model, memory, options, joint))
    # Hypotheses differ between utterances, and the n-best lists hold several entries.
    assert len({tuple(hyps[0].tokens) for hyps in batched}) > 1
    assert max(len(hyps) for hyps in batched) > 1


@pytest.mark.parametrize("joint", [False, True], ids=["attention_beam", "joint_beam"])
def test_cached_decoder_gives_the_search_of_full_recomputation(model, memory, joint):
    options = DecodeOptions(beam=3)
    cached = _beam(model, memory, LENGTHS, options, joint)
    reference = _beam(model, memory, LENGTHS, options, joint, scorer=FullRecomputeScorer(model.decoder))
    _assert_same(cached, reference)
    with torch.inference_mode():
        greedy = attention_greedy(DecoderScorer(model.decoder), memory, LENGTHS, options)
        greedy_ref = attention_greedy(FullRecomputeScorer(model.decoder), memory, LENGTHS, options)
    _assert_same(greedy, greedy_ref)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3, 1.0])
def test_hypothesis_scores_are_the_recomputed_weighted_log_probs(model, memory, ctc_weight):
    options = DecodeOptions(beam=3, ctc_weight=ctc_weight)
    results = _beam(model, memory, LENGTHS, options, joint=ctc_weight > 0)
    with torch.inference_mode():
        for n, hyps in enumerate(results):
            length = int(LENGTHS[n])
            for hyp in hyps:
                attention = _teacher_forced(model, memory[n], length, hyp.tokens)
                assert hyp.attention == pytest.approx(attention, abs=1e-3)
                if ctc_weight == 0.0:
                    assert hyp.ctc is None and hyp.score == pytest.approx(attention, abs=1e-3)
                    continue
                ctc = _ctc(model, memory[n], length, hyp.tokens)
                assert hyp.ctc == pytest.approx(ctc, abs=1e-3)
                joint = (1 - ctc_weight) * attention + ctc_weight * ctc
                assert hyp.score == pytest.approx(joint, abs=1e-3)
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_length_limit_is_respected_and_eos_is_forced_there(memory):
    model = _model(eos_bias=-20.0)  # <eos> never wins on its own
    ratio = 0.3
    limits = max_token_lengths(LENGTHS, ratio).tolist()  # [9, 6, 4, 2]
    with torch.inference_mode():
        for method in ("attention_greedy", "attention_beam", "joint_beam", "attention_rescoring"):
            options = DecodeOptions(method=method, beam=3, max_length_ratio=ratio)
            results = search_encoded(model, memory, LENGTHS, options)
            for hyps, limit in zip(results, limits):
                if method == "attention_rescoring":  # CTC proposals: bounded by frames only
                    assert all(len(h.tokens) <= LENGTHS.max() for h in hyps)
                    continue
                assert all(len(h.tokens) <= limit for h in hyps)
                assert len(hyps[0].tokens) == limit and math.isfinite(hyps[0].score)


def test_rescoring_picks_the_best_weighted_ctc_nbest_candidate(model, memory):
    options = DecodeOptions(method="attention_rescoring", beam=5, ctc_weight=0.4)
    with torch.inference_mode():
        ctc_log_probs = model.ctc_log_probs(memory)
        results = attention_rescoring(model.decoder, memory, LENGTHS, ctc_log_probs, options)
        for n, hyps in enumerate(results):
            length = int(LENGTHS[n])
            nbest = ctc_prefix_beam_search(ctc_log_probs[n, :length], beam=5)
            assert sorted(h.tokens for h in hyps) == sorted(tokens for tokens, _ in nbest)
            ctc = ctc_sequence_log_probs(ctc_log_probs[n, :length], [h.tokens for h in hyps])
            combined = []
            for hyp, ctc_score in zip(hyps, ctc.tolist()):
                attention = _teacher_forced(model, memory[n], length, hyp.tokens)
                assert hyp.attention == pytest.approx(attention, abs=1e-3)
                assert hyp.ctc == pytest.approx(ctc_score, abs=1e-4)
                combined.append(0.6 * attention + 0.4 * ctc_score)
                assert hyp.score == pytest.approx(combined[-1], abs=1e-3)
            assert combined[0] == pytest.approx(max(combined), abs=1e-6)
    # The decoder changes the CTC order somewhere: rescoring is not a no-op here.
    ctc_best = [ctc_prefix_beam_search(ctc_log_probs[n, : int(LENGTHS[n])], 5)[0][0] for n in range(4)]
    assert any(hyps[0].tokens != best for hyps, best in zip(results, ctc_best))


def test_length_bonus_favours_longer_hypotheses(model, memory):
    plain = _beam(model, memory, LENGTHS, DecodeOptions(beam=4), joint=False)
    bonus = _beam(model, memory, LENGTHS, DecodeOptions(beam=4, length_bonus=2.0), joint=False)
    assert sum(len(h[0].tokens) for h in bonus) > sum(len(h[0].tokens) for h in plain)
    for hyps in bonus:
        for hyp in hyps:
            assert hyp.score == pytest.approx(hyp.attention + 2.0 * (len(hyp.tokens) + 1), abs=1e-4)
