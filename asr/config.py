"""Experiment configuration: nested frozen dataclasses <-> YAML.

Loading is strict: an unknown key or a value of the wrong type is an error that names the key
(``model.encoder.layers``) and says what would be valid. Command-line overrides use dotted keys,
``model.encoder.layers=6``, and their values are parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be turned into an ExperimentConfig."""


class _Checked:
    """Mixin: check every field against ``RANGES`` when the dataclass is built (the one place
    value ranges are checked; ``_build`` prefixes the section to the message)."""

    def __post_init__(self) -> None:
        for name, (low, high, low_open) in RANGES.get(type(self).__name__, {}).items():
            values = getattr(self, name)
            for value in values if isinstance(values, tuple) else (values,):
                if not _in_range(value, low, high, low_open):
                    raise ConfigError(f"{name}={value!r} is out of range: {_describe(low, high, low_open)}")


def _in_range(value: Any, low: float | None, high: float | None, low_open: bool) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or value <= high


def _describe(low: float | None, high: float | None, low_open: bool) -> str:
    if high is None:
        return f"it must be {'>' if low_open else '>='} {low}"
    return f"it must be {'>' if low_open else '>='} {low} and <= {high}"


def _at_least(low: float) -> tuple[float, None, bool]:
    return (low, None, False)


def _between(low: float, high: float) -> tuple[float, float, bool]:
    return (low, high, False)


_POSITIVE = (0, None, True)
_FRACTION = (0.0, 1.0, False)


@dataclass(frozen=True)
class DataConfig(_Checked):
    train_manifest: str = ""
    # Instead of train_manifest: a folder written by `asr prepare shards` (asr.data.shards), read
    # shard by shard; each DataLoader worker buckets shard_window of its shards at a time (0: all).
    train_shards: str = ""
    shard_window: int = 1
    dev_manifest: str = ""
    tokenizer: str = ""  # directory written by `asr tokenizer train`
    max_batch_seconds: float = 100.0  # total audio per batch (before padding)
    max_duration: float = 30.0  # longer training utterances are left out
    num_workers: int = 2
    bucket_size: int = 100  # batches drawn from duration-sorted buckets of this many utterances
    vocab_size: int = 0  # SentencePiece units (`asr tokenizer train --config`); 0 = not checked


@dataclass(frozen=True)
class FeatureConfig(_Checked):
    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    cmvn_max_utterances: int = 0  # 0 = every training utterance
    # Whisper variant: "whisper" is Whisper's log-mel (centred STFT, Slaney mels, log10, clamped
    # at max - 8, (x + 4) / 4); pad_seconds > 0 pads (or trims) every input to that length, as
    # Whisper's 30 s window, with frames of 0 ("features", faster-whisper) or zero samples
    # ("audio", openai-whisper); cmvn false uses no mean/variance normalisation.
    frontend: Literal["logmel", "whisper"] = "logmel"
    pad_seconds: float = 0.0
    pad_mode: Literal["features", "audio"] = "features"
    cmvn: bool = True


@dataclass(frozen=True)
class AugmentConfig(_Checked):
    spec_augment: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 27
    time_masks: int = 2
    time_mask_width: int = 40  # widest time mask in frames (when time_mask_ratio is 0)
    time_mask_ratio: float = 0.0  # > 0: widest time mask as a fraction of each utterance (ESPnet)
    time_warp: bool = False
    time_warp_window: int = 5
    speed_perturb: bool = False
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    # Waveform corruption, per utterance after speed perturbation (asr/noise.py): reverberation
    # with probability reverb_prob, then additive noise with probability noise_prob, of a kind
    # drawn from noise_kinds at an SNR drawn uniformly from noise_snr (dB). babble sums
    # babble_talkers (a range) streams of other training utterances; file takes a random stretch
    # of a recording under noise_dir (a folder of audio or a manifest). Impulse responses come
    # from rir_dir, or are generated (RT60 from reverb_rt60 seconds, DRR from reverb_drr dB).
    noise_prob: float = 0.0
    noise_kinds: tuple[Literal["white", "pink", "brown", "babble", "file"], ...] = ("white", "pink", "babble")
    noise_snr: tuple[float, float] = (0.0, 20.0)
    noise_dir: str = ""
    babble_talkers: tuple[int, int] = (3, 7)
    reverb_prob: float = 0.0
    reverb_rt60: tuple[float, float] = (0.2, 0.8)
    reverb_drr: tuple[float, float] = (0.0, 12.0)
    rir_dir: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("noise_snr", "babble_talkers", "reverb_rt60", "reverb_drr"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(f"{name}={[low, high]}: the range's first value must not exceed its second")
        if self.noise_prob > 0 and not self.noise_kinds:
            raise ConfigError("noise_kinds=[]: name at least one of white, pink, brown, babble, file")
        if self.noise_prob > 0 and "file" in self.noise_kinds and not self.noise_dir:
            raise ConfigError("noise_dir is empty: noise_kinds has file, which needs a folder of noise audio")


@dataclass(frozen=True)
class ChunkConfig(_Checked):
    """Dynamic chunk training (WeNet's U2, Zhang et al. 2020, arXiv:2012.05481): each training
    batch attends within chunks of a random size, so one model decodes with full context or
    streaming in chunks. Sizes are in encoder frames (40 ms each at 4x subsampling of 10 ms)."""

    dynamic: bool = False
    max_frames: int = 25  # chunk sizes drawn uniformly from 1..max_frames
    full_context_share: float = 0.5  # share of batches trained with full context
    left_chunks: int = -1  # chunks of left context attended in training; -1 = all
    random_left: bool = False  # draw the left context (0..all chunks) per batch instead


@dataclass(frozen=True)
class EncoderConfig(_Checked):
    layers: int = 12
    heads: int = 4
    ff_dim: int = 2048
    dropout: float = 0.1
    subsampling: Literal[4, 6, 8] = 4
    conv_channels: int = 256
    # Whisper variant: stem "conv1d" is Conv1d k3 s1 + Conv1d k3 s2 with GELU (2x subsampling);
    # positions "whisper" is Whisper's sinusoid table (sin half, cos half) of max_positions rows.
    stem: Literal["conv2d", "conv1d"] = "conv2d"
    positions: Literal["sinusoidal", "whisper"] = "sinusoidal"
    max_positions: int = 0  # 0 = unbounded (computed per input)
    activation: Literal["relu", "gelu"] = "relu"
    type: Literal["transformer", "conformer"] = "transformer"
    conv_kernel: int = 31  # conformer: depthwise convolution kernel
    chunk: ChunkConfig = field(default_factory=ChunkConfig)


@dataclass(frozen=True)
class DecoderConfig(_Checked):
    layers: int = 6
    heads: int = 4
    ff_dim: int = 2048
    dropout: float = 0.1
    # Whisper variant: learned positions (max_positions rows), no sqrt(d_model) embedding
    # scale, output projection tied to the token embedding (no bias).
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = 0  # learned positions: rows; also the longest token sequence
    activation: Literal["relu", "gelu"] = "relu"
    scale_embedding: bool = True
    tie_output: bool = False
    # Tokens fed before the first decoding step (Whisper: <|startoftranscript|>, language,
    # <|transcribe|>, <|notimestamps|>); the last one is fed in place of <sos>.
    prompt: tuple[int, ...] = ()
    suppress: tuple[int, ...] = ()  # token ids never emitted
    suppress_at_start: tuple[int, ...] = ()  # token ids not emitted first (Whisper: " ", <eot>)
    # (layer, head) cross-attention heads that word times read (asr.decode.attention_align);
    # empty: every head of the upper half of the layers. Whisper import: openai-whisper's.
    alignment_heads: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ModelConfig(_Checked):
    d_model: int = 256
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    ctc_head: bool = True  # imported Whisper models: false until fine-tuning adds one
    attention_key_bias: bool = True  # Whisper: false (queries, values and outputs keep theirs)

    def __post_init__(self) -> None:
        super().__post_init__()
        for part, heads in (("encoder", self.encoder.heads), ("decoder", self.decoder.heads)):
            if self.d_model % heads:
                raise ConfigError(f"{part}.heads={heads} does not divide d_model={self.d_model}")


@dataclass(frozen=True)
class TrainConfig(_Checked):
    epochs: int = 50
    max_steps: int = 0  # 0 = no limit; otherwise stop after this many optimizer updates
    lr: float = 2e-3  # peak learning rate, reached at the end of warmup
    warmup_steps: int = 25000
    weight_decay: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 5.0
    accum_steps: int = 1
    # GPUs the schedule is written for. One update takes data.max_batch_seconds x accum_steps x
    # gpus of audio; on another number of GPUs accumulation is adjusted to keep that batch.
    gpus: int = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 1234
    log_every: int = 50  # steps between progress/log lines
    valid_every: int = 0  # steps between validations; 0 = at the end of each epoch
    checkpoint_every: int = 1000  # steps between "last" checkpoints
    keep_best: int = 5
    max_nonfinite: int = 20  # consecutive non-finite losses that stop training
    valid_max_utterances: int = 0  # 0 = the whole dev manifest
    init: str = ""  # start from this experiment's weights (`asr train --init EXP`), e.g. imported Whisper
    freeze_encoder: int = 0  # fine-tuning: freeze the stem and the first N encoder blocks; -1 = all of it
    tensorboard: bool = False  # also write the log as TensorBoard scalars in exp/tensorboard/
    # Multi-GPU (asr.train.distributed): seconds a collective waits for the other ranks before
    # the job ends (a dead or hung rank ends every rank in about this long), and the longer wait
    # of the ranks while rank 0 alone computes CMVN statistics, validates or writes a checkpoint.
    dist_timeout: float = 600.0
    dist_wait_timeout: float = 7200.0


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class LMDataConfig(_Checked):
    tokenizer: str = ""  # the recogniser's tokenizer folder: the LM scores its units
    text: tuple[str, ...] = ()  # text files, one sentence a line (.gz read as gzip)
    manifests: tuple[str, ...] = ()  # manifests whose transcripts are trained on too
    batch_tokens: int = 4000  # units per batch, padding included
    max_units: int = 256  # longer sentences are cut to this many units
    chunk: int = 100_000  # sentences read, sorted by length and batched at a time


@dataclass(frozen=True)
class LMModelConfig(_Checked):
    d_model: int = 256
    heads: int = 4
    layers: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    activation: Literal["relu", "gelu"] = "gelu"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.heads:
            raise ConfigError(f"heads={self.heads} does not divide d_model={self.d_model}")


@dataclass(frozen=True)
class LMTrainConfig(_Checked):
    """The keys of TrainConfig that language-model training uses (same meaning), with LM defaults."""

    epochs: int = 10
    max_steps: int = 0  # 0 = no limit
    lr: float = 1e-3  # peak, at the end of warmup
    warmup_steps: int = 500
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    accum_steps: int = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 0
    log_every: int = 50
    max_nonfinite: int = 20


@dataclass(frozen=True)
class LMConfig:
    """The ``lm`` section: a Transformer language model over the tokenizer's units."""

    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)


@dataclass(frozen=True)
class LMExperimentConfig:
    """An `asr lm train` config file: its one section, ``lm``."""

    lm: LMConfig = field(default_factory=LMConfig)


# Allowed values of each numeric key: (low, high, low excluded); None = unbounded. A flat table,
# so the limits of every key can be read in one place. Upper bounds keep a typo (an extra zero)
# from asking for more memory than any machine has.
RANGES: dict[str, dict[str, tuple[float | None, float | None, bool]]] = {
    "DataConfig": {
        "max_batch_seconds": (0.0, 36000.0, True), "max_duration": (0.0, 3600.0, True),
        "num_workers": _between(0, 64), "bucket_size": _at_least(1), "shard_window": _at_least(0),
    },
    "FeatureConfig": {
        "sample_rate": _between(1000, 192000), "n_mels": _between(1, 512),
        "win_ms": (0.0, 1000.0, True), "hop_ms": (0.0, 1000.0, True), "cmvn_max_utterances": _at_least(0),
    },
    "AugmentConfig": {
        "freq_masks": _between(0, 100), "freq_mask_width": _at_least(0), "time_masks": _between(0, 100),
        "time_mask_width": _at_least(0), "time_warp_window": _at_least(0), "speeds": (0.0, 10.0, True),
        "noise_prob": _FRACTION, "noise_snr": _between(-30.0, 100.0), "babble_talkers": _between(1, 64),
        "reverb_prob": _FRACTION, "reverb_rt60": (0.0, 10.0, True), "reverb_drr": _between(-30.0, 60.0),
    },
    "ChunkConfig": {"max_frames": _between(1, 10000), "full_context_share": _FRACTION, "left_chunks": _between(-1, 10000)},
    "EncoderConfig": {
        "layers": _between(1, 100), "heads": _between(1, 128), "ff_dim": _between(1, 65536),
        "dropout": (0.0, 0.99, False), "conv_channels": _between(1, 8192),
    },
    "DecoderConfig": {
        "layers": _between(1, 100), "heads": _between(1, 128), "ff_dim": _between(1, 65536),
        "dropout": (0.0, 0.99, False),
    },
    "ModelConfig": {"d_model": _between(1, 16384), "ctc_weight": _FRACTION, "label_smoothing": (0.0, 0.99, False)},
    "TrainConfig": {
        "epochs": _between(1, 100000), "max_steps": _at_least(0), "lr": (0.0, 10.0, True),
        "warmup_steps": _at_least(0), "weight_decay": _at_least(0.0), "betas": (0.0, 0.999999, False),
        "grad_clip": _POSITIVE, "accum_steps": _between(1, 1024), "log_every": _at_least(1),
        "valid_every": _at_least(0), "checkpoint_every": _at_least(0), "keep_best": _between(1, 1000),
        "max_nonfinite": _at_least(1), "valid_max_utterances": _at_least(0),
        "dist_timeout": (0.0, 604800.0, True), "dist_wait_timeout": (0.0, 604800.0, True),
    },
    "LMDataConfig": {"batch_tokens": _between(2, 10_000_000), "max_units": _between(1, 100_000), "chunk": _at_least(1)},
    "LMModelConfig": {
        "d_model": _between(1, 16384), "heads": _between(1, 128), "layers": _between(1, 100),
        "ff_dim": _between(1, 65536), "dropout": (0.0, 0.99, False),
    },
}  # fmt: skip
# LMTrainConfig's keys are TrainConfig's, with the same limits.
RANGES["LMTrainConfig"] = {
    f.name: RANGES["TrainConfig"][f.name] for f in dataclasses.fields(LMTrainConfig) if f.name in RANGES["TrainConfig"]
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {_type_name(tp)} fields, got {value!r}")
        return _build(tp, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a {_type_name(tp)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string; accept what Python reads as a number.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported config type {tp}")  # pragma: no cover


def coerce_value(value: Any, tp: Any, key: str) -> Any:
    """Check a value read from YAML against the annotation ``tp`` (as config keys are checked);
    ``null`` is None where ``tp`` allows None."""
    if value is None and type(None) in typing.get_args(tp):
        return None
    return _coerce(value, tp, key)


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown config key {where}{unknown[0]}; valid keys here: {', '.join(sorted(names))}"
        )
    kwargs = {
        name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name)
        for name, value in values.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as err:  # a range check: name the section too
        raise ConfigError(f"{prefix}.{err}" if prefix else str(err)) from None


def to_dict(config: Any) -> dict:
    """The config as plain YAML-friendly data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def from_dict(values: dict) -> ExperimentConfig:
    return _build(ExperimentConfig, values or {})


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides to a nested dict (a copy); values are YAML scalars."""
    values = yaml.safe_load(yaml.safe_dump(values)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return values


def merge(base: dict, values: dict) -> dict:
    """``values`` over ``base``, section by section (a copy; neither is changed)."""
    out = dict(base)
    for key, value in values.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None
) -> ExperimentConfig:
    """Read a YAML config (or the defaults when ``path`` is None) and apply dotted overrides.
    With ``base`` (another experiment's config, for ``asr train --init``) the file's values
    are laid over it, so that the file needs only what it changes."""
    return _load(ExperimentConfig, path, overrides, base)


def load_lm_config(path: str | Path | None, overrides: list[str] | None = None) -> LMConfig:
    """The ``lm`` section of an `asr lm train` config file (or the defaults), with dotted
    overrides ``lm.model.layers=6``."""
    return _load(LMExperimentConfig, path, overrides).lm


def lm_config_from_dict(values: dict) -> LMConfig:
    """An ``lm`` section from plain data (as a checkpoint stores it)."""
    return _build(LMConfig, values or {}, "lm")


def _load(cls: type, path: str | Path | None, overrides: list[str] | None, base: dict | None = None) -> Any:
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    values = apply_overrides(merge(base or {}, values), overrides or [])
    try:
        return _build(cls, values or {})
    except ConfigError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None


def save_config(config: ExperimentConfig | LMExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

