"""``nn.Linear`` with a faster CPU path for a few rows: the layers of a decoding step.

On a CPU, ``F.linear`` of a few rows (N, D) runs in MKL as N matrix-vector products over the
transposed (D, V) view of the weight, each at a fraction of memory bandwidth. A decoding step
reads every decoder weight once for one to ten rows, and they are not in cache (Whisper tiny.en's
51,864 x 384 output layer alone is 80 MB), so that is what a step costs: for that output layer,
5.7 ms for 1 row and 10.5 ms for 2 on this project's 2-core EPYC, where one read of the weight
takes 1.4 ms. Computed as ``weight @ x.T`` (the weight as stored, the rows as columns), 2 to 10
rows are one pass over the weight: 1.6 ms for 2 rows, 2.9 ms for 5, 5.0 ms for 10. One row goes
in with a zero row beside it, since a one-column product takes the slow matrix-vector path again.
A whole tiny.en decoder step for one hypothesis went from 7.2 to 4.9 ms (bench/linear_rows.py
measures both forms on the machine at hand). Past about 10 rows both forms are the same kernel.
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
