"""Batches for the nn tests: several sequences padded together, as the data loader pads them."""

import torch
from torch.nn.utils.rnn import pad_sequence


def padded(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, ...) tensors -> (B, max L, ...) zero-padded batch and (B,) lengths."""
    return pad_sequence(items, batch_first=True), torch.tensor([len(x) for x in items])
