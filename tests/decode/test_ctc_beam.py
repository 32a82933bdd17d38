"""The batched CTC prefix beam search gives each utterance the n-best list of the one-utterance
Python reference (asr.decode.ctc.ctc_prefix_beam_search)."""

import pytest
import torch

from asr.decode.ctc import batched_sequence_log_probs, ctc_prefix_beam_search, ctc_sequence_log_probs
from asr.decode.ctc_beam import ctc_prefix_beam_search_batch


@pytest.mark.parametrize("beam", [1, 3, 8])
@pytest.mark.parametrize("peaky", [1.0, 4.0], ids=["flat", "peaky"])
def test_batched_prefix_beam_search_equals_the_reference_per_utterance(beam, peaky):
    torch.manual_seed(11)
    lengths = torch.tensor([40, 23, 9, 1])
    log_probs = (peaky * torch.randn(4, 40, 7)).log_softmax(-1)
    log_probs[:, :, 0] += 1.0  # blank likelier, as in trained models
    log_probs = log_probs.log_softmax(-1)
    batched = ctc_prefix_beam_search_batch(log_probs, lengths, beam)
    for n, length in enumerate(lengths.tolist()):
        reference = ctc_prefix_beam_search(log_probs[n, :length], beam)
        assert [tokens for tokens, _ in batched[n]] == [tokens for tokens, _ in reference]
        assert [s for _, s in batched[n]] == pytest.approx([s for _, s in reference], abs=1e-9)
    assert len({tuple(nbest[0][0]) for nbest in batched}) == len(batched)  # not a degenerate case
    assert beam == 1 or max(len(nbest[0][0]) for nbest in batched) > 3


def test_batched_sequence_log_probs_equal_one_utterance_at_a_time():
    torch.manual_seed(12)
    lengths = torch.tensor([9, 5])
    log_probs = torch.randn(2, 9, 6).log_softmax(-1)
    sequences = [[3, 3, 5], [], [1, 2, 1], [4], [5, 5, 5]]  # the last needs 5 frames: possible
    owner = torch.tensor([0, 0, 1, 1, 1])
    got = batched_sequence_log_probs(log_probs, lengths, owner, sequences)
    for c, (seq, n) in enumerate(zip(sequences, owner.tolist())):
        alone = ctc_sequence_log_probs(log_probs[n, : int(lengths[n])], [seq])
        assert got[c].item() == pytest.approx(alone.item(), abs=1e-5)
