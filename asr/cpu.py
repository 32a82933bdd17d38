"""CPU-only speedups, in one place, and the one switch that turns them off.

Each computes what the plain torch call computes (tests/test_cpu.py compares them), only faster
on a CPU; on other devices the plain call runs:

- :func:`linear`: a layer applied to 1-10 rows (a decoding step) as ``weight @ x.T``;
- :func:`dropout`: the Bernoulli mask drawn by numpy instead of torch's serial ``bernoulli_``;
- :func:`attention_by_parts`: training attention with dropout as explicit products instead of
  SDPA's CPU fallback;
- :func:`keep_freed_memory`: glibc keeps freed blocks for the next batch (a process setting).

The switch: ``ASR_CPU_FAST=0`` in the environment (read when asr is imported), or
``asr.cpu.set_fast(False)`` / ``with asr.cpu.fast(False):`` in Python, sends every layer to
torch's own kernel (``F.linear``, ``F.dropout``, ``scaled_dot_product_attention``). It is one
setting for the whole process, not per thread. With it on (the default) the first three are
used; the fourth changes the host process's allocator, so the library never makes it by itself:
the `asr decode` and `asr transcribe` commands do (unless ``ASR_CPU_FAST=0``), and a program
using the Python API may call :func:`keep_freed_memory` itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.precision import cpu_autocast_on

ENV = "ASR_CPU_FAST"


def _from_env() -> bool:
    value = os.environ.get(ENV, "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"{ENV}={value!r}: expected 1 (CPU speedups on, the default) or 0 (plain torch)")
    return value == "1"


_fast = _from_env()


def is_fast() -> bool:
    """Whether the CPU speedups are on (``ASR_CPU_FAST``, :func:`set_fast`)."""
    return _fast


def set_fast(on: bool) -> None:
    """Turn the CPU speedups on or off for the whole process."""
    global _fast
    _fast = bool(on)


@contextlib.contextmanager
def fast(on: bool) -> Iterator[None]:
    """The CPU speedups on or off inside the block (process-wide), as before after it."""
    before = _fast
    set_fast(on)
    try:
        yield
    finally:
        set_fast(before)


# --------------------------------------------------------------------------- few-row linear layers
# On a CPU, ``F.linear`` of a few rows (N, D) runs in MKL as N matrix-vector products over the
# transposed (D, V) view of the weight, each at a fraction of memory bandwidth. A decoding step
# reads every decoder weight once for one to ten rows, and they are not in cache (Whisper tiny.en's
# 51,864 x 384 output layer alone is 80 MB), so that is what a step costs. Computed as
# ``weight @ x.T`` (the weight as stored, the rows as columns), 2 to 10 rows are one pass over the
# weight. One row goes in with a zero row beside it, since a one-column product takes the slow
# matrix-vector path again. Measured by bench/linear_rows.py (2026-12-01, 2-core EPYC): that
# output layer takes 4.8 ms for 1 row and 9.0 ms for 2 with ``F.linear``, 1.5 and 1.6 ms so; a
# whole tiny.en decoder step for one hypothesis 8.3 against 4.0 ms, for two 14.4 against 4.6 ms.
# The small layers alone, with their weights in cache, are a little slower so (20 against 9 us
# for 384 x 384), but in a step they are not in cache, and the step is fastest with every layer
# in this form. Past about 10 rows both forms are the same kernel.

FEW_ROWS = 10  # up to here weight @ x.T wins; above, both forms run the same kernel


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear``: x (..., D), weight (V, D), bias (V,) or None -> x @ weight.T + bias, (..., V)."""
    rows = x.numel() // max(x.shape[-1], 1)
    if not _fast or x.device.type != "cpu" or not 1 <= rows <= FEW_ROWS:
        return F.linear(x, weight, bias)
    flat = x.reshape(rows, x.shape[-1])
    columns = flat if rows > 1 else torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
    out = (weight @ columns.t()).t()[:rows].contiguous()  # one pass over the weight for all columns
    out = out if bias is None else out.add_(bias)
    return out.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear (same parameters and state-dict names) through :func:`linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


# --------------------------------------------------------------------------- dropout
# On a CPU, ``F.dropout`` draws its mask with ``bernoulli_``, which outside Intel CPUs (there it
# calls MKL) is a serial, locked loop over torch's Mersenne Twister: 8% of a 100h Transformer
# training step at 1 thread, 15% at 2 on an AMD EPYC (bench/train_profile.py). Here the mask comes
# from numpy's PCG64 instead, 32 random bits per element (``u < (1-p) 2^32``, a keep probability
# within 2^-32 of 1 - p), about five times faster; its seed is drawn from torch's default
# generator, so ``torch.manual_seed`` and the saved RNG states of a checkpoint still fix every mask.


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
    """``F.dropout(x, p, training)``, with the CPU mask drawn by :func:`keep_mask`."""
    if not training or p == 0.0 or x.numel() == 0:
        return x
    if not _fast or x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, p)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no parameters) through :func:`dropout`."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


# --------------------------------------------------------------------------- attention


def attention_by_parts(q: Tensor, mask: Tensor | None, causal: bool, dropout_p: float) -> bool:
    """Whether attention with dropout (queries ``q``) is faster here as explicit products (weights,
    :func:`dropout`, weights @ values) than in SDPA, which on a CPU with dropout takes its math
    path: the same products, plus a "safe" softmax (three more passes over the weights) and torch's
    serial Bernoulli mask. Only where the two agree: fp32 (not under CPU autocast, where attention
    stays in SDPA), every query row attending some key (where the safe softmax changes nothing),
    and at most one of ``mask`` and ``causal`` (SDPA applies one)."""
    if not _fast or dropout_p == 0.0 or q.device.type != "cpu" or cpu_autocast_on(q):
        return False
    if mask is None:
        return True
    return not causal and bool(mask.any(dim=-1).all())


# --------------------------------------------------------------------------- the allocator
# glibc hands every block above its mmap threshold (at most 32 MB) straight back to the system when
# freed, so the next block of that size arrives as fresh pages that the kernel must fault in and
# zero one by one. A decoding batch allocates such blocks over and over: the encoder's activations
# at batch 16 (32 MB per feed-forward layer, 300 MB after the subsampling convolution), the
# decoder's logits, rescoring's passes. Faulting them in cost more than the arithmetic on them: at
# batch 16 the encoder took 1.3 to 2x longer per utterance than at batch 1. Raising the thresholds
# once keeps freed blocks for the next batch and the next call. An earlier version restored glibc's
# limits and trimmed the heap after every decode call: a stream of batch-1 calls then faulted the
# same memory in again each time (ctc_greedy at batch 1 on the 100h model: 0.094 s against 0.076 s
# with the memory kept). The price is that the process keeps the memory of its largest batch
# (decoding checks that estimate against what it may allocate first: asr.decode.budget).

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
KEEP = {M_MMAP_THRESHOLD: 1 << 30, M_TRIM_THRESHOLD: (1 << 31) - 1}  # blocks up to 1 GB from the heap, never trimmed

_kept = False


def _libc() -> ctypes.CDLL | None:
    """glibc, or None on any other C library (musl, macOS, Windows)."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):  # no confstr, or not this name
        return None
    if not version.startswith("glibc"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


_LIBC = _libc()


def _mallopt(settings: dict[int, int]) -> None:
    for parameter, value in settings.items():
        _LIBC.mallopt(parameter, value)


def keep_freed_memory() -> bool:
    """From now on, freed blocks up to 1 GB stay in this process for reuse (glibc; elsewhere, or
    with the switch off, nothing changes). Returns whether the setting is in effect."""
    global _kept
    if _LIBC is not None and _fast and not _kept:
        _mallopt(KEEP)
        _kept = True
    return _kept
