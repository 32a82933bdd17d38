"""Training/validation dataset: manifest utterances -> waveforms and token ids, and batch collation.

The dataset returns raw waveforms; features are computed by the model (``asr.features``) on its
own device, so workers only decode audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from asr.audio import load_audio
from asr.augment import choose_speed, speed_perturb
from asr.data.manifest import Utterance
from asr.text.tokenizer import BLANK_ID, Tokenizer


class SpeechDataset(torch.utils.data.Dataset):
    """Utterance ``index`` -> {"id": str, "wave": (S,) float32, "tokens": (U,) long}.

    With ``speeds`` (e.g. (0.9, 1.0, 1.1)), each utterance is speed-perturbed by a factor chosen
    from ``(seed, epoch, index)`` alone, so DataLoader workers and resumed runs agree. Call
    ``set_epoch`` before each epoch (with persistent workers, recreate the loader instead: the
    workers hold their own copy of the dataset).
    """

    def __init__(
        self,
        utterances: list[Utterance],
        tokenizer: Tokenizer,
        sample_rate: int,
        speeds: tuple[float, ...] | None = None,
        seed: int = 0,
    ):
        self.utterances = utterances
        self.tokenizer = tokenizer
        self.sample_rate = sample_rate
        self.speeds = tuple(speeds) if speeds else None
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def speed(self, index: int) -> float:
        """The speed factor for utterance ``index`` in the current epoch (1.0 without speeds)."""
        if self.speeds is None:
            return 1.0
        return choose_speed(self.speeds, self.seed, self.epoch, index)

    def __getitem__(self, index: int) -> dict:
        utt = self.utterances[index]
        # (S,) mono, resampled if needed; NaN or (under a transcript) silence is an AudioContentError
        wave, _ = load_audio(utt.audio, self.sample_rate, expect_speech=bool(utt.text))
        return self.item(index, wave)

    def item(self, index: int, wave: torch.Tensor) -> dict:
        """Utterance ``index``'s item from its decoded waveform (S,) (read from a file or a shard)."""
        utt = self.utterances[index]
        wave = speed_perturb(wave, self.sample_rate, self.speed(index))
        tokens = torch.tensor(self.tokenizer.encode(utt.text), dtype=torch.long)  # (U,)
        return {"id": utt.id, "wave": wave, "tokens": tokens}


@dataclass
class Batch:
    """A padded training batch; ``to``/``pin_memory`` return new batches, ids are left alone."""

    ids: list[str]
    waves: torch.Tensor  # (B, S) float32, zero-padded
    wave_lengths: torch.Tensor  # (B,) long, samples
    tokens: torch.Tensor  # (B, U) long, padded with BLANK_ID (use token_lengths, not the value)
    token_lengths: torch.Tensor  # (B,) long

    def __len__(self) -> int:
        return len(self.ids)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(
            ids=self.ids,
            waves=fn(self.waves),
            wave_lengths=fn(self.wave_lengths),
            tokens=fn(self.tokens),
            token_lengths=fn(self.token_lengths),
        )

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """A copy on ``device`` (asynchronous from pinned memory)."""
        return self._map(lambda x: x.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)`` in its pinning thread."""
        return self._map(lambda x: x.pin_memory())


def pad(sequences: list[torch.Tensor], value: float | int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D tensors to (B, max_len); returns (padded, lengths (B,) long)."""
    lengths = torch.tensor([s.numel() for s in sequences], dtype=torch.long)
    padded = sequences[0].new_full((len(sequences), int(lengths.max())), value)
    for row, s in enumerate(sequences):
        padded[row, : s.numel()] = s
    return padded, lengths


def collate(items: list[dict]) -> Batch:
    """Items from ``SpeechDataset`` -> a padded ``Batch``."""
    waves, wave_lengths = pad([item["wave"].float() for item in items], 0.0)
    tokens, token_lengths = pad([item["tokens"] for item in items], BLANK_ID)
    return Batch(
        ids=[item["id"] for item in items],
        waves=waves,
        wave_lengths=wave_lengths,
        tokens=tokens,
        token_lengths=token_lengths,
    )
