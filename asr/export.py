"""The encoder and CTC head of a native model as an ONNX graph, checked against onnxruntime.

The graph takes the model's normalised log-mel features, ``feats`` (B, T, F) float32 and
``lengths`` (B,) int64, and gives ``log_probs`` (B, T', V), CTC log-probabilities, and
``out_lengths`` (B,): what CTC greedy or prefix beam search needs, in any ONNX runtime. Batch
and time are dynamic axes. The features stay outside the graph (compute them with the model's
frontend and CMVN, :meth:`asr.model.ASRModel.features`, or any log-mel code that matches them):
an STFT in ONNX is what runtimes disagree on most.

Exported with torch's TorchScript-based ONNX exporter (``dynamo=False``). torch.export, the
newer path, refuses this encoder (measured with torch 2.14: its data-dependent branches, such as
the unmasked attention kernel when nothing is padded, are not traceable without rewriting them).
The tracer records one branch of each, the padded one; the parity check below runs the graph on
other batch sizes and lengths than the traced ones to show the result does not depend on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from asr import cpu
from asr.model import ASRModel

OPSET = 17
INPUTS = ("feats", "lengths")
OUTPUTS = ("log_probs", "out_lengths")


class ExportError(ValueError):
    """A model or environment that cannot be exported (the message says why)."""


class EncoderCTC(nn.Module):
    """feats (B, T, F), lengths (B,) -> CTC log-probs (B, T', V), their lengths (B,)."""

    def __init__(self, model: ASRModel):
        super().__init__()
        self.model = model

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        encoded, out_lengths = self.model.encoder(feats, lengths)
        return self.model.ctc_log_probs(encoded), out_lengths


@dataclass(frozen=True)
class Parity:
    """onnxruntime against torch on inputs the export did not trace."""

    max_abs_diff: float  # of the log-probs, over the valid frames
    lengths_equal: bool
    greedy_equal: bool  # the CTC best paths (argmax per valid frame)

    @property
    def ok(self) -> bool:
        return self.lengths_equal and self.greedy_equal and self.max_abs_diff <= 1e-3


def export_onnx(model: ASRModel, path: str | Path, seconds: float = 2.0) -> Path:
    """Write the encoder + CTC graph of ``model`` to ``path`` (traced on two utterances of
    ``seconds`` and 0.7 of it), and beside it ``<path>.json``: the input's feature settings."""
    if model.ctc is None:
        raise ExportError("the export holds the encoder and CTC head; this model has no CTC head (model.ctc_head: false)")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ExportError("exporting to ONNX needs the onnx package: pip install 'asr[export]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    feats, lengths = example_features(model, (seconds, 0.7 * seconds))
    axes = {"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
            "log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"}}  # fmt: skip
    model = model.eval()
    with torch.no_grad(), cpu.fast(False):  # plain F.linear: asr.cpu's few-row path is a CPU speedup, not a graph
        torch.onnx.export(EncoderCTC(model), (feats, lengths), str(path), input_names=list(INPUTS),
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=OPSET, dynamo=False)  # fmt: skip
    features = model.config.features
    info = {"inputs": {"feats": "(batch, frames, n_mels) float32, normalised log-mels", "lengths": "(batch,) int64 frames"},
            "outputs": {"log_probs": "(batch, out_frames, vocab) CTC log-probabilities", "out_lengths": "(batch,) int64"},
            "sample_rate": features.sample_rate, "n_mels": features.n_mels, "vocab_size": model.vocab_size,
            "blank_id": 0, "opset": OPSET}  # fmt: skip
    Path(f"{path}.json").write_text(json.dumps(info, indent=2) + "\n")
    return path


def example_features(model: ASRModel, seconds: tuple[float, ...], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Normalised features of noise utterances of these lengths, zero-padded: (B, T, F), (B,)."""
    rate = model.config.features.sample_rate
    generator = torch.Generator().manual_seed(seed)
    sizes = [max(1, int(s * rate)) for s in seconds]
    waves = torch.zeros(len(sizes), max(sizes))
    for row, size in enumerate(sizes):
        waves[row, :size] = 0.1 * torch.randn(size, generator=generator)
    with torch.no_grad():
        return model.features(waves, torch.tensor(sizes))


def check_parity(model: ASRModel, path: str | Path, seconds: tuple[float, ...] = (3.1, 1.3, 0.6)) -> Parity:
    """Run the exported graph with onnxruntime on utterances of other lengths and batch size
    than the traced ones, and compare with torch."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("the parity check needs onnxruntime: pip install 'asr[export]'") from None
    feats, lengths = example_features(model, seconds, seed=1)
    with torch.no_grad(), cpu.fast(False):
        expected, expected_lengths = EncoderCTC(model.eval())(feats, lengths)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, got_lengths = session.run(list(OUTPUTS), {"feats": feats.numpy(), "lengths": lengths.numpy()})
    got, got_lengths = torch.from_numpy(got), torch.from_numpy(got_lengths)
    lengths_equal = bool(torch.equal(got_lengths, expected_lengths))
    diff, greedy = 0.0, lengths_equal
    for row, length in enumerate(expected_lengths.tolist()):
        a, b = got[row, :length], expected[row, :length]
        diff = max(diff, float((a - b).abs().max())) if length else diff
        greedy = greedy and bool(torch.equal(a.argmax(-1), b.argmax(-1)))
    return Parity(diff, lengths_equal, greedy)
