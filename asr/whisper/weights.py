"""openai-whisper's parameter names -> the toolkit's, with the vocabulary permutation.

Every converter first produces openai-whisper's ``model_state_dict`` (its names are the shortest
of the three formats), then :func:`toolkit_state` renames it. Shapes are checked against the
dimensions before anything is built, so a mismatch names the source file and the tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.whisper.dims import WhisperDims


class WeightsError(ValueError):
    """A checkpoint whose tensors do not fit its Whisper dimensions."""


def expected_shapes(dims: WhisperDims) -> dict[str, tuple[int, ...]]:
    """openai-whisper name -> shape, for every parameter a checkpoint must hold."""
    d, v = dims.n_audio_state, dims.n_vocab
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.conv1.weight": (d, dims.n_mels, 3), "encoder.conv1.bias": (d,),
        "encoder.conv2.weight": (d, d, 3), "encoder.conv2.bias": (d,),
        "encoder.positional_embedding": (dims.n_audio_ctx, d),
        "encoder.ln_post.weight": (d,), "encoder.ln_post.bias": (d,),
        "decoder.token_embedding.weight": (v, d),
        "decoder.positional_embedding": (dims.n_text_ctx, d),
        "decoder.ln.weight": (d,), "decoder.ln.bias": (d,),
    }  # fmt: skip
    for side, layers in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        attentions = ("attn", "cross_attn") if side == "decoder" else ("attn",)
        for i in range(layers):
            block = f"{side}.blocks.{i}"
            for attn in attentions:
                for proj in ("query", "key", "value", "out"):
                    shapes[f"{block}.{attn}.{proj}.weight"] = (d, d)
                    if proj != "key":
                        shapes[f"{block}.{attn}.{proj}.bias"] = (d,)
                shapes[f"{block}.{attn}_ln.weight"] = shapes[f"{block}.{attn}_ln.bias"] = (d,)
            shapes[f"{block}.mlp.0.weight"], shapes[f"{block}.mlp.0.bias"] = (4 * d, d), (4 * d,)
            shapes[f"{block}.mlp.2.weight"], shapes[f"{block}.mlp.2.bias"] = (d, 4 * d), (d,)
            shapes[f"{block}.mlp_ln.weight"] = shapes[f"{block}.mlp_ln.bias"] = (d,)
    return shapes


def check_shapes(state: dict[str, Tensor], dims: WhisperDims, source: str) -> None:
    for name, shape in expected_shapes(dims).items():
        if name not in state:
            raise WeightsError(f"{source}: no tensor {name} (is this a Whisper checkpoint?)")
        if tuple(state[name].shape) != shape:
            raise WeightsError(
                f"{source}: {name} has shape {tuple(state[name].shape)}, expected {shape} for these dimensions"
            )


_BLOCK_NAMES = {"attn_ln": "self_norm", "attn": "self_attn", "cross_attn_ln": "cross_norm",
                "cross_attn": "cross_attn", "mlp_ln": "ff_norm", "mlp.0": "ff.0", "mlp.2": "ff.3"}  # fmt: skip
_ENCODER_BLOCK_NAMES = {**_BLOCK_NAMES, "attn_ln": "attn_norm", "attn": "attn"}
_TOP_NAMES = {
    "encoder.conv1": "encoder.subsampling.conv1", "encoder.conv2": "encoder.subsampling.conv2",
    "encoder.positional_embedding": "encoder.positions", "encoder.ln_post": "encoder.norm",
    "decoder.token_embedding": "decoder.embed", "decoder.positional_embedding": "decoder.learned_positions.weight",
    "decoder.ln": "decoder.norm",
}  # fmt: skip


def _rename(name: str) -> str:
    parts = name.split(".")
    if parts[1] == "blocks":
        side, index, rest = parts[0], parts[2], ".".join(parts[3:])
        table = _ENCODER_BLOCK_NAMES if side == "encoder" else _BLOCK_NAMES
        for old in sorted(table, key=len, reverse=True):
            if rest.startswith(old + "."):
                return f"{side}.blocks.{index}.{table[old]}{rest[len(old):]}"
        raise WeightsError(f"unexpected Whisper parameter {name}")  # pragma: no cover
    for old, new in _TOP_NAMES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    raise WeightsError(f"unexpected Whisper parameter {name}")  # pragma: no cover


def toolkit_state(state: dict[str, Tensor], dims: WhisperDims, permutation: list[int]) -> dict[str, Tensor]:
    """openai-whisper state -> the toolkit's encoder/decoder parameters (float32), embedding rows
    reordered so that model id i holds Whisper token ``permutation[i]``."""
    out = {}
    for name in expected_shapes(dims):
        out[_rename(name)] = state[name].float().contiguous()
    embed = out["decoder.embed.weight"]
    out["decoder.embed.weight"] = embed[torch.tensor(permutation)].contiguous()
    out["decoder.output.weight"] = out["decoder.embed.weight"]
    return out
