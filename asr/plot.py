"""Pictures of an experiment, each a PNG with its data beside it as JSON (matplotlib, the ``plot`` extra).

* :func:`attention_data` / :func:`plot_attention`: for one recording, the decoder's
  cross-attention of every output token over the encoder frames, per layer and head (tokens
  down, time across), beside the CTC posteriors of the same tokens with their forced alignment.
  Where the two agree, the decoder attends to the frames where CTC puts each token.
* :func:`training_data` / :func:`plot_training`: loss, dev WER, learning rate and throughput
  against the update step, from ``log.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from asr.experiment import LOG
from asr.files import write_json


class PlotError(RuntimeError):
    """matplotlib is missing, or there is nothing to plot; the message says what to do."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plots need matplotlib: pip install 'asr[plot]' (or pip install matplotlib)") from None
    return plt


# --------------------------------------------------------------------------- attention


@torch.inference_mode()
def attention_data(recognizer, audio, sample_rate: int | None = None, **options: Any) -> dict:
    """Decode ``audio`` whole with a :class:`asr.api.Recognizer` (the decoding options of
    ``asr transcribe``), then run the decoder teacher-forced on <sos> + the best hypothesis to
    read its cross-attention.

    Returns JSON-ready data: ``tokens`` (the pieces, then <eos>), ``frame_seconds``,
    ``attention[layer][head][token][frame]``, ``ctc[token][frame]`` (CTC posterior of each
    token; none for <eos>) and ``ctc_spans`` (first frame, end frame) of the forced alignment.
    """
    from asr.api import decode_options
    from asr.decode.align import FrameClock, align_tokens
    from asr.decode.task import DecodingTask
    from asr.model import with_prompt
    from asr.text.tokenizer import SOS_EOS_ID

    model, tokenizer, device = recognizer.model, recognizer.tokenizer, recognizer.device
    wave = recognizer.load_wave(audio, sample_rate).to(device)
    encoded, lengths = model.encode(wave[None], torch.tensor([wave.numel()], device=device))  # (1, T, D)
    task = DecodingTask.build(model, decode_options(recognizer.has_ctc, **options)[0], tokenizer)
    tokens = task.search(encoded, lengths)[0][0].tokens
    inputs, prefix = with_prompt(torch.tensor([[SOS_EOS_ID, *tokens]], device=device), task.prompt)
    _, weights = model.decoder(inputs, encoded, lengths, need_weights=True, prefix=prefix)  # per layer (1, H, U+1, T)
    has_ctc = recognizer.has_ctc and bool(tokens)  # an imported Whisper model has no CTC head
    log_probs = model.ctc_log_probs(encoded)[0, : int(lengths[0])] if has_ctc else None  # (T, V)
    return {
        "text": " ".join(tokenizer.decode(tokens).split()),
        "tokens": [*tokenizer.pieces(tokens), "<eos>"],
        "frame_seconds": FrameClock.of(model).stride,
        "attention": [w[0, :, :, : int(lengths[0])].float().cpu().tolist() for w in weights],
        "ctc": log_probs[:, tokens].exp().T.float().cpu().tolist() if has_ctc else [],
        "ctc_spans": [[s.start, s.end] for s in align_tokens(log_probs, tokens)] if has_ctc else [],
    }


def plot_attention(data: dict, out: str | Path) -> tuple[Path, Path]:
    """Draw :func:`attention_data` as a grid: a row per layer, a column per head, and the CTC
    alignment in the last column. Writes ``out`` (PNG) and ``out`` with suffix .json."""
    plt = _pyplot()
    layers, heads = len(data["attention"]), len(data["attention"][0])
    tokens, step = data["tokens"], data["frame_seconds"]
    frames = len(data["attention"][0][0][0])
    extent = (0.0, frames * step, len(tokens) - 0.5, -0.5)  # time across, tokens down
    fig, axes = plt.subplots(layers, heads + 1, figsize=(2.2 * (heads + 1), 0.25 * len(tokens) * layers + 1.2),
                             squeeze=False, sharey=True)  # fmt: skip
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer][head]
            ax.imshow(data["attention"][layer][head], aspect="auto", cmap="viridis", extent=extent, interpolation="nearest")
            ax.set_title(f"layer {layer + 1} head {head + 1}", fontsize=7)
        _ctc_panel(axes[layer][heads], data, extent, step)
    for ax in axes[-1]:
        ax.set_xlabel("seconds", fontsize=7)
    for row in axes:
        row[0].set_yticks(range(len(tokens)), tokens, fontsize=6)
        for ax in row:
            ax.tick_params(labelsize=6)
    fig.suptitle(f"decoder cross-attention: {data['text']}", fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, data, out)


def _ctc_panel(ax, data: dict, extent: tuple, step: float) -> None:
    """CTC posteriors of the hypothesis tokens, with the forced-alignment spans outlined."""
    if data["ctc"]:
        rows = [*data["ctc"], [0.0] * len(data["ctc"][0])]  # <eos> has no CTC label
        ax.imshow(rows, aspect="auto", cmap="magma", extent=extent, interpolation="nearest", vmin=0, vmax=1)
    for u, (start, end) in enumerate(data["ctc_spans"]):
        ax.add_patch(_rectangle(start * step, u - 0.5, (end - start) * step, 1.0))
    ax.set_title("CTC (forced alignment)", fontsize=7)


def _rectangle(x: float, y: float, width: float, height: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, fill=False, edgecolor="cyan", linewidth=0.8)


# --------------------------------------------------------------------------- training curves


def training_data(exp_dir: str | Path) -> dict:
    """Series from ``exp/log.jsonl``: per train record step, loss, lr, utterances/s; per
    validation step, loss and WER."""
    path = Path(exp_dir) / LOG
    if not path.is_file():
        raise PlotError(f"{path} not found: train with `asr train` first")
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill
    train = [r for r in records if r.get("event") == "train"]
    valid = [r for r in records if r.get("event") == "valid"]
    if not train and not valid:
        raise PlotError(f"{path} has no train or valid records yet")
    return {
        "train": {key: [r.get(key) for r in train] for key in ("step", "loss", "lr", "utt_per_s", "audio_s_per_s")},
        "valid": {key: [r.get(key) for r in valid] for key in ("step", "loss", "wer")},
    }


def plot_training(data: dict, out: str | Path) -> tuple[Path, Path]:
    """Four panels against the step: loss (train and dev), dev WER, learning rate, throughput."""
    plt = _pyplot()
    train, valid = data["train"], data["valid"]
    fig, axes = plt.subplots(2, 2, figsize=(8, 5.5))
    (loss, wer), (lr, speed) = axes
    loss.plot(train["step"], train["loss"], label="train", linewidth=1)
    loss.plot(valid["step"], valid["loss"], "o-", label="dev", markersize=3)
    loss.set(title="loss (per utterance)", yscale="log")
    loss.legend(fontsize=8)
    wer.plot(valid["step"], [100 * w if w is not None else None for w in valid["wer"]], "o-", markersize=3, color="C2")
    wer.set(title="dev WER %")
    lr.plot(train["step"], train["lr"], color="C3")
    lr.set(title="learning rate")
    speed.plot(train["step"], train["utt_per_s"], color="C4", linewidth=1)
    speed.set(title="throughput (utterances/s)")
    for ax in axes.flat:
        ax.set_xlabel("update step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, plt, data, out)


def _save(fig, plt, data: dict, out: str | Path) -> tuple[Path, Path]:
    from asr.files import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    data_path = out.with_suffix(".json")
    write_json(data_path, data, indent=None)
    return out, data_path
