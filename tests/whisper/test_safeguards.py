"""Whisper's decoding safeguards (asr.decode.fallback): each one changes what a deterministic
failing input decodes to, and without it the failure stays.

* a random tiny Whisper model loops to the length limit on any input (greedy: "Dian Dian Dian
  ..."): the compression-ratio and log-prob checks send it to sampling at the next temperature;
* tiny.en on silence: the no-speech probability skips it;
* tiny.en on a digit in white noise at -10 dB: unlikely (average log-prob below -1), so it is
  decoded again, alone, while the clean utterance of its batch is kept.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

import asr.decode.task
from asr.audio import load_audio
from asr.data.dataset import pad
from asr.decode.fallback import average_log_prob, compression_ratio
from asr.decode.options import DecodeOptions
from asr.decode.task import DecodingTask
from asr.experiment import load_for_inference
from asr.whisper.convert import import_whisper
from asr.whisper.dims import WhisperDims
from asr.whisper.weights import expected_shapes
from tests.support.fsdd import fsdd_recordings

import whisper

GREEDY = DecodeOptions(method="attention_greedy")
OFF = dict(temperatures=(0.0,), compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None)


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    """A random tiny Whisper .en model (d_model 32, one block each), unpadded, its tokenizer,
    and two 1.2 s noise inputs."""
    root = tmp_path_factory.mktemp("looping")
    dims = WhisperDims(80, 1500, 32, 4, 1, 51864, 448, 32, 4, 1)
    torch.manual_seed(0)
    state = {name: torch.randn(shape) * 0.2 for name, shape in expected_shapes(dims).items()}
    torch.save({"dims": dims.__dict__, "model_state_dict": state}, root / "random.en.pt")
    assets = Path(whisper.__file__).parent / "assets"
    import_whisper(root / "random.en.pt", root / "exp", tokenizer=assets / "gpt2.tiktoken", pad_seconds=0.0)
    model, tokenizer, _ = load_for_inference(root / "exp", None, "cpu")
    waves = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 19200)).astype(np.float32) * 0.1)
    return model, tokenizer, waves, torch.tensor([19200, 19200])


def _decode(model, tokenizer, waves, lengths, **options):
    return [hyps[0] for hyps in DecodingTask.build(model, DecodeOptions(method="attention_greedy", **options), tokenizer).decode(waves, lengths)]


def test_a_loop_is_decoded_again_by_sampling_when_its_compression_ratio_is_too_high(looping):
    model, tokenizer, waves, lengths = looping
    plain = _decode(model, tokenizer, waves, lengths, **{**OFF, "temperatures": (0.0, 0.2)})
    for hyp in plain:  # the loop runs to the length limit (60 encoder frames)
        assert len(hyp.tokens) == 60 and compression_ratio(tokenizer.decode(hyp.tokens)) > 2.4
        assert hyp.temperature == 0.0
    guarded = _decode(model, tokenizer, waves, lengths, **{**OFF, "temperatures": (0.0, 0.2), "compression_ratio_threshold": 2.4})
    for hyp in guarded:
        assert hyp.temperature == 0.2 and compression_ratio(tokenizer.decode(hyp.tokens)) <= 2.4
    again = _decode(model, tokenizer, waves, lengths, **{**OFF, "temperatures": (0.0, 0.2), "compression_ratio_threshold": 2.4})
    assert [h.tokens for h in again] == [h.tokens for h in guarded]  # seeded: the same samples every run


def test_an_unlikely_result_falls_back_through_every_temperature_and_with_pick_last_the_last_stands(looping):
    model, tokenizer, waves, lengths = looping
    temperatures = (0.0, 0.5, 1.0)
    plain = _decode(model, tokenizer, waves, lengths, **{**OFF, "temperatures": temperatures})
    assert all(h.temperature == 0.0 and average_log_prob(h) < -1.0 for h in plain)
    last = _decode(model, tokenizer, waves, lengths, **{**OFF, "temperatures": temperatures, "logprob_threshold": -1.0},
                   fallback_pick="last")  # fmt: skip
    assert all(h.temperature == 1.0 and average_log_prob(h) < -1.0 for h in last)  # every one failed: as openai-whisper


def test_when_every_temperature_fails_the_most_likely_result_stands(looping):
    model, tokenizer, waves, lengths = looping
    options = dict(OFF, temperatures=(0.0, 0.5, 1.0), logprob_threshold=-1.0)
    task = DecodingTask.build(model, DecodeOptions(method="attention_greedy", **options), tokenizer)
    memory, memory_lengths = task.encode(waves, lengths)
    with torch.inference_mode():
        each = [[hyps[0] for hyps in task._at(memory, memory_lengths, t)] for t in options["temperatures"]]
    best = _decode(model, tokenizer, waves, lengths, **options)  # fallback_pick="best", the default
    for utterance, hyp in enumerate(best):
        candidates = [results[utterance] for results in each]
        assert all(average_log_prob(c) < -1.0 for c in candidates)  # every temperature failed
        winner = max(range(len(candidates)), key=lambda i: average_log_prob(candidates[i]))
        assert hyp.tokens == candidates[winner].tokens and hyp.temperature == options["temperatures"][winner]
    # the loop at T = 0 is likelier per token than any sample: without the compression-ratio
    # check it wins; with it, a sample under the ratio does (faster-whisper's rule)
    assert all(h.temperature == 0.0 for h in best)
    fluent = _decode(model, tokenizer, waves, lengths, **{**options, "compression_ratio_threshold": 2.4})
    assert all(h.temperature > 0.0 and compression_ratio(tokenizer.decode(h.tokens)) <= 2.4 for h in fluent)


@pytest.fixture(scope="module")
def tiny_en(tiny_en_exp):
    model, tokenizer, _ = load_for_inference(tiny_en_exp, None, "cpu")
    return model, tokenizer


def _digit(name: str) -> torch.Tensor:
    return load_audio(fsdd_recordings() / name, 16000)[0]


def test_silence_is_skipped_by_its_no_speech_probability(tiny_en):
    model, tokenizer = tiny_en
    waves, lengths = pad([torch.zeros(16000), _digit("7_george_3.wav")], 0.0)
    plain, speech = _decode(model, tokenizer, waves, lengths, **OFF)
    assert plain.tokens and speech.tokens  # tiny.en writes something for silence
    silent, speech_kept = _decode(model, tokenizer, waves, lengths, **{**OFF, "no_speech_threshold": 0.6, "logprob_threshold": -1.0})
    assert silent.tokens == [] and silent.no_speech > 0.6 and silent.temperature == 0.0
    assert speech_kept.tokens == speech.tokens and speech_kept.no_speech < 0.6
    assert silent.record("")["no_speech_prob"] == silent.no_speech  # recorded in scores.jsonl / transcribe JSON


def test_only_the_failed_utterances_are_decoded_again_in_one_batch(tiny_en, monkeypatch):
    model, tokenizer = tiny_en
    clean = _digit("7_george_3.wav")
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(clean.numel()).astype(np.float32))
    noisy = clean + noise * (10 * clean.pow(2).mean() / noise.pow(2).mean()).sqrt()  # -10 dB: "This is the first time ..."
    waves, lengths = pad([clean, noisy, clean], 0.0)
    batches = []
    sample = asr.decode.task.sample_search
    monkeypatch.setattr(asr.decode.task, "sample_search", lambda scorer, memory, *a, **k: batches.append(memory.shape[0]) or sample(scorer, memory, *a, **k))
    options = {**OFF, "temperatures": (0.0, 0.5, 1.0), "logprob_threshold": -1.0}
    first, second, third = _decode(model, tokenizer, waves, lengths, **options)
    assert batches and set(batches) == {1}  # the noisy one alone, at each temperature it failed
    assert first.temperature == third.temperature == 0.0 and second.temperature > 0.0
    assert first.tokens == third.tokens == _decode(model, tokenizer, waves[:1], lengths[:1], **OFF)[0].tokens
