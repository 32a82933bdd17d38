"""asr.nn.dropout: the same Bernoulli(1 - p) mask and 1/(1 - p) scaling as torch's dropout."""

import torch
import torch.nn.functional as F

from asr.nn.dropout import Dropout, dropout, keep_mask


def test_keep_mask_keeps_one_minus_p_of_the_elements_independently():
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([1000, 1000]), 0.1)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1000)
    rate = keep.float().mean().item()
    assert abs(rate - 0.9) < 2e-3  # 6.7 standard deviations of a million draws
    # Neighbours are independent: P(both kept) = 0.81, along rows and down columns.
    assert abs((keep[:, 1:] & keep[:, :-1]).float().mean().item() - 0.81) < 3e-3
    assert abs((keep[1:] & keep[:-1]).float().mean().item() - 0.81) < 3e-3
    assert abs(keep_mask(torch.Size([200_000]), 0.5).float().mean().item() - 0.5) < 5e-3


def test_the_seed_of_torch_fixes_the_mask_and_successive_masks_differ():
    torch.manual_seed(3)
    first, second = keep_mask(torch.Size([4096]), 0.3), keep_mask(torch.Size([4096]), 0.3)
    torch.manual_seed(3)
    assert torch.equal(keep_mask(torch.Size([4096]), 0.3), first)
    assert not torch.equal(first, second)


def test_dropout_scales_kept_values_like_torch_and_its_gradient_is_the_mask():
    p = 0.1
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(5)
    out = dropout(x, p, training=True)
    torch.manual_seed(5)
    mask = dropout(torch.ones(64, 33), p, training=True)
    scale = torch.ones(()).div_(1 - p)  # what torch's dropout multiplies by: noise.div_(1 - p)
    assert set(mask.unique().tolist()) == {0.0, scale.item()}
    torch.testing.assert_close(out, x * mask, rtol=0, atol=0)
    out.backward(torch.full_like(out, 2.0))
    torch.testing.assert_close(x.grad, 2.0 * mask, rtol=0, atol=0)


def test_dropout_matches_torch_in_distribution():
    torch.manual_seed(1)
    x = torch.randn(400_000)
    ours, torchs = dropout(x, 0.2, True), F.dropout(x, 0.2, True)
    for stat in (lambda t: (t == 0).float().mean(), lambda t: t.pow(2).mean()):
        assert abs(stat(ours).item() - stat(torchs).item()) < 1e-2


def test_identity_in_eval_and_at_p_zero_and_all_dropped_at_p_one():
    x = torch.randn(5, 7)
    module = Dropout(0.1).eval()
    assert module(x) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
