"""Batches for the nn tests: several sequences padded together, as the data loader pads them."""

import torch
from torch.nn.utils.rnn import pad_sequence


def padded(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, ...) tensors -> (B, max L, ...) zero-padded batch and (B,) lengths."""
    return pad_sequence(items, batch_first=True), torch.tensor([len(x) for x in items])


def assert_batch_equals_alone(encoder, utterances: list[torch.Tensor], feats: torch.Tensor, lengths: torch.Tensor) -> None:
    """``encoder`` gives each of ``utterances`` the same output padded in the batch ``feats``
    (``lengths``) as alone, over the frames its length leaves (atol = rtol = 1e-5)."""
    batch_out, batch_lengths = encoder(feats, lengths)
    for i, utt in enumerate(utterances):
        alone, alone_length = encoder(utt[None], torch.tensor([len(utt)]))
        n = int(alone_length[0])
        assert n == int(batch_lengths[i])
        torch.testing.assert_close(batch_out[i, :n], alone[0], atol=1e-5, rtol=1e-5)
