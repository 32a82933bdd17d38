"""Keep freed memory in the process while a batch decodes (glibc's malloc; elsewhere a no-op).

glibc hands every block above its mmap threshold (at most 32 MB) straight back to the system
when freed, so the next block of that size arrives as fresh pages that the kernel must fault
in and zero one by one. A decoding batch allocates such blocks over and over: the encoder's
activations at batch 16 (32 MB per feed-forward layer, 300 MB after the subsampling
convolution), the decoder's logits, rescoring's passes. Faulting them in cost more than the
arithmetic on them: at batch 16 the encoder took 1.3 to 2x longer per utterance than at batch 1.

:func:`reused_heap` raises the thresholds for the duration of a decode, so freed blocks are
reused, and afterwards gives the free memory back (``malloc_trim``) and restores glibc's usual
limits, so that memory held between batches does not grow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
KEEP = {M_MMAP_THRESHOLD: 1 << 30, M_TRIM_THRESHOLD: (1 << 31) - 1}  # while decoding: blocks up to 1 GB from the heap
USUAL = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 128 << 10}  # glibc's own steady state and default

_depth = 0


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


def _trim() -> None:
    _LIBC.malloc_trim(0)


@contextmanager
def reused_heap() -> Iterator[None]:
    """Within: freed blocks up to 1 GB stay for reuse. Nested uses restore at the outermost."""
    global _depth
    if _LIBC is None:
        yield
        return
    if _depth == 0:
        _mallopt(KEEP)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _mallopt(USUAL)
            _trim()
