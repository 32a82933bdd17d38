"""Input lengths of the Whisper configuration: an utterance gets the same features and encoder
output alone or zero-padded in a batch, unpadded and with the 30 s window; audio longer than the
window is transcribed in segments."""

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import FeatureConfig
from asr.decode.options import DecodeOptions
from asr.whisper.dims import WhisperDims
from asr.whisper.frontend import WhisperLogMel
from asr.whisper.model import build_whisper_model
from asr.whisper.weights import expected_shapes

DIMS = WhisperDims(80, 1500, 32, 4, 2, 120, 32, 32, 4, 2)
RULES = {"prompt": (0, 100), "suppress": (), "suppress_at_start": ()}


def _model(pad_seconds: float):
    torch.manual_seed(0)
    state = {name: torch.randn(shape) * 0.2 for name, shape in expected_shapes(DIMS).items()}
    return build_whisper_model(DIMS, state, RULES, list(range(DIMS.n_vocab)), pad_seconds=pad_seconds)


@pytest.mark.parametrize("pad_seconds", [0.0, 30.0])
def test_an_utterance_encodes_the_same_alone_and_in_a_batch(pad_seconds):
    model = _model(pad_seconds)
    waves = [torch.randn(n) * 0.1 for n in (16000, 4321, 9999)]
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    lengths = torch.tensor([w.numel() for w in waves])
    with torch.no_grad():
        encoded, enc_lengths = model.encode(batch, lengths)
        for row, wave in enumerate(waves):
            alone, alone_length = model.encode(wave[None], torch.tensor([wave.numel()]))
            frames = int(alone_length)
            assert int(enc_lengths[row]) == frames == (1500 if pad_seconds else (wave.numel() // 160 + 1) // 2)
            torch.testing.assert_close(encoded[row, :frames], alone[0], atol=1e-5, rtol=0)


def test_unpadded_features_are_each_utterances_own_frames():
    frontend = WhisperLogMel(FeatureConfig(frontend="whisper", pad_seconds=0.0, cmvn=False))
    wave = torch.randn(5000) * 0.1
    feats, lengths = frontend(torch.stack([wave, torch.zeros(5000)]), torch.tensor([5000, 3200]))
    assert lengths.tolist() == [31, 20]
    assert bool((feats[1, 20:] == 0).all())  # frames past a length are 0
    alone, _ = frontend(wave[None], torch.tensor([5000]))
    torch.testing.assert_close(feats[0], alone[0])


def test_audio_longer_than_the_window_is_transcribed_in_segments(tmp_path):
    from asr.checkpoint import model_state, save_checkpoint
    from asr.config import save_config
    from asr.transcribe import transcribe_files

    model = _model(30.0)
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    save_config(model.config, exp / "config.yaml")
    save_checkpoint(model_state(model), exp / "checkpoints" / "imported.pt")
    from asr.text.whisper_bpe import WhisperTokenizer

    tokens = [chr(0x100 + i) for i in range(DIMS.n_vocab)]
    tokens[60:] = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"] + [f"<|{i}|>" for i in range(36)] + ["<|notimestamps|>"] + tokens[100:]
    WhisperTokenizer.from_tokens(tokens[: DIMS.n_vocab], exp / "tokenizer")
    t = np.arange(45 * 16000) / 16000
    sf.write(tmp_path / "long.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    options = DecodeOptions(method="attention_greedy", max_length_ratio=0.005)
    [result] = transcribe_files(exp, [tmp_path / "long.wav"], options, segment_seconds=20.0)
    assert result.error is None and result.duration == pytest.approx(45.0)
    assert len(result.segments) == 3  # 45 s in pieces of at most 20 s
