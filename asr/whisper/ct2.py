"""A reader for CTranslate2's ``model.bin`` (the format faster-whisper loads), without ctranslate2.

The layout, as ``ModelSpec._serialize`` in ctranslate2/specs/model_spec.py writes it (binary
version 6, little-endian):

    u32 version, string spec name, u32 revision, u32 variable count,
    per variable: string name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, raw bytes,
    u32 alias count, per alias: string alias, string target.

A string is a u16 length (with the trailing NUL), the UTF-8 bytes, and the NUL. dtype ids follow
``DataType`` in include/ctranslate2/types.h: float32, int8, int16, int32, float16, bfloat16.
Quantised weights (int8, int16) come with a ``<name>_scale`` variable, one scale per output row:
the float weight is ``quantised / scale``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import torch
from torch import Tensor

DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
MAX_VERSION = 6


class CT2FormatError(ValueError):
    """A model.bin that is not a complete CTranslate2 model."""


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise CT2FormatError(f"{self.path}: truncated at byte {len(self.data)} (expected more data)")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.unpack("H"))
        return raw[:-1].decode("utf-8", errors="replace")

    def tensor(self) -> tuple[str, Tensor]:
        name = self.string()
        shape = [self.unpack("I") for _ in range(self.unpack("B"))]
        dtype_id, size = self.unpack("B"), self.unpack("I")
        if dtype_id >= len(DTYPES):
            raise CT2FormatError(f"{self.path}: variable {name} has unknown dtype id {dtype_id}")
        raw = bytearray(self.take(size))
        value = torch.frombuffer(raw, dtype=DTYPES[dtype_id]) if size else torch.empty(0, dtype=DTYPES[dtype_id])
        if value.numel() != _numel(shape):
            raise CT2FormatError(f"{self.path}: variable {name} holds {value.numel()} values for shape {shape}")
        return name, value.reshape(shape)


def _numel(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def read_ct2(path: str | Path) -> tuple[str, dict[str, Tensor]]:
    """model.bin -> (spec name, {variable name: tensor}), aliases resolved, quantised weights
    dequantised to float32, other floats (float16, bfloat16) cast to float32."""
    path = Path(path)
    reader = _Reader(path.read_bytes(), path)
    version = reader.unpack("I")
    if not 1 <= version <= MAX_VERSION:
        raise CT2FormatError(f"{path}: not a CTranslate2 model (binary version {version})")
    spec = reader.string() if version >= 2 else ""
    if version >= 2:
        reader.unpack("I")  # revision
    variables = dict(reader.tensor() for _ in range(reader.unpack("I")))
    if version >= 3:
        for _ in range(reader.unpack("I")):
            alias, target = reader.string(), reader.string()
            if target not in variables:
                raise CT2FormatError(f"{path}: alias {alias} points to missing variable {target}")
            variables[alias] = variables[target]
    return spec, _dequantise(variables)


def _dequantise(variables: dict[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        scale = variables.get(name + "_scale")
        if value.dtype in (torch.int8, torch.int16) and scale is not None:
            value = value.float() / scale.float().reshape(-1, *([1] * (value.dim() - 1)))
        elif value.is_floating_point():
            value = value.float()
        out[name] = value
    return out
