"""``nn.Linear`` with a faster CPU path for a few rows: the layers of a decoding step.

On a CPU, ``F.linear`` of a few rows (N, D) runs in MKL as N matrix-vector products over the
transposed (D, V) view of the weight, each at a fraction of memory bandwidth. A decoding step
reads every decoder weight once for one to ten rows, and they are not in cache (Whisper tiny.en's
51,864 x 384 output layer alone is 80 MB), so that is what a step costs. Computed as
``weight @ x.T`` (the weight as stored, the rows as columns), 2 to 10 rows are one pass over the
weight. One row goes in with a zero row beside it, since a one-column product takes the slow
matrix-vector path again. Measured by bench/linear_rows.py (2026-12-01, 2-core EPYC): that
output layer takes 4.8 ms for 1 row and 9.0 ms for 2 with ``F.linear``, 1.5 and 1.6 ms so; a
whole tiny.en decoder step for one hypothesis 8.3 against 4.0 ms, for two 14.4 against 4.6 ms.
The small layers alone, with their weights in cache, are a little slower so (20 against 9 us
for 384 x 384), but in a step they are not in cache, and the step is fastest with every layer
in this form. Past about 10 rows both forms are the same kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEW_ROWS = 10  # up to here weight @ x.T wins; above, both forms run the same kernel


def project_rows(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., D), weight (V, D), bias (V,) or None -> x @ weight.T + bias, (..., V)."""
    rows = x.numel() // max(x.shape[-1], 1)
    if x.device.type != "cpu" or not 1 <= rows <= FEW_ROWS:
        return F.linear(x, weight, bias)
    flat = x.reshape(rows, x.shape[-1])
    columns = flat if rows > 1 else torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
    out = (weight @ columns.t()).t()[:rows].contiguous()  # one pass over the weight for all columns
    out = out if bias is None else out.add_(bias)
    return out.view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear (same parameters and state-dict names) that computes few rows as weight @ x.T."""

    def forward(self, x: Tensor) -> Tensor:
        return project_rows(x, self.weight, self.bias)
