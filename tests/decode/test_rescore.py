"""Attention rescoring: the decoder reorders the CTC prefix beam's n-best list by the joint score."""

import pytest
import torch

from asr.decode.ctc import ctc_prefix_beam_search, ctc_sequence_log_probs
from asr.decode.options import DecodeOptions
from asr.decode.rescore import attention_rescoring


def test_rescoring_picks_the_best_weighted_ctc_nbest_candidate(model, memory, lengths, teacher_forced):
    options = DecodeOptions(method="attention_rescoring", beam=5, ctc_weight=0.4)
    with torch.inference_mode():
        ctc_log_probs = model.ctc_log_probs(memory)
        results = attention_rescoring(model.decoder, memory, lengths, ctc_log_probs, options)
        for n, hyps in enumerate(results):
            length = int(lengths[n])
            nbest = ctc_prefix_beam_search(ctc_log_probs[n, :length], beam=5)
            assert sorted(h.tokens for h in hyps) == sorted(tokens for tokens, _ in nbest)
            ctc = ctc_sequence_log_probs(ctc_log_probs[n, :length], [h.tokens for h in hyps])
            combined = []
            for hyp, ctc_score in zip(hyps, ctc.tolist()):
                attention = teacher_forced(model, memory[n], length, hyp.tokens)
                assert hyp.attention == pytest.approx(attention, abs=1e-3)
                assert hyp.ctc == pytest.approx(ctc_score, abs=1e-4)
                combined.append(0.6 * attention + 0.4 * ctc_score)
                assert hyp.score == pytest.approx(combined[-1], abs=1e-3)
            assert combined[0] == pytest.approx(max(combined), abs=1e-6)
    # The decoder changes the CTC order somewhere: rescoring is not a no-op here.
    ctc_best = [ctc_prefix_beam_search(ctc_log_probs[n, : int(lengths[n])], 5)[0][0] for n in range(4)]
    assert any(hyps[0].tokens != best for hyps, best in zip(results, ctc_best))
