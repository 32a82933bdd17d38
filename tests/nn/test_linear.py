"""asr.nn.linear: the few-rows form computes what nn.Linear computes, for every row count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asr.nn.linear import FEW_ROWS, Linear, project_rows


@pytest.mark.parametrize("rows", [1, 2, 3, FEW_ROWS, FEW_ROWS + 1, 40])
@pytest.mark.parametrize("bias", [True, False])
def test_project_rows_equals_linear(rows: int, bias: bool):
    torch.manual_seed(rows)
    weight, b = torch.randn(3000, 96), torch.randn(3000) if bias else None
    x = torch.randn(rows, 1, 96)  # (N, 1, D): a decoding step's rows
    out = project_rows(x, weight, b)
    assert out.shape == (rows, 1, 3000) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)


def test_one_row_is_not_mixed_with_the_padding_row():
    weight = torch.randn(500, 8)
    x = torch.randn(1, 8)
    out = project_rows(x, weight)
    assert out.shape == (1, 500)
    torch.testing.assert_close(out, x @ weight.t(), rtol=1e-5, atol=1e-5)


def test_linear_keeps_nn_linear_parameters_and_gradients():
    torch.manual_seed(0)
    plain, ours = nn.Linear(16, 32), Linear(16, 32)
    ours.load_state_dict(plain.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 16, requires_grad=True)  # few rows: the weight @ x.T form
    ours(x).square().sum().backward()
    expected = torch.autograd.grad(plain(x).square().sum(), [x, plain.weight, plain.bias])
    for got, want in zip([x.grad, ours.weight.grad, ours.bias.grad], expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
