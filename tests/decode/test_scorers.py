"""The decoder scorer and weighted combination."""

import math

import pytest
import torch

from asr.decode.scorers import DecoderScorer, Selection, combine


def test_combine_weights_the_parts_and_drops_those_of_weight_zero():
    att, ctc = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, float("-inf")])
    got = combine({"decoder": att, "ctc": ctc}, {"decoder": 0.7, "ctc": 0.3})
    assert got[0].item() == pytest.approx(0.7 * -1.0 + 0.3 * -3.0) and got[1].item() == float("-inf")
    # weight 0: the -inf part neither counts nor turns into NaN
    assert combine({"decoder": att, "ctc": ctc}, {"decoder": 1.0, "ctc": 0.0}).tolist() == [-1.0, -2.0]
    with pytest.raises(ValueError, match="positive weight"):
        combine({"ctc": ctc}, {"ctc": 0.0})


def test_decoder_scorer_totals_follow_the_selected_hypotheses(model, memory, lengths):
    scorer = DecoderScorer(model.decoder, capacity=2)  # grows past its capacity
    with torch.inference_mode():
        state = scorer.init(memory, lengths, group=2)
        totals = torch.zeros(8)
        for step in range(4):
            full = scorer.score(state, None)  # (8, V)
            assert full.tokens.shape == (8, model.vocab_size)
            candidates = torch.tensor([[3, 5]] * 8)
            assert torch.equal(scorer.score(state, candidates).tokens, full.tokens.gather(1, candidates))
            assert torch.equal(full.eos, full.tokens[:, 2])
            assert math.isinf(full.tokens[0, 0].item())  # the CTC blank is never chosen
            rows = torch.tensor([1, 0, 2, 2, 4, 5, 7, 6])  # reorder and duplicate within utterances
            tokens = torch.tensor([3, 4, 5, 6, 7, 8, 9, 10])
            state = scorer.select(full.state, Selection(rows, tokens, tokens))
            totals = full.tokens[rows, tokens]
            assert torch.equal(state.total, totals)
        kept = scorer.select_utterances(state, torch.tensor([1, 3]))
        assert torch.equal(kept.total, totals[[2, 3, 6, 7]]) and kept.cache.steps == 4
