"""Whisper's log-mel frontend, built with torchaudio (``log_mel_spectrogram`` in openai-whisper,
``FeatureExtractor`` in faster-whisper).

Per utterance: a centred STFT (n_fft 400, hop 160, Hann window, reflect padding) of its samples
followed by 160 zeros, the last frame dropped; power spectra through Slaney-scale,
Slaney-normalised mel filters; log10 of at least 1e-10, clamped from below at its maximum - 8,
then (x + 4) / 4. An utterance of S samples gives S // 160 frames, computed from its own samples
only, so it is the same alone or zero-padded in a batch.

With ``pad_seconds`` > 0 every input becomes pad_seconds * 100 frames, Whisper's 30 s window:
``pad_mode`` "features" appends frames of 0 (faster-whisper), "audio" appends zero samples to
the waveform before the STFT, whose frames then hold the log-mel of silence (openai-whisper).
Longer inputs are trimmed to the window.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from asr.config import FeatureConfig
from asr.nn.masks import lengths_to_mask

N_FFT = 400
HOP = 160


class WhisperLogMel(nn.Module):
    def __init__(self, config: FeatureConfig):
        super().__init__()
        if config.sample_rate != 16000:
            raise ValueError(f"features.sample_rate: Whisper models take 16000 Hz, not {config.sample_rate}")
        self.sample_rate = config.sample_rate
        self.n_fft, self.hop = N_FFT, HOP  # as LogMel's: the frame clock of word timestamps reads them
        self.n_mels = config.n_mels
        self.pad_samples = round(config.pad_seconds * config.sample_rate)
        self.pad_mode = config.pad_mode
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=N_FFT, hop_length=HOP, power=2.0, center=True, pad_mode="reflect"
        )
        filters = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, config.sample_rate / 2, config.n_mels, config.sample_rate,
            norm="slaney", mel_scale="slaney",
        )  # fmt: skip
        self.register_buffer("filters", filters.T.contiguous(), persistent=False)  # (n_mels, F)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        if self.pad_samples:
            return torch.full_like(lengths, self.pad_samples // HOP)
        return torch.div(lengths, HOP, rounding_mode="floor")

    def _log_mel(self, waves: Tensor) -> Tensor:
        """(B, S) -> (B, S // 160 + 1, n_mels), each row clamped at its own maximum - 8."""
        power = self.spectrogram(waves)[..., :-1]  # (B, F, T)
        mel = (self.filters @ power).clamp(min=1e-10).log10()  # (B, n_mels, T)
        top = mel.amax(dim=(1, 2), keepdim=True)
        return ((torch.maximum(mel, top - 8.0) + 4.0) / 4.0).transpose(1, 2)

    def forward(self, waves: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """waves (B, S) zero-padded, lengths (B,) -> features (B, T, n_mels) float32, lengths (B,)."""
        with torch.autocast(device_type=waves.device.type, enabled=False):
            waves = waves.float()
            if self.pad_samples and self.pad_mode == "audio":
                return self._padded_audio(waves, lengths), self.output_lengths(lengths)
            frames = torch.div(lengths, HOP, rounding_mode="floor")
            if self.pad_samples:
                frames = frames.clamp(max=self.pad_samples // HOP)
            out_frames = self.pad_samples // HOP if self.pad_samples else int(frames.max())
            feats = waves.new_zeros(waves.shape[0], out_frames, self.n_mels)
            for row, (length, count) in enumerate(zip(lengths.tolist(), frames.tolist())):
                if count > 0:
                    own = nn.functional.pad(waves[row : row + 1, :length], (0, HOP))  # as faster-whisper
                    feats[row, :count] = self._log_mel(own)[0, :count]
            return feats, self.output_lengths(lengths)

    def _padded_audio(self, waves: Tensor, lengths: Tensor) -> Tensor:
        # Samples past each utterance's length are zeroed (a batch pads with zeros anyway), and
        # the window is followed by n_fft more zeros so that its last frames see zeros, not a
        # reflection: openai-whisper pads 30 s of zeros before its STFT.
        target = self.pad_samples + N_FFT
        waves = waves[:, :target]
        valid = lengths_to_mask(lengths, waves.shape[1])  # (B, S)
        waves = nn.functional.pad(waves.masked_fill(~valid, 0.0), (0, target - waves.shape[1]))
        return self._log_mel(waves)[:, : self.pad_samples // HOP]
