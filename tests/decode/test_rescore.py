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


def test_scoring_in_several_decoder_passes_equals_one_pass(model, memory, lengths, monkeypatch):
    """A batch is scored a few utterances per pass (rescore.POSITIONS_PER_PASS); the split
    changes only the padding, never a score. Utterance 1 has no sequence at all."""
    from asr.decode import rescore

    torch.manual_seed(6)
    counts = [3, 0, 1, 4]
    sequences = [torch.randint(3, 12, (int(n),)).tolist() for n in torch.randint(0, 6, (sum(counts),))]
    owner = torch.tensor([n for n, c in enumerate(counts) for _ in range(c)])
    with torch.inference_mode():
        one_pass = rescore.teacher_forced_log_probs(model.decoder, memory, lengths, owner, sequences)
        monkeypatch.setattr(rescore, "POSITIONS_PER_PASS", 1)  # one utterance per pass
        assert [len(r) for r in rescore._passes(counts, [5, 0, 5, 5])] == [1, 1, 1, 1]
        per_utterance = rescore.teacher_forced_log_probs(model.decoder, memory, lengths, owner, sequences)
    torch.testing.assert_close(per_utterance, one_pass, atol=1e-5, rtol=1e-5)
    # Utterances 2 and 3 together: 2 utterances x 4 rows x 6 positions.
    monkeypatch.setattr(rescore, "POSITIONS_PER_PASS", 2 * 4 * 6)
    assert [(r.start, r.stop) for r in rescore._passes(counts, [5, 0, 2, 5])] == [(0, 2), (2, 4)]
    monkeypatch.setattr(rescore, "POSITIONS_PER_PASS", 2 * 4 * 6 - 1)
    assert [(r.start, r.stop) for r in rescore._passes(counts, [5, 0, 2, 5])] == [(0, 2), (2, 3), (3, 4)]
