"""asr.vad: energy voice-activity detection and segments no longer than a limit."""

import numpy as np
import pytest
import torch

from asr.vad import pack_regions, speech_frames, speech_regions, vad_segments

RATE = 16000


def _bursts(spans: list[tuple[float, float]], seconds: float, noise: float = 0.0) -> torch.Tensor:
    """Tones over each (start, end) second span, silence (or faint noise) elsewhere."""
    rng = np.random.default_rng(0)
    wave = noise * rng.standard_normal(int(seconds * RATE))
    t = np.arange(wave.size) / RATE
    for start, end in spans:
        inside = (t >= start) & (t < end)
        wave[inside] += 0.3 * np.sin(2 * np.pi * 300 * t[inside]) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t[inside]))
    return torch.from_numpy(wave).float()


def test_speech_frames_are_the_loud_ones_even_over_a_noise_floor():
    wave = _bursts([(0.5, 1.0)], 2.0, noise=0.003)
    voiced = speech_frames(wave, RATE)
    assert voiced.shape == (200,)
    assert voiced[50:100].all() and not voiced[:45].any() and not voiced[105:].any()


def test_audio_without_pauses_is_all_speech():
    wave = _bursts([(0.0, 2.0)], 2.0)
    assert speech_frames(wave, RATE).all()


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_regions_cover_each_burst_with_context_and_short_pauses_join(noise):
    # 0.1 s pause (inside one region: < min_silence) and 0.6 s pause (two regions)
    wave = _bursts([(0.5, 1.0), (1.1, 1.5), (2.1, 2.6)], 3.5, noise)
    regions = [(s / RATE, e / RATE) for s, e in speech_regions(wave, RATE)]
    assert len(regions) == 2
    (a0, a1), (b0, b1) = regions  # no lead; 0.25 s of tail, but never past halfway to the next
    assert a0 == pytest.approx(0.5, abs=0.02) and a1 == pytest.approx(1.75, abs=0.02)
    assert b0 == pytest.approx(2.1, abs=0.02) and b1 == pytest.approx(2.85, abs=0.02)
    (c0, c1), _ = [(s / RATE, e / RATE) for s, e in speech_regions(wave, RATE, lead=0.1, tail=0.5)]
    assert c0 == pytest.approx(0.4, abs=0.02) and c1 == pytest.approx(1.8, abs=0.02)  # halfway


def test_silence_has_no_regions_and_speech_to_the_end_keeps_the_tail():
    assert speech_regions(torch.zeros(RATE), RATE) == []
    wave = _bursts([(0.5, 1.0053)], 1.0053)
    assert speech_regions(wave, RATE)[-1][1] == wave.numel()


def test_neighbours_are_packed_while_they_fit():
    regions = [(0, 10), (20, 30), (35, 60), (100, 110)]
    assert pack_regions(regions, 30) == [(0, 30), (35, 60), (100, 110)]
    assert pack_regions(regions, 1000) == [(0, 110)]
    assert pack_regions(regions, 5) == regions  # too long on their own: left as they are


def test_segments_never_exceed_the_limit_and_cover_all_speech():
    spans = [(0.3, 2.8), (3.5, 4.0), (4.4, 5.0), (6.0, 9.5)]
    wave = _bursts(spans, 10.0)
    segments = vad_segments(wave, RATE, 2.0)
    assert all(0 < e - s <= 2 * RATE for s, e in segments)
    assert all(a[1] <= b[0] for a, b in zip(segments, segments[1:]))  # in order, no overlap
    for start, end in spans:  # every burst sample is inside some segment
        covered = sum(min(e, int(end * RATE)) - max(s, int(start * RATE)) for s, e in segments if e > start * RATE and s < end * RATE)
        assert covered == int(end * RATE) - int(start * RATE)
    # the 0.4 s pause between 4.0 and 4.4 is packed into one segment; long stretches are cut
    assert any(s <= 3.5 * RATE and e >= 5.0 * RATE for s, e in segments)


def test_audio_that_fits_is_one_untouched_segment():
    wave = _bursts([(0.5, 1.0)], 2.0)
    assert vad_segments(wave, RATE, 2.0) == [(0, wave.numel())]
    assert vad_segments(wave[:0], RATE, 2.0) == []
    assert vad_segments(wave, RATE, 1.9)[0][0] == int(0.5 * RATE)  # longer than the limit: cut at speech
