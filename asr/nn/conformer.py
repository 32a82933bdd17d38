"""Conformer encoder (Gulati et al., 2020, "Conformer: Convolution-augmented Transformer for
Speech Recognition", arXiv:2005.08100), as ESPnet builds it for LibriSpeech (espnet2
``ConformerEncoder`` with ``macaron_style: true``, ``rel_pos_type: latest``,
``activation_type: swish``, ``cnn_module_kernel: 31``, ``normalize_before: true``).

One block (paper, eq. 1; every module is pre-LayerNorm with a residual connection):

    x = x + 1/2 FFN(x)          macaron: half-step feed-forward before ...
    x = x + MHSA_relpos(x)
    x = x + Conv(x)
    x = x + 1/2 FFN(x)          ... and after
    y = LayerNorm(x)

and a final LayerNorm after the last block. The convolutional subsampling in front is the
Transformer encoder's (asr.nn.subsampling), as ESPnet's ``input_layer: conv2d``.

Padding: attention never looks at padded keys, and padded frames are zeroed before the
depthwise convolution (the only other place where frames mix), so a real frame's output does not
depend on how much padding follows it (in eval mode: BatchNorm's batch statistics in training
do see padded frames, as in ESPnet).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.config import ModelConfig
from asr.cpu import Dropout
from asr.nn.masks import lengths_to_mask
from asr.nn.subsampling import ConvSubsampling


def relative_positions(length: int, d_model: int) -> Tensor:
    """Sinusoidal encodings (2*length - 1, d_model) of the relative positions length-1, ..., 0,
    ..., -(length-1), in that order (ESPnet's "latest" RelPositionalEncoding)."""
    position = torch.arange(length - 1, -length, -1, dtype=torch.float32).unsqueeze(1)  # (2T-1, 1)
    rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(2 * length - 1, d_model)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


def rel_shift(scores: Tensor) -> Tensor:
    """(B, H, T, 2T-1) scores against relative positions T-1 .. -(T-1) -> (B, H, T, T) with
    out[..., i, j] = scores[..., i, T-1-i+j], the score of query i against key j at distance
    i - j. Done with the pad-and-reshape of Transformer-XL (Dai et al., 2019, appendix B), as
    ESPnet's ``RelPositionMultiHeadedAttention.rel_shift``; tests check it against indexing."""
    batch, heads, time, width = scores.shape
    padded = F.pad(scores, (1, 0))  # (B, H, T, 2T)
    padded = padded.view(batch, heads, width + 1, time)
    return padded[:, :, 1:].reshape(batch, heads, time, width)[..., :time]


class RelPositionAttention(nn.Module):
    """Multi-head self-attention with relative positional encodings (Dai et al., 2019, section
    3.3; ESPnet "latest"): score(i, j) = ((q_i + u) . k_j + (q_i + v) . W_p p_{i-j}) / sqrt(d_k),
    with learned per-head biases u and v."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.pos = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.head_dim))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.head_dim))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def forward(self, x: Tensor, pos_emb: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, D); pos_emb (2T-1, D) from :func:`relative_positions`; mask (B, 1, 1, T)
        bool, True on keys that may be attended. Returns (B, T, D)."""
        batch, time, d_model = x.shape
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        p = self._split(self.pos(pos_emb).unsqueeze(0))  # (1, H, 2T-1, Dh)
        u = self.pos_bias_u.to(q.dtype)[None, :, None]  # (1, H, 1, Dh)
        v_bias = self.pos_bias_v.to(q.dtype)[None, :, None]
        position_scores = rel_shift((q + v_bias) @ p.transpose(-2, -1))  # (B, H, T, T)
        bias = (position_scores / math.sqrt(self.head_dim)).masked_fill(~mask, float("-inf"))
        dropout = self.dropout if self.training else 0.0
        # SDPA adds the bias to (q + u) . k / sqrt(d_k): the content and position terms.
        out = F.scaled_dot_product_attention(q + u, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout)
        return self.out(out.transpose(1, 2).reshape(batch, time, d_model))


class ConvModule(nn.Module):
    """Pointwise conv (2D channels), GLU, depthwise conv (kernel k), BatchNorm, Swish, pointwise
    conv (Gulati et al., 2020, figure 2)."""

    def __init__(self, d_model: int, kernel: int):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"model.encoder.conv_kernel must be odd (same padding), got {kernel}")
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.norm = nn.BatchNorm1d(d_model)
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """x (B, T, D), valid (B, T) bool -> (B, T, D)."""
        x = F.glu(self.pointwise_in(x.transpose(1, 2)), dim=1)  # (B, D, T)
        x = x.masked_fill(~valid[:, None, :], 0.0)  # padding must not leak into real frames
        x = F.silu(self.norm(self.depthwise(x)))
        return self.pointwise_out(x).transpose(1, 2)


class SwishFeedForward(nn.Sequential):
    def __init__(self, d_model: int, ff_dim: int, dropout: float):
        super().__init__(nn.Linear(d_model, ff_dim), nn.SiLU(), Dropout(dropout), nn.Linear(ff_dim, d_model))


class ConformerBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float, kernel: int):
        super().__init__()
        self.ff_in_norm, self.ff_in = nn.LayerNorm(d_model), SwishFeedForward(d_model, ff_dim, dropout)
        self.attn_norm, self.attn = nn.LayerNorm(d_model), RelPositionAttention(d_model, heads, dropout)
        self.conv_norm, self.conv = nn.LayerNorm(d_model), ConvModule(d_model, kernel)
        self.ff_out_norm, self.ff_out = nn.LayerNorm(d_model), SwishFeedForward(d_model, ff_dim, dropout)
        self.final_norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, pos_emb: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
        """x (B, T, D); pos_emb (2T-1, D); mask (B, 1, 1, T) keys; valid (B, T) frames."""
        x = x + 0.5 * self.dropout(self.ff_in(self.ff_in_norm(x)))
        x = x + self.dropout(self.attn(self.attn_norm(x), pos_emb, mask))
        x = x + self.dropout(self.conv(self.conv_norm(x), valid))
        x = x + 0.5 * self.dropout(self.ff_out(self.ff_out_norm(x)))
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """Drop-in for :class:`asr.nn.encoder.Encoder` when ``model.encoder.type: conformer``."""

    def __init__(self, n_mels: int, config: ModelConfig):
        super().__init__()
        enc = config.encoder
        if enc.chunk.dynamic:  # its depthwise convolution sees the next chunk's frames
            raise ValueError("model.encoder.chunk.dynamic needs model.encoder.type transformer (the Conformer's convolution is not causal)")
        self.d_model = config.d_model
        self.subsampling = ConvSubsampling(n_mels, config.d_model, enc.conv_channels, enc.subsampling)
        self.dropout = Dropout(enc.dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(config.d_model, enc.heads, enc.ff_dim, enc.dropout, enc.conv_kernel)
            for _ in range(enc.layers)
        )
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, F) normalised features -> (B, T', D) encoder output and (B,) lengths T'."""
        x, lengths = self.subsampling(feats, lengths)
        time = x.shape[1]
        # ESPnet scales the frames by sqrt(d_model) here; positions enter through attention only.
        x = self.dropout(x * math.sqrt(self.d_model))
        pos_emb = self.dropout(relative_positions(time, self.d_model).to(x.device, x.dtype))
        valid = lengths_to_mask(lengths, time)  # (B, T')
        mask = valid[:, None, None, :]
        for block in self.blocks:
            x = block(x, pos_emb, mask, valid)
        return self.norm(x), lengths
