"""`asr lm train`: fit a :class:`~asr.nn.lm.TransformerLM` to sentences, in the tokenizer's units.

The recogniser's training parts do the work: ``train_step`` (asr.train.step) with the LM's
micro-batch loss, the loop of asr.train.loop with :class:`LMHooks`, AdamW and the warmup +
inverse-square-root schedule of asr.train.optim, from the ``lm`` section of a config
(asr.config.LMConfig). The output folder (asr.experiment):

    out/
      config.yaml    the resolved config (``lm:``)
      tokenizer/     the tokenizer the units come from (decoding checks it is the recogniser's)
      log.jsonl      start, train (every lm.train.log_every updates), epoch and done records
      lm.pt          the model: a verified checkpoint (asr.checkpoint) with the resolved config

There is no resume: a run that stops is started again.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from asr import experiment as layout
from asr import files
from asr.checkpoint import directory_hash, model_state, save_checkpoint
from asr.config import LMConfig, LMExperimentConfig, save_config
from asr.lm.data import LMData, TextBatch
from asr.nn.lm import TransformerLM
from asr.precision import resolve_precision
from asr.progress import TrainProgress
from asr.text.tokenizer import Tokenizer, load_tokenizer
from asr.train.log import ExperimentLog
from asr.train.loop import run
from asr.train.state import TrainState, build_train_state
from asr.train.step import MicroBatchLoss, StepResult


@dataclass(frozen=True)
class LMSummary:
    updates: int
    loss: float  # mean cross entropy per unit (nats) in the last epoch (mean over its batches)
    out_dir: Path
    model: TransformerLM


def lm_losses(state: TrainState, batch: TextBatch) -> MicroBatchLoss:
    """Mean cross entropy per unit of the batch's sentences and their <eos>."""
    total, units = state.model.sentence_loss(batch.tokens, batch.lengths)
    loss = total / units
    return MicroBatchLoss(loss, {"loss": loss}, StepResult(batches=1, tokens=units, utterances=len(batch)))


def train_lm(
    config: LMConfig, out_dir: str | Path, device: str | torch.device = "cpu", console: Console | None = None
) -> LMSummary:
    """Train the LM that ``config`` describes on its sentences and write ``out_dir``."""
    console = console or Console()
    out_dir, device = Path(out_dir), torch.device(device)
    if not config.data.tokenizer:
        raise ValueError("lm.data.tokenizer is not set: the recogniser's tokenizer folder (--set lm.data.tokenizer=DIR)")
    precision = resolve_precision(config.train.precision, device, key="lm.train.precision")
    if precision.reason:
        console.print(f"[yellow]warning: lm.train.precision={precision.requested} runs as {precision.used}: {precision.reason}[/yellow]")
    data = LMData(config, load_tokenizer(config.data.tokenizer))
    batches = data.epoch_batches(0)  # a first pass over the text: unreadable or empty text fails here
    tokenizer = _copy_tokenizer(Path(config.data.tokenizer), out_dir / layout.TOKENIZER)
    save_config(LMExperimentConfig(config), out_dir / layout.CONFIG)
    torch.manual_seed(config.train.seed)
    model = TransformerLM(config, tokenizer.vocab_size)
    state = build_train_state(config, model, device, precision.used)
    state.losses = lm_losses
    state.tokenizer_sha256 = directory_hash(out_dir / layout.TOKENIZER)
    for stale in (out_dir / layout.LOG, out_dir / layout.LM_MODEL):  # an earlier run's: this one starts over
        stale.unlink(missing_ok=True)
    log = ExperimentLog(out_dir / layout.LOG)
    log.write({"event": "start", "step": 0, "precision": precision.used, "batches_per_epoch": batches})
    hooks = LMHooks(out_dir, config, log, console)
    run(state, data, hooks)
    return LMSummary(state.step, hooks.last_epoch_loss, out_dir, model.eval())


def _copy_tokenizer(source: Path, target: Path) -> Tokenizer:
    """Copy every file of the tokenizer folder, as `asr train` copies it into an experiment, so
    that the two folders hash the same (asr.decode.lm compares them)."""
    if target.is_dir() and not target.samefile(source):
        shutil.rmtree(target)  # an earlier run's: none of its files may stay
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")):
        if not (target / path.name).exists():
            files.copy_file(path, target / path.name)
    return load_tokenizer(target)


class LMHooks:
    """What the loop calls around the LM's updates: progress, log records and saving lm.pt."""

    def __init__(self, out_dir: Path, config: LMConfig, log: ExperimentLog, console: Console):
        self.path = out_dir / layout.LM_MODEL
        self.cfg, self.log, self.console = config.train, log, console
        self.progress = TrainProgress(console)
        self._window, self._epoch = StepResult(), StepResult()
        self._window_start = self._epoch_start = time.perf_counter()
        self.last_epoch_loss = math.nan

    def start_epoch(self, state: TrainState, batches: int) -> None:
        self.progress.start_epoch(state.position.epoch, batches, state.position.batch_in_epoch)
        self._epoch, self._epoch_start = StepResult(), time.perf_counter()

    def after_update(self, state: TrainState, result: StepResult, max_steps: float) -> None:
        self.progress.advance(result.mean_loss, lr=state.lr, step=state.step, batches=result.batches)
        if result.skipped:
            self.log.write({"event": "nonfinite", "step": state.step, "loss": result.mean_loss, "grad_norm": result.grad_norm})
            return
        self._window, self._epoch = self._window + result, self._epoch + result
        if state.step % self.cfg.log_every == 0 or state.step == max_steps:
            elapsed = max(time.perf_counter() - self._window_start, 1e-9)
            self.log.write({"event": "train", "step": state.step, "epoch": state.position.epoch,
                            "loss": self._window.mean_loss, "units_per_s": self._window.tokens / elapsed,
                            "lr": state.lr, "grad_norm": self._window.grad_norm})  # fmt: skip
            self._window, self._window_start = StepResult(), time.perf_counter()

    def after_epoch(self, state: TrainState) -> None:
        loss = self.last_epoch_loss = self._epoch.mean_loss
        self._epoch = StepResult()
        perplexity = math.exp(min(loss, 50.0))
        self.log.write({"event": "epoch", "epoch": state.position.epoch - 1, "step": state.step, "loss": loss,
                        "perplexity": perplexity, "seconds": time.perf_counter() - self._epoch_start})  # fmt: skip
        self.console.print(f"LM epoch {state.position.epoch}/{self.cfg.epochs}: loss {loss:.3f}, perplexity {perplexity:.1f}")

    def at_end(self, state: TrainState) -> None:
        """Write lm.pt: the model training ends with (also after a partial epoch, lm.train.max_steps)."""
        if self._epoch.batches:
            self.last_epoch_loss = self._epoch.mean_loss
        save_checkpoint(model_state(state.model, state.tokenizer_sha256), self.path)
        self.log.write({"event": "done", "step": state.step, "epoch": state.position.epoch})

    def save_last(self, state: TrainState) -> None:
        """Called where training diverged: nothing is saved (there is no resume, and a diverged
        model is no LM to decode with)."""
