"""ASRModel: log-mel frontend + Transformer encoder + CTC head + cross-attention decoder.

Training loss (hybrid CTC/attention, Watanabe et al., 2017):
    loss = ctc_weight * CTC + (1 - ctc_weight) * label-smoothed cross entropy of the decoder,
both summed over each utterance and averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.augment import SpecAugment
from asr.config import ExperimentConfig
from asr.features import GlobalCMVN, LogMel
from asr.nn.conformer import ConformerEncoder
from asr.nn.decoder import Decoder
from asr.nn.encoder import Encoder
from asr.text.special import BLANK_ID, SOS_EOS_ID
from asr.whisper.frontend import WhisperLogMel
from asr.nn.masks import lengths_to_mask

IGNORE = -100  # target id that the cross entropy skips (padding)


def with_prompt(tokens: Tensor, prompt: Sequence[int]) -> tuple[Tensor, int]:
    """Decoder inputs (B, U) that start with <sos> -> the same after a prompt (Whisper's
    <|startoftranscript|> ... <|notimestamps|>): its first P-1 tokens before each row and its
    last in place of <sos>, (B, P-1+U); and P-1, the leading positions that are not scored.
    Without a prompt the inputs are unchanged."""
    if not prompt:
        return tokens, 0
    tokens = tokens.masked_fill(tokens == SOS_EOS_ID, prompt[-1])
    if len(prompt) == 1:
        return tokens, 0
    head = tokens.new_tensor(list(prompt[:-1])).expand(tokens.shape[0], -1)
    return torch.cat([head, tokens], dim=1), len(prompt) - 1


@dataclass
class Losses:
    loss: Tensor  # what is optimised
    ctc: Tensor
    attention: Tensor
    correct_tokens: int  # decoder argmax == target, teacher forced
    tokens: int
    utterances: int


def build_encoder(config: ExperimentConfig) -> Encoder | ConformerEncoder:
    """The encoder that model.encoder.type names, for features.n_mels inputs."""
    encoder = ConformerEncoder if config.model.encoder.type == "conformer" else Encoder
    return encoder(config.features.n_mels, config.model)


class ASRModel(nn.Module):
    def __init__(self, config: ExperimentConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        n_mels = config.features.n_mels
        self.frontend: LogMel | WhisperLogMel
        if config.features.frontend == "whisper":
            self.frontend = WhisperLogMel(config.features)
        else:
            self.frontend = LogMel(config.features)
        self.cmvn = GlobalCMVN(n_mels) if config.features.cmvn else None
        self.spec_augment = SpecAugment(config.augment)
        self.encoder = build_encoder(config)
        if config.model.ctc_weight > 0 and not config.model.ctc_head:
            raise ValueError(f"model.ctc_weight={config.model.ctc_weight} needs model.ctc_head: true")
        # Imported Whisper models have no CTC head until a fine-tuning config asks for one.
        self.ctc = nn.Linear(config.model.d_model, vocab_size) if config.model.ctc_head else None
        self.decoder = Decoder(vocab_size, config.model)

    def features(self, waves: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) waveforms -> normalised (and in training, augmented) log-mels (B, T, F)."""
        feats, lengths = self.frontend(waves, wave_lengths)
        if self.cmvn is not None:
            feats = self.cmvn(feats, lengths)
        if self.training:
            feats = self.spec_augment(feats, lengths)
        return feats, lengths

    def encode(self, waves: Tensor, wave_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) waveforms -> encoder output (B, T', D) and its lengths (B,)."""
        return self.encoder(*self.features(waves, wave_lengths))

    def ctc_log_probs(self, encoded: Tensor) -> Tensor:
        """(B, T', D) -> (B, T', V) log-probabilities (any leading dims), float32 for a stable CTC."""
        if self.ctc is None:
            raise ValueError("this model has no CTC head (model.ctc_head: false): decode with "
                             "--method attention_greedy or attention_beam")
        return self.ctc(encoded).float().log_softmax(dim=-1)

    def forward(
        self, waves: Tensor, wave_lengths: Tensor, tokens: Tensor, token_lengths: Tensor
    ) -> Losses:
        """waves (B, S); tokens (B, U) padded, without <sos>/<eos>; lengths (B,)."""
        return self.losses(*self.features(waves, wave_lengths), tokens, token_lengths)

    def losses(self, feats: Tensor, feat_lengths: Tensor, tokens: Tensor, token_lengths: Tensor) -> Losses:
        """The training losses from normalised features (B, T, F) and padded tokens (B, U)."""
        return self.encoded_losses(*self.encoder(feats, feat_lengths), tokens, token_lengths)

    def encoded_losses(
        self, encoded: Tensor, enc_lengths: Tensor, tokens: Tensor, token_lengths: Tensor
    ) -> Losses:
        """The losses from encoder output (B, T', D) (so validation can also decode it)."""
        cfg = self.config.model
        batch = tokens.shape[0]
        real = lengths_to_mask(token_lengths, tokens.shape[1])

        ctc_loss = encoded.new_zeros((), dtype=torch.float32)
        if self.ctc is not None:
            ctc_loss = F.ctc_loss(
                # (T', B, V) computed in that layout: a transposed view would cost two copies
                # of (B, T', V) in log-softmax's forward and backward.
                self.ctc_log_probs(encoded.transpose(0, 1)),
                tokens,
                enc_lengths,
                token_lengths,
                blank=BLANK_ID,
                reduction="sum",
                zero_infinity=True,
            ) / batch

        sos = tokens.new_full((batch, 1), SOS_EOS_ID)
        decoder_in = torch.cat([sos, tokens.masked_fill(~real, BLANK_ID)], dim=1)  # (B, U+1)
        targets = torch.cat([tokens.masked_fill(~real, IGNORE), sos.new_full((batch, 1), IGNORE)], 1)
        targets[torch.arange(batch), token_lengths] = SOS_EOS_ID  # <eos> right after the last token
        decoder_in, prefix = with_prompt(decoder_in, cfg.decoder.prompt)  # (B, P-1+U+1)
        logits, _ = self.decoder(decoder_in, encoded, enc_lengths, prefix=prefix)
        att_loss = F.cross_entropy(  # over (B * (U+1), V) rows: the classes contiguous, no copies
            logits.float().flatten(0, 1),
            targets.flatten(),
            ignore_index=IGNORE,
            label_smoothing=cfg.label_smoothing,
            reduction="sum",
        ) / batch

        loss = cfg.ctc_weight * ctc_loss + (1.0 - cfg.ctc_weight) * att_loss
        scored = targets != IGNORE
        correct = ((logits.argmax(-1) == targets) & scored).sum()
        return Losses(loss, ctc_loss, att_loss, int(correct), int(scored.sum()), batch)

