"""`asr lm train`: fit a :class:`TransformerLM` to sentences, in the tokenizer's units.

    out/
      lm.pt          LM config + weights, and the training options (what decoding needs)
      tokenizer/     the SentencePiece model the units come from (decoding checks it matches)
      log.jsonl      per epoch: loss per unit, perplexity, updates

AdamW with the same warmup + inverse-square-root schedule as the recogniser (asr.train.optim).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console

from asr import files
from asr.lm.data import token_batches
from asr.lm.model import LMConfig, TransformerLM
from asr.text.tokenizer import Tokenizer, load_tokenizer
from asr.train.optim import noam_factor

LM_FILE = "lm.pt"
TOKENIZER = "tokenizer"
LOG = "log.jsonl"


@dataclass(frozen=True)
class LMTrainOptions:
    epochs: int = 10
    batch_tokens: int = 4000  # units per batch (padded)
    lr: float = 1e-3  # peak, at the end of warmup
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class LMSummary:
    updates: int
    loss: float  # mean cross entropy per unit (nats) in the last epoch
    out_dir: Path
    model: TransformerLM


def train_lm(
    sentences: Callable[[], Iterable[str]],
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    shape: dict | None = None,
    options: LMTrainOptions = LMTrainOptions(),
    device: str | torch.device = "cpu",
    console: Console | None = None,
) -> LMSummary:
    """Train on ``sentences()`` (called once per epoch: a fresh pass over the text) and write
    ``out_dir``. ``shape`` sets LMConfig fields other than the vocabulary size."""
    console = console or Console()
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(options.seed)
    model = TransformerLM(LMConfig(vocab_size=tokenizer.vocab_size, **(shape or {}))).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: noam_factor(step, options.warmup_steps))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    updates, loss_per_unit, log = 0, math.nan, []
    for epoch in range(options.epochs):
        start, total, units = time.perf_counter(), 0.0, 0
        for tokens, lengths in token_batches(sentences(), tokenizer, options.batch_tokens, rng):
            loss, count = model.sentence_loss(tokens.to(device), lengths.to(device))
            optimizer.zero_grad(set_to_none=True)
            (loss / count).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            schedule.step()
            updates += 1
            total, units = total + float(loss.detach()), units + count
        if units == 0:
            raise ValueError("no LM training sentences (the text is empty after normalisation)")
        loss_per_unit = total / units
        record = {"event": "epoch", "epoch": epoch, "updates": updates, "loss": loss_per_unit,
                  "perplexity": math.exp(min(loss_per_unit, 50.0)), "seconds": time.perf_counter() - start}  # fmt: skip
        log.append(json.dumps(record))
        console.print(f"LM epoch {epoch + 1}/{options.epochs}: loss {loss_per_unit:.3f}, perplexity {record['perplexity']:.1f}")
    save_lm(model.eval(), tokenizer, out_dir, options)
    files.write_lines(out_dir / LOG, log)
    return LMSummary(updates, loss_per_unit, out_dir, model)


def save_lm(model: TransformerLM, tokenizer: Tokenizer, out_dir: Path, options: LMTrainOptions) -> None:
    with files.atomic_file(out_dir / LM_FILE) as f:
        torch.save({**model.state(), "options": asdict(options)}, f)
    tokenizer.save(out_dir / TOKENIZER)


def load_lm(lm_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TransformerLM, Tokenizer]:
    """The LM of ``lm_dir`` (in eval mode) and the tokenizer it was trained with."""
    from asr.lm.model import lm_from_state

    path = Path(lm_dir) / LM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no language model at {path} (train one with `asr lm train`)")
    state = torch.load(path, map_location=device, weights_only=True)
    return lm_from_state(state).to(device).eval(), load_tokenizer(Path(lm_dir) / TOKENIZER)
