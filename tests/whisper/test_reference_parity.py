"""(a) With random tiny-dimension weights, the toolkit's Whisper configuration computes what
openai-whisper's model computes: the encoder output, the first decoder step after the prompt,
and incremental decoder steps with the explicit cache, to 1e-4. Also the frontend."""

import numpy as np
import pytest
import torch

from asr.model import with_prompt
from asr.whisper.dims import WhisperDims
from asr.whisper.model import build_whisper_model

import whisper

DIMS = WhisperDims(n_mels=16, n_audio_ctx=24, n_audio_state=32, n_audio_head=4, n_audio_layer=2,
                   n_vocab=60, n_text_ctx=16, n_text_state=32, n_text_head=4, n_text_layer=2)  # fmt: skip
SOT, EOT, NO_TIMESTAMPS = 50, 40, 55  # ids in the reference's vocabulary
# model id i holds reference token PERM[i]: the swaps 0 <-> SOT and 2 <-> EOT, as imports do
PERM = list(range(DIMS.n_vocab))
PERM[0], PERM[SOT], PERM[2], PERM[EOT] = SOT, 0, EOT, 2


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    reference = whisper.model.Whisper(whisper.model.ModelDimensions(**DIMS.__dict__)).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0.0, 0.3)
        reference.encoder.positional_embedding.normal_()  # a buffer: imported as it is
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    rules = {"prompt": (PERM.index(SOT), NO_TIMESTAMPS), "suppress": (), "suppress_at_start": ()}
    return reference, build_whisper_model(DIMS, state, rules, PERM)


def test_encoder_output_equals_the_reference(models):
    reference, model = models
    mels = torch.randn(2, DIMS.n_mels, 2 * DIMS.n_audio_ctx)
    expected = reference.encoder(mels)
    got, lengths = model.encoder(mels.transpose(1, 2), torch.tensor([2 * DIMS.n_audio_ctx] * 2))
    assert lengths.tolist() == [DIMS.n_audio_ctx] * 2
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_first_and_incremental_decoder_steps_equal_the_reference(models):
    reference, model = models
    audio = reference.encoder(torch.randn(2, DIMS.n_mels, 2 * DIMS.n_audio_ctx))
    text = [[SOT, NO_TIMESTAMPS, 7, 12, 33, 3], [SOT, NO_TIMESTAMPS, 9, 1, 21, 14]]
    expected = reference.decoder(torch.tensor(text), audio)  # (2, 6, V) full recomputation
    cache = model.decoder.init_cache(audio, torch.tensor([DIMS.n_audio_ctx] * 2))
    _, cache = model.decoder.feed(torch.tensor([PERM.index(SOT)] * 2), cache)  # the prompt, fed as given
    feed = torch.tensor([NO_TIMESTAMPS] * 2)  # the prompt's last token, in place of <sos>
    for step in range(len(text[0]) - 1):
        logits, cache = model.decoder.step(feed, cache)
        torch.testing.assert_close(logits[:, PERM], expected[:, step + 1], atol=1e-4, rtol=0)
        feed = torch.tensor([PERM.index(row[step + 2]) for row in text]) if step + 2 < len(text[0]) else None


def test_teacher_forced_logits_equal_the_reference(models):
    reference, model = models
    audio = reference.encoder(torch.randn(1, DIMS.n_mels, 2 * DIMS.n_audio_ctx))
    text = [SOT, NO_TIMESTAMPS, 7, 12, 33]
    expected = reference.decoder(torch.tensor([text]), audio)[:, 1:]
    tokens = torch.tensor([[2] + [PERM.index(t) for t in text[2:]]])  # <sos> y
    tokens, prefix = with_prompt(tokens, model.config.model.decoder.prompt)  # <sot> <notimestamps> y
    logits, _ = model.decoder(tokens, audio, torch.tensor([DIMS.n_audio_ctx]), prefix=prefix)
    torch.testing.assert_close(logits[..., PERM], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_frontend_equals_the_reference(n_mels):
    from asr.config import FeatureConfig
    from asr.whisper.frontend import WhisperLogMel

    torch.manual_seed(1)
    wave = torch.randn(16000 * 3) * torch.linspace(0.01, 0.5, 16000 * 3)
    padded = whisper.pad_or_trim(wave)
    expected = whisper.log_mel_spectrogram(torch.nn.functional.pad(padded, (0, 16000 * 30)), n_mels)[:, :3000]
    config = FeatureConfig(n_mels=n_mels, frontend="whisper", pad_seconds=30.0, pad_mode="audio", cmvn=False)
    frontend = WhisperLogMel(config)
    feats, lengths = frontend(wave[None], torch.tensor([wave.numel()]))
    assert feats.shape == (1, 3000, n_mels) and lengths.tolist() == [3000]
    torch.testing.assert_close(feats[0].T, expected, atol=2e-4, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_frontend_equals_faster_whisper(n_mels):
    """faster-whisper's features: its own samples + 160 zeros, then frames of 0 up to 30 s."""
    import faster_whisper.feature_extractor as fw
    from asr.config import FeatureConfig
    from asr.whisper.frontend import WhisperLogMel

    torch.manual_seed(2)
    waves = [torch.randn(n) * 0.1 for n in (16000 * 2 + 37, 16000 * 3)]
    reference = fw.FeatureExtractor(feature_size=n_mels)
    frontend = WhisperLogMel(FeatureConfig(n_mels=n_mels, frontend="whisper", pad_seconds=30.0, cmvn=False))
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    feats, lengths = frontend(batch, torch.tensor([w.numel() for w in waves]))
    assert lengths.tolist() == [3000, 3000]
    for row, wave in enumerate(waves):
        expected = reference(wave.numpy())[:, :-1]  # (n_mels, content frames), as transcribe() cuts it
        frames = expected.shape[1]
        assert frames == wave.numel() // 160
        torch.testing.assert_close(feats[row, :frames].T, torch.from_numpy(expected), atol=2e-4, rtol=0)
        assert bool((feats[row, frames:] == 0).all())  # pad_or_trim's zero frames
