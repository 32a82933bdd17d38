"""Streaming recognition: audio in pieces of any size, partial results per chunk, attention
rescoring at the end equal to offline rescoring when a chunk holds the whole utterance, and
endpoints after trailing blanks."""

import pytest
import torch

from asr.decode.options import DecodeOptions
from asr.decode.rescore import attention_rescoring
from asr.decode.streaming import RecognitionStream, StreamError, StreamOptions
from asr.experiment import load_for_inference
from asr.text.tokenizer import BLANK_ID
from tests.support.experiments import make_random_experiment

TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    exp, _ = make_random_experiment(tmp_path_factory.mktemp("stream"), TEXTS, decoder_layers=1)
    model, tokenizer, _ = load_for_inference(exp)
    return model, tokenizer


def _wave(seconds: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    tones = sum(torch.sin(2 * torch.pi * f * t + float(torch.rand((), generator=generator)) * 6) for f in (220.0, 540.0, 1300.0))
    return 0.07 * (0.5 + 0.5 * torch.sin(2 * torch.pi * 3.0 * t) ** 2) * tones


def _feed(stream: RecognitionStream, wave: torch.Tensor, pieces: list[int]) -> list[str]:
    partials, start = [], 0
    for size in pieces:
        partials.append(stream.accept(wave[start : start + size]))
        start += size
    partials.append(stream.accept(wave[start:]))
    return partials


def test_one_chunk_of_the_whole_utterance_gives_offline_attention_rescoring(loaded):
    model, tokenizer = loaded
    wave = _wave(2.0)
    stream = RecognitionStream(model, tokenizer, StreamOptions(chunk_ms=60_000, endpoint_ms=0, beam=10, ctc_weight=0.5))
    _feed(stream, wave, [1000, 7, 4000, 15000])
    result = stream.finish()
    with torch.inference_mode():
        memory, lengths = model.encode(wave[None], torch.tensor([wave.numel()]))
        offline = attention_rescoring(
            model.decoder, memory, lengths, model.ctc_log_probs(memory),
            DecodeOptions(method="attention_rescoring", beam=10, ctc_weight=0.5),
        )[0][0]
    assert offline.tokens, "the random model must say something for this comparison to mean anything"
    assert [segment.text for segment in result.segments] == [tokenizer.decode(offline.tokens)]
    assert result.words and result.words[-1].end <= 2.0 + 0.05


def test_partial_results_come_every_chunk_and_the_final_one_at_the_end(loaded):
    model, tokenizer = loaded
    wave = _wave(3.0, seed=1)
    stream = RecognitionStream(model, tokenizer, StreamOptions(chunk_ms=320, endpoint_ms=0))
    chunk = 320 * 16
    partials = _feed(stream, wave, [chunk] * 8)
    assert any(partials), "no partial text in 3 s of a peaked random model"
    # each call with a whole new chunk of audio advanced the encoder by one chunk of 8 frames
    assert stream.utterance.encoder.offset == sum(len(m[0]) for m in stream.utterance.memory) >= 8 * 8
    final = stream.finish()
    assert len(final.segments) == 1 and final.segments[0].end == pytest.approx(3.0, abs=0.1)


def test_trailing_blanks_end_an_utterance_and_the_next_starts_afresh(loaded, monkeypatch):
    model, tokenizer = loaded
    frames = 150  # 6 s of 40 ms encoder frames
    script = torch.full((1, frames, model.vocab_size), -30.0)
    script[..., BLANK_ID] = 0.0
    for start in (10, 90):  # the word "HE" at 0.4 s and at 3.6 s, one piece a frame
        for offset, token in enumerate(tokenizer.encode("HE")):
            script[0, start + offset, BLANK_ID], script[0, start + offset, token] = -30.0, 0.0
    position = {"frame": 0}

    def scripted(encoded):
        start = position["frame"]
        position["frame"] += encoded.shape[1]
        return script[:, start : start + encoded.shape[1]].log_softmax(-1)

    monkeypatch.setattr(model, "ctc_log_probs", scripted)
    stream = RecognitionStream(model, tokenizer, StreamOptions(chunk_ms=320, endpoint_ms=800, rescore=False))
    _feed(stream, _wave(6.0), [320 * 16] * 18)
    # each word ended its utterance 20 blank frames (800 ms) later, before the stream's end
    assert [(s.text, s.end) for s in stream.segments] == [("HE", 1.6), ("HE", 4.8)]
    result = stream.finish()  # the blank rest is no segment
    assert [s.text for s in result.segments] == ["HE", "HE"]
    first, second = result.segments
    assert first.words[0].start == pytest.approx(0.4, abs=0.1) and second.words[0].start == pytest.approx(3.6, abs=0.1)
    assert first.end <= second.start


def test_a_stream_without_endpoints_is_cut_at_max_utterance_s_so_what_it_holds_stays_bounded(loaded):
    model, tokenizer = loaded
    # never an endpoint (endpoint_ms 0), the whole left context attended (left_chunks -1), and the
    # whole 12 s given in one call: only the cut at max_utterance_s bounds what the stream keeps
    stream = RecognitionStream(model, tokenizer, StreamOptions(chunk_ms=320, endpoint_ms=0, left_chunks=-1, max_utterance_s=2.56))
    stream.accept(_wave(12.0, seed=2))
    utterance = stream.utterance
    assert utterance.encoder.offset <= 64  # 2.56 s of 40 ms frames: 8 chunks
    assert sum(m.shape[1] for m in utterance.memory) <= 64
    assert all(keys.shape[2] <= 64 for keys, _ in filter(None, utterance.encoder.left))
    result = stream.finish()
    assert result.segments, "the peaked random model says something in 12 s"
    assert all(s.end - s.start <= 2.56 + 1e-6 for s in result.segments)
    assert result.segments[-1].end == pytest.approx(12.0, abs=0.1)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(result.segments, result.segments[1:]))


def test_bad_streaming_options_are_refused():
    with pytest.raises(StreamError, match="chunk_ms"):
        StreamOptions(chunk_ms=0)
    with pytest.raises(StreamError, match="max_utterance_s"):
        StreamOptions(max_utterance_s=0)
    with pytest.raises(StreamError, match="beam"):
        StreamOptions(beam=10_000)
