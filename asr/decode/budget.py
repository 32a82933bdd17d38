"""Memory budget of decoding: estimate what a batch will allocate, refuse what cannot fit.

A beam of 10,000 or a batch of hour-long recordings would otherwise grow until the machine runs
out of memory, taking other processes with it. The estimate is an upper bound of the largest
tensors a search holds at once (float32), from the shapes alone:

- the front end: waveform, STFT and log-mel frames, the first subsampling convolution;
- the encoder: self-attention scores (B, H, T, T) and feed-forward activations;
- the search, with N = B * beam hypotheses and at most L = max_length_ratio * T tokens:
  the decoder cache (self-attention K/V of L positions, cross-attention K/V of T frames, per
  layer), the output distributions (N, V), and for ``joint_beam`` the CTC prefix scorer's
  (T, 2, N, K) forward variables over K = pre_beam_ratio * beam candidates.

It is checked against the memory the process can still get (:mod:`asr.memory`).
"""

from __future__ import annotations

import math

import torch

from asr.config import ExperimentConfig
from asr.decode.options import DecodeOptions
from asr.memory import require

_FLOAT = 4  # bytes


def decode_bytes(config: ExperimentConfig, vocab_size: int, options: DecodeOptions, batch: int, samples: int) -> int:
    """Upper bound of the bytes decoding ``batch`` utterances of ``samples`` samples allocates."""
    options = options.for_model(config.model.ctc_head)
    feat = config.features
    hop = max(1, round(feat.sample_rate * feat.hop_ms / 1000))
    n_fft = 1 << max(1, math.ceil(math.log2(max(2, feat.sample_rate * feat.win_ms / 1000))))
    frames = samples // hop + 1
    enc = config.model.encoder
    d_model, layers = config.model.d_model, config.model.decoder.layers
    time = frames // enc.subsampling + 1
    # Floats alive at once, each term times the copies its step keeps (input and output of an op,
    # or the cache before and after a reorder).
    front = 2 * batch * (samples + frames * (n_fft // 2 + 1) * 2 + enc.conv_channels * frames * feat.n_mels // 4)
    encoder = 3 * batch * time * max(enc.heads * time, enc.ff_dim, d_model)
    group = 1 if options.method in ("ctc_greedy", "attention_greedy") else options.beam
    hyps = batch * group
    tokens = max(1, int(options.max_length_ratio * time)) + 1
    search = 2 * hyps * 2 * layers * (tokens + time) * d_model + 3 * hyps * vocab_size
    if options.method == "joint_beam":
        candidates = math.ceil(options.pre_beam_ratio * options.beam)
        search += 3 * time * (2 * hyps * candidates + batch * vocab_size)
    if options.method == "attention_rescoring":
        search += 3 * (hyps * tokens * vocab_size + time * 2 * hyps * vocab_size)
    return _FLOAT * (front + encoder + search)


def check_decode_memory(
    config: ExperimentConfig, vocab_size: int, options: DecodeOptions, batch: int, samples: int,
    device: torch.device | str = "cpu",
) -> None:
    """Raise MemoryBudgetError, naming the options to lower, when the estimate does not fit."""
    seconds = samples / config.features.sample_rate
    options = options.for_model(config.model.ctc_head)
    require(
        decode_bytes(config, vocab_size, options, batch, samples),
        f"{options.method} decoding of a batch of {batch} (beam {options.beam}, longest audio {seconds:.1f} s)",
        "lower --batch-size or --beam, or cut long recordings (transcribe --segment-seconds)",
        device,
    )
