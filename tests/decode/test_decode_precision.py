"""Decoding in bf16: the encoder runs under bf16 autocast where the CPU computes bf16 natively,
its output comes back as fp32 for the search; elsewhere it runs fp32 and says so."""

import pytest
import torch

from asr import precision
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch, encode


def _waves():
    torch.manual_seed(1)
    return torch.randn(3, 16000) * 0.1, torch.tensor([16000, 12000, 8000])


def test_bf16_encoder_output_is_fp32_and_close_to_fp32(tiny_model, monkeypatch):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: True)
    model = tiny_model(12, seed=3)
    waves, lengths = _waves()
    full, full_lengths = encode(model, waves, lengths)
    half, half_lengths = encode(model, waves, lengths, "bf16")
    assert half.dtype == torch.float32 and torch.equal(half_lengths, full_lengths)
    assert not torch.equal(half, full)  # bf16 really ran
    assert torch.allclose(half, full, atol=0.1, rtol=0.05)


def test_bf16_without_native_bf16_runs_fp32_and_warns(tiny_model, monkeypatch):
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    model = tiny_model(12, seed=3)
    waves, lengths = _waves()
    with pytest.warns(UserWarning, match="precision=bf16 runs as fp32: this CPU has no native bf16"):
        half, _ = encode(model, waves, lengths, "bf16")
    assert torch.equal(half, encode(model, waves, lengths)[0])
    greedy = DecodeOptions(method="attention_greedy")
    with pytest.warns(UserWarning):
        got = decode_batch(model, waves, lengths, DecodeOptions(method="attention_greedy", precision="bf16"))
    assert [h[0].tokens for h in got] == [h[0].tokens for h in decode_batch(model, waves, lengths, greedy)]


def test_precision_option_is_checked():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8, got 'fp16'"):
        DecodeOptions(precision="fp16")
