"""int8 inference: every linear layer of a model with int8 weights and dynamically quantised
int8 activations (``torch.ao.nn.quantized.dynamic.Linear``: per-tensor weight scale, activations
quantised per call from their own range, int32 accumulation, fp32 output).

A decoding step at batch 1 is bound by reading the decoder's weights, so weights four times
smaller are most of what int8 buys there (Whisper tiny.en's tied 51,864 x 384 output layer alone
is 80 MB in fp32). The embedding table stays fp32 for the token lookup; a tied output layer gets
an int8 copy of its weight. Convolutions, layer norms and attention products stay fp32. The
quantised model is a copy: the fp32 one is left as it was.

Why this kernel: on this project's 2-core EPYC (AVX512, 1 thread, busy machine, 2026-12-03) the
51,864 x 384 layer took 1.6 / 2.1 / 2.6 ms for 1 / 2 / 10 rows this way (fbgemm), against 14 / 12 /
48 ms in fp32 as ``weight @ x.T`` at the same time and 64 / 139 / 724 ms with torch's weight-only
``_weight_int8pack_mm``. torch marks these quantised tensors deprecated; if a later torch drops
them, int8 fails with its error while fp32 and bf16 are unaffected.

It runs on CPUs only (the fbgemm/x86 or onednn engine torch ships): a model on a GPU is refused.
"""

from __future__ import annotations

import copy
import threading
import weakref

import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear


class Int8Error(ValueError):
    """A model or device int8 inference cannot serve."""


def int8_linear(layer: nn.Linear) -> DynamicInt8Linear:
    """An int8 copy of one linear layer (any nn.Linear subclass, tied weights copied)."""
    plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        plain.weight.copy_(layer.weight)
        if layer.bias is not None:
            plain.bias.copy_(layer.bias)
    plain.qconfig = torch.ao.quantization.default_dynamic_qconfig
    return DynamicInt8Linear.from_float(plain)


def int8_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode, on the CPU) whose linear layers are int8."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise Int8Error("precision int8 runs on a CPU only; use --device cpu (or bf16 on a GPU)")
    if not torch.backends.quantized.supported_engines:
        raise Int8Error("this torch build has no quantised engine for int8 (torch.backends.quantized)")
    quantized = copy.deepcopy(model).eval()
    _replace_linears(quantized)
    return quantized


def _replace_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, int8_linear(child))
        else:
            _replace_linears(child)


_COPIES: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()
_COPYING = threading.Lock()


def int8_model(model: nn.Module) -> nn.Module:
    """The int8 copy of ``model``, made on first use and kept while the model lives (decoding
    calls with ``precision="int8"`` share it; threads too)."""
    with _COPYING:
        if model not in _COPIES:
            _COPIES[model] = int8_copy(model)
        return _COPIES[model]
