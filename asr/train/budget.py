"""Memory budget of training: refuse, before the experiment is set up, a model and batch that
cannot fit (the training counterpart of asr.decode.budget).

Every model size in the config's ranges is plausible alone, yet together they can ask for
terabytes (d_model 16384 with 100 encoder and decoder layers of ff_dim 65536: 7.5e11 parameters),
which would otherwise end in an allocator traceback after the CMVN statistics were computed. The
estimate, in bytes:

- 4 per parameter (the fp32 weights), and 12 more per trainable one: its gradient and AdamW's
  two moments. Exact: the parameters are counted on the encoder and decoder built on the meta
  device, which allocates nothing, with train.freeze_encoder applied;
- one micro-batch's activations that the backward pass keeps, a lower bound from the shapes:
  data.max_batch_seconds of audio (padding aside) as encoder frames, per frame and encoder layer
  the block's input, attention output and the feed-forward hidden layer before and after its
  activation (4 * d_model + 2 * ff_dim), the stem's first convolution, and the CTC
  log-probabilities; 2 bytes each under bf16/fp16 autocast. The decoder's share (tokens) and
  attention's are left out.

A lower bound, so that a run that fits is never refused; what it catches is a size that cannot.
It is checked against what the process can still allocate on the device (:mod:`asr.memory`).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from asr.config import ExperimentConfig
from asr.finetune import freeze_encoder
from asr.memory import gib, require
from asr.model import build_encoder
from asr.nn.decoder import Decoder

_WEIGHT, _TRAINABLE = 4, 12  # bytes per parameter: fp32 weight; gradient + AdamW exp_avg + exp_avg_sq


def parameter_counts(config: ExperimentConfig, vocab_size: int) -> tuple[int, int]:
    """(all, trainable) parameters of the model ``config`` describes, counted without allocating them."""
    with torch.device("meta"):
        model = SimpleNamespace(encoder=build_encoder(config), decoder=Decoder(vocab_size, config.model))
    freeze_encoder(model, config.train.freeze_encoder)  # type: ignore[arg-type]  # it reads .encoder only
    params = {id(p): p for part in (model.encoder, model.decoder) for p in part.parameters()}  # tied once
    ctc = (config.model.d_model + 1) * vocab_size if config.model.ctc_head else 0
    total = sum(p.numel() for p in params.values()) + ctc
    return total, sum(p.numel() for p in params.values() if p.requires_grad) + ctc


def activation_bytes(config: ExperimentConfig, vocab_size: int) -> int:
    """A lower bound of the activations one micro-batch of data.max_batch_seconds keeps for backward."""
    feat, enc, d_model = config.features, config.model.encoder, config.model.d_model
    frames = int(config.data.max_batch_seconds * 1000 / feat.hop_ms)  # log-mel frames, padding aside
    time = frames // (2 if enc.stem == "conv1d" else enc.subsampling)
    stem = d_model * frames if enc.stem == "conv1d" else enc.conv_channels * frames * feat.n_mels // 4
    layers = enc.layers * time * (4 * d_model + 2 * enc.ff_dim)
    ctc = time * vocab_size if config.model.ctc_head else 0
    per_value = 2 if config.train.precision in ("bf16", "fp16") else 4
    return per_value * (stem + layers + ctc)


def check_train_memory(config: ExperimentConfig, vocab_size: int, device: torch.device | str = "cpu") -> None:
    """Raise MemoryBudgetError, naming the keys to lower, when the model and a batch cannot fit."""
    total, trainable = parameter_counts(config, vocab_size)
    state = _WEIGHT * total + _TRAINABLE * trainable
    batch = activation_bytes(config, vocab_size)
    model, enc, dec = config.model, config.model.encoder, config.model.decoder
    require(
        state + batch,
        f"training {total / 1e6:,.0f}M parameters (model.d_model={model.d_model}, model.encoder.layers={enc.layers} "
        f"of ff_dim {enc.ff_dim}, model.decoder.layers={dec.layers} of ff_dim {dec.ff_dim}: {gib(state)} of weights, "
        f"gradients and AdamW state) on batches of data.max_batch_seconds={config.data.max_batch_seconds:g} "
        f"(at least {gib(batch)} of activations)",
        "lower model.d_model, model.encoder/decoder.layers or ff_dim, or data.max_batch_seconds",
        device,
    )
