"""What the training loop calls around updates: logging, progress, validation, checkpoints.

At a step where both are due, validation (and its best-K bookkeeping) comes before the ``last.pt``
checkpoint, so a checkpoint never precedes a validation that a kill could lose: a resumed run
redoes whatever came after its checkpoint. Validation runs with the global RNG states saved and
restored, so it consumes nothing that training draws on.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from rich.console import Console

from asr import experiment as layout
from asr.checkpoint import BestCheckpoints, save_checkpoint
from asr.config import ExperimentConfig
from asr.data.manifest import Utterance, read_manifest
from asr.data.screen import usable_utterances
from asr.progress import TrainProgress
from asr.text.tokenizer import Tokenizer
from asr.train.distributed import DistContext, barrier
from asr.train.seeding import gather_rng_states
from asr.train.log import ExperimentLog
from asr.train.state import TrainState, restore_rng, rng_state
from asr.train.step import StepResult
from asr.train.validate import validate


def dev_utterances(
    config: ExperimentConfig, rejected: Path | None = None, console: Console | None = None
) -> list[Utterance]:
    """The dev manifest's utterances (unusable audio left out and listed in ``rejected``)."""
    if not config.data.dev_manifest:
        utterances = []
    elif rejected is None:
        utterances = read_manifest(config.data.dev_manifest)
    else:
        utterances = usable_utterances(config.data.dev_manifest, rejected, config.data.num_workers, console)
    limit = config.train.valid_max_utterances
    return utterances[:limit] if limit else utterances


class TrainHooks:
    def __init__(
        self,
        exp_dir: Path,
        config: ExperimentConfig,
        tokenizer: Tokenizer,
        ctx: DistContext,
        console: Console,
        log: ExperimentLog,
    ):
        self.config = config
        self.cfg = config.train
        self.tokenizer = tokenizer
        self.ctx = ctx
        self.console = console
        self.log = log
        self.last_path = layout.checkpoint_dir(exp_dir) / layout.LAST
        self.best = BestCheckpoints(layout.checkpoint_dir(exp_dir), self.cfg.keep_best)
        self.dev = dev_utterances(config, exp_dir / layout.DEV_REJECTED, console if ctx.is_main else None)
        self.progress = TrainProgress(console, enabled=ctx.is_main)
        self._window, self._window_start = StepResult(), time.perf_counter()
        self._saved: dict | None = None  # the position last.pt was last written at

    def resume(self, checkpoint: dict) -> None:
        """Continue the log window of the interrupted run (its sums since the last log line)."""
        if "log_window" in checkpoint:
            self._window = StepResult(**checkpoint["log_window"])

    # ------------------------------------------------------------------ called by the loop

    def start_epoch(self, state: TrainState, batches: int) -> None:
        self.progress.start_epoch(state.position.epoch, batches, state.position.batch_in_epoch)

    def after_update(self, state: TrainState, result: StepResult, max_steps: float) -> None:
        step = state.step
        self.progress.advance(result.mean_loss, lr=state.lr, step=step, batches=result.batches)
        if result.skipped:
            self.log.write({"event": "nonfinite", "step": step, "loss": result.mean_loss, "grad_norm": result.grad_norm})
            return
        self._window = self._window + result
        if step % self.cfg.log_every == 0 or step == max_steps:
            self._log_window(state)
        if self.cfg.valid_every and step % self.cfg.valid_every == 0:
            self.validate(state)
        if self.cfg.checkpoint_every and step % self.cfg.checkpoint_every == 0:
            self.save_last(state)

    def after_epoch(self, state: TrainState) -> None:
        if not self.cfg.valid_every:
            self.validate(state)
        self.save_last(state)

    def at_end(self, state: TrainState) -> None:
        """The model training ends with is always validated (also after a partial epoch)."""
        self.validate(state)
        self.save_last(state)
        self.log.write({"event": "done", "step": state.step, "epoch": state.position.epoch})

    # ------------------------------------------------------------------ the parts

    def save_last(self, state: TrainState) -> None:
        if vars(state.position) == self._saved:
            return  # nothing happened since the last save (e.g. the end right after an epoch)
        rank_rng = gather_rng_states(self.ctx)  # every rank's own stream (asr.train.seeding)
        if self.ctx.is_main:  # with the log's length and window, so that a resume logs the same
            extra = {"log_records": self.log.count, "log_window": dataclasses.asdict(self._window)}
            save_checkpoint({**state.to_checkpoint(), **extra, "rank_rng": rank_rng}, self.last_path)
        self._saved = vars(state.position).copy()
        barrier(self.ctx)

    def validate(self, state: TrainState) -> dict | None:
        """Dev loss and WER at this step, logged and ranked for best-K, once per step."""
        if not self.dev or state.position.validated_step == state.step:
            return None
        result = None
        if self.ctx.is_main:
            saved = rng_state()  # validation must not move training's random streams
            state.model.eval()
            try:
                result = validate(state.model, self.dev, self.tokenizer, self.config, state.device)
            finally:
                state.model.train()
                restore_rng(saved)
            result.update(event="valid", step=state.step, epoch=state.position.epoch)
            self.log.write(result)
            kept = self.best.consider(
                {**state.model_state(), "dev": result}, state.step, (result["wer"], result["loss"])
            )
            self.console.print(
                f"[bold]dev[/bold] step {state.step}: loss {result['loss']:.3f} "
                f"WER {100 * result['wer']:.2f}%" + (" (kept)" if kept else "")
            )
        state.position.validated_step = state.step
        barrier(self.ctx)
        return result

    def _log_window(self, state: TrainState) -> None:
        window, elapsed = self._window, max(time.perf_counter() - self._window_start, 1e-9)
        world = self.ctx.world_size
        record = {
            "event": "train", "step": state.step, "epoch": state.position.epoch,
            "loss": window.mean_loss, "ctc": window.ctc / max(1, window.batches),
            "att": window.attention / max(1, window.batches), "acc": window.correct_tokens / max(1, window.tokens),
            "utt_per_s": window.utterances * world / elapsed, "audio_s_per_s": window.audio_seconds * world / elapsed,
            "lr": state.lr, "grad_norm": window.grad_norm,
        }  # fmt: skip
        self.log.write(record)
        self.progress.update_rates(record["utt_per_s"])
        self._window, self._window_start = StepResult(), time.perf_counter()
