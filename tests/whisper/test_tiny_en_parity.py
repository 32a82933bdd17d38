"""(b) With the real tiny.en weights, greedy transcripts with Whisper's 30 s padding are identical
to faster-whisper's greedy transcripts of the same audio: 24 FSDD recordings of the four speakers
and 20 espeak-ng utterances, decoded by the toolkit in batches of utterances of different lengths."""

import warnings
from pathlib import Path

import pytest
import torch

from asr.audio import load_audio
from asr.data.dataset import pad
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch
from asr.experiment import load_for_inference
from tests.support.fsdd import fsdd_recordings

pytestmark = pytest.mark.slow


def _fsdd_files() -> list[Path]:
    files = sorted(fsdd_recordings().glob("*.wav"))  # fails, not skips, without the recordings
    return files[::83][:24]  # every digit and speaker, spread over the indices


def _espeak_files(tmp: Path) -> list[Path]:
    from asr.data import synthetic

    exe = synthetic._check_espeak()
    sentences = synthetic.make_sentences(20, seed=3)
    speakers = synthetic.make_speakers({"test": 20}, seed=3)
    paths = []
    for i, (speaker, text) in enumerate(zip(speakers, sentences)):
        paths.append(tmp / f"e{i}.flac")
        synthetic._speak(exe, speaker, text, paths[-1])
    return paths


def _faster_whisper_greedy(model_dir: Path, waves: list[torch.Tensor]) -> list[str]:
    import faster_whisper as fw
    model = fw.WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=2)
    texts = []
    for wave in waves:
        segments, _ = model.transcribe(
            wave.numpy(), beam_size=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, language="en", no_speech_threshold=None,
        )  # fmt: skip
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts


def _greedy(model, tokenizer, waves: list[torch.Tensor], precision: str = "fp32") -> list[str]:
    options = DecodeOptions(method="attention_greedy", batch_size=8, precision=precision)
    got = []
    for first in range(0, len(waves), 8):
        batch, lengths = pad(waves[first : first + 8])
        got += [tokenizer.decode(h[0].tokens) for h in decode_batch(model, batch, lengths, options)]
    return got


def test_greedy_transcripts_equal_faster_whisper(tiny_en_dir, tiny_en_exp, tmp_path):
    files = _fsdd_files() + _espeak_files(tmp_path)
    waves = [load_audio(f, 16000)[0] for f in files]
    expected = _faster_whisper_greedy(tiny_en_dir, waves)
    model, tokenizer, config = load_for_inference(tiny_en_exp)
    assert config.features.pad_seconds == 30.0
    got = _greedy(model, tokenizer, waves)
    mismatches = [(f.name, a, b) for f, a, b in zip(files, got, expected) if a != b]
    assert mismatches == []
    assert sum(t.strip() != "" for t in got) >= 40  # real transcripts, not empty ones
    # bf16 encoder (where the CPU has native bf16; elsewhere the guard runs fp32): not bit-exact,
    # but nearly every transcript stays the same (measured: 43 of 44 on an AVX512-BF16 EPYC, with the
    # stem and attention kept in fp32 there; 39 with all of the encoder in bf16).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guard's "runs as fp32" on CPUs without bf16
        half = _greedy(model, tokenizer, waves, "bf16")
    assert sum(a == b for a, b in zip(half, expected)) >= 40
