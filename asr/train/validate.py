"""Validation during training: dev loss (teacher forced) and dev WER with greedy decoding."""

from __future__ import annotations

import torch

from asr.config import ExperimentConfig
from asr.data.batching import DurationBatchSampler
from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import Utterance
from asr.decode.options import DecodeOptions
from asr.decode.search import search_encoded
from asr.faults import kill_point
from asr.metrics import Transcripts, score
from asr.model import ASRModel
from asr.text.tokenizer import Tokenizer

GREEDY = DecodeOptions(method="attention_greedy")


@torch.inference_mode()
def validate(
    model: ASRModel,
    utterances: list[Utterance],
    tokenizer: Tokenizer,
    config: ExperimentConfig,
    device: torch.device,
) -> dict:
    """Returns {"loss", "ctc", "att", "acc", "wer", "utterances"} over ``utterances``.
    The model must be in eval mode (no dropout, no SpecAugment)."""
    dataset = SpeechDataset(utterances, tokenizer, config.features.sample_rate)
    sampler = DurationBatchSampler(
        [u.duration for u in utterances], config.data.max_batch_seconds, seed=0, shuffle=False
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.data.num_workers,
        generator=torch.Generator().manual_seed(0),  # not the global RNG: training owns that
    )
    hyps: dict[str, str] = {}
    loss = ctc = att = 0.0
    correct = tokens = 0
    for index, batch in enumerate(loader):
        batch = batch.to(device)
        encoded, enc_lengths = model.encode(batch.waves, batch.wave_lengths)
        losses = model.encoded_losses(encoded, enc_lengths, batch.tokens, batch.token_lengths)
        size = len(batch)
        loss += losses.loss.item() * size
        ctc += losses.ctc.item() * size
        att += losses.attention.item() * size
        correct += losses.correct_tokens
        tokens += losses.tokens
        for utt_id, nbest in zip(batch.ids, search_encoded(model, encoded, enc_lengths, GREEDY)):
            hyps[utt_id] = tokenizer.decode(nbest[0].tokens)
        if index == 0:
            kill_point("valid")  # once per validation, after its first batch
    count = len(hyps)
    wer = score(Transcripts.from_utterances(utterances), Transcripts(hyps)).wer
    return {
        "loss": loss / count,
        "ctc": ctc / count,
        "att": att / count,
        "acc": correct / max(1, tokens),
        "wer": wer,
        "utterances": count,
    }
