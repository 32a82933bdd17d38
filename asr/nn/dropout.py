"""Dropout whose random mask is cheap on a CPU: the same Bernoulli(1 - p) mask and 1/(1 - p) scaling.

On a CPU, ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which outside Intel
CPUs (there it calls MKL) is a serial, locked loop over torch's Mersenne Twister: 8% of a 100h
Transformer training step at 1 thread, 15% at 2 on an AMD EPYC (bench/train_profile.py).
Here the mask comes from numpy's PCG64 instead, 32 random bits per element (``u < (1-p) 2^32``,
a keep probability within 2^-32 of 1 - p), about five times faster; its seed is drawn from
torch's default generator, so ``torch.manual_seed`` and the saved RNG states of a checkpoint
still fix every mask.
Other devices keep torch's fused dropout.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def keep_mask(shape: torch.Size, p: float) -> Tensor:
    """(shape) bool on the CPU, True with probability 1 - ``p`` independently per element."""
    numel = shape.numel()
    seed = int(torch.randint(2**62, ()))  # from torch's generator: torch.manual_seed fixes the mask
    bits = np.random.Generator(np.random.PCG64(seed)).bit_generator.random_raw((numel + 1) // 2)
    threshold = np.uint32(min(round((1.0 - p) * 2**32), 2**32 - 1))
    return torch.from_numpy(bits.view(np.uint32)[:numel] < threshold).view(shape)


class _MaskedScale(torch.autograd.Function):
    """x * mask with a mask of 0 and 1/(1-p), saved for the backward pass (as F.dropout saves it)."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        mask = keep_mask(x.shape, p).to(x.dtype).div_(1.0 - p)  # as torch scales: noise.div_(1 - p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)`` with the CPU mask drawn by :func:`keep_mask`."""
    if not training or p == 0.0 or x.numel() == 0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, p)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no parameters) through :func:`dropout`."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
