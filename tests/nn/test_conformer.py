"""The Conformer encoder: shapes and lengths, padding invariance, the relative-position shift,
and that attention scores depend on relative (not absolute) positions."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.config import EncoderConfig, ModelConfig
from asr.nn.conformer import ConformerEncoder, RelPositionAttention, rel_shift, relative_positions
from tests.support.batches import assert_batch_equals_alone, padded

CONFIG = ModelConfig(
    d_model=32,
    encoder=EncoderConfig(type="conformer", layers=2, heads=4, ff_dim=64, dropout=0.1, conv_channels=8, conv_kernel=7),
)


def _trained_norms(encoder: ConformerEncoder) -> ConformerEncoder:
    """Give BatchNorm running statistics that are not the identity, as after training."""
    for block in encoder.blocks:
        block.conv.norm.running_mean.uniform_(-0.5, 0.5)
        block.conv.norm.running_var.uniform_(0.5, 2.0)
    return encoder


@pytest.mark.parametrize("subsampling", [4, 6])
def test_output_shape_and_lengths_follow_the_subsampling(subsampling):
    config = dataclasses.replace(CONFIG, encoder=dataclasses.replace(CONFIG.encoder, subsampling=subsampling))
    encoder = ConformerEncoder(20, config).eval()
    lengths = torch.tensor([100, 57, 31])
    out, out_lengths = encoder(torch.randn(3, 100, 20), lengths)
    assert torch.equal(out_lengths, encoder.subsampling.output_lengths(lengths))
    assert out.shape == (3, int(out_lengths.max()), 32)
    assert torch.isfinite(out).all()


def test_encoder_output_is_the_same_alone_and_padded_in_a_batch():
    torch.manual_seed(0)
    encoder = _trained_norms(ConformerEncoder(20, CONFIG)).eval()
    utterances = [torch.randn(n, 20) for n in (61, 23, 40)]
    feats, lengths = padded(utterances)
    feats[1, 23:] = 5.0  # garbage in the padding must not matter either
    assert_batch_equals_alone(encoder, utterances, feats, lengths)


def test_without_the_padding_mask_in_the_convolution_padding_would_leak():
    """The check above can fail: zeroing padded frames before the depthwise conv is what keeps
    the last real frames clean (the kernel reaches 3 frames past the end)."""
    torch.manual_seed(0)
    encoder = _trained_norms(ConformerEncoder(20, CONFIG)).eval()
    utt = torch.randn(40, 20)
    feats, lengths = padded([utt, torch.randn(80, 20)])
    conv = encoder.blocks[0].conv
    alone, _ = encoder(utt[None], torch.tensor([40]))
    batch, _ = encoder(feats, lengths)
    torch.testing.assert_close(batch[0, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)
    conv.forward = lambda x, valid: type(conv).forward(conv, x, torch.ones_like(valid))  # no mask
    leaky, _ = encoder(feats, lengths)
    assert not torch.allclose(leaky[0, : alone.shape[1]], alone[0], atol=1e-4)


def test_rel_shift_picks_each_query_key_distance():
    time = 6
    scores = torch.randn(2, 3, time, 2 * time - 1)
    shifted = rel_shift(scores)
    assert shifted.shape == (2, 3, time, time)
    for i in range(time):
        for j in range(time):
            # column c of ``scores`` is relative position time-1-c; query i, key j: i - j
            assert torch.equal(shifted[..., i, j], scores[..., i, time - 1 - (i - j)])


def test_relative_positions_table_runs_from_t_minus_1_down_to_minus_t_plus_1():
    table = relative_positions(5, 8)
    assert table.shape == (9, 8)
    assert torch.equal(table[4], torch.tensor([0.0, 1.0] * 4))  # position 0: sin 0, cos 0
    torch.testing.assert_close(table[0, 0], torch.sin(torch.tensor(4.0)))  # position +4
    torch.testing.assert_close(table[8, 0], torch.sin(torch.tensor(-4.0)))  # position -4


def test_attention_sees_relative_positions_only():
    """A sequence alone, and the same sequence after 5 frames that its queries may not attend:
    its outputs are the same, because scores depend on distances i - j, never on i or j."""
    torch.manual_seed(0)
    attn = RelPositionAttention(16, 2, dropout=0.0).eval()
    x = torch.randn(1, 12, 16)
    alone = attn(x, relative_positions(12, 16), torch.ones(1, 1, 1, 12, dtype=torch.bool))
    shifted = torch.cat([torch.randn(1, 5, 16), x], dim=1)
    keys = (torch.arange(17) >= 5)[None, None, None, :]
    after = attn(shifted, relative_positions(17, 16), keys)
    torch.testing.assert_close(after[:, 5:], alone, atol=1e-5, rtol=1e-5)
    # Absolute positions would change: the position term really does vary with distance.
    assert not torch.allclose(attn(x.flip(1), relative_positions(12, 16), keys[..., 5:]).flip(1), alone, atol=1e-3)


def test_one_training_step_moves_every_parameter():
    torch.manual_seed(0)
    encoder = ConformerEncoder(20, CONFIG).train()
    feats, lengths = padded([torch.randn(n, 20) for n in (50, 30)])
    out, out_lengths = encoder(feats, lengths)
    valid = torch.arange(out.shape[1]) < out_lengths[:, None]
    (out[valid] ** 2).mean().backward()
    no_grad = [n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_bf16_autocast_runs():
    encoder = ConformerEncoder(20, CONFIG).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = encoder(torch.randn(2, 60, 20), torch.tensor([60, 44]))
    assert torch.isfinite(out.float()).all()
