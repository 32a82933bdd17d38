import dataclasses
import math

import pytest
import torch

from asr.augment import SpecAugment, choose_speed, random_masks, speed_perturb, time_warp
from asr.config import AugmentConfig

LENGTHS = torch.tensor([200, 150, 90, 40, 200, 120, 60, 180])


def features(lengths: torch.Tensor = LENGTHS, bins: int = 80) -> torch.Tensor:
    """(B, T, F) features that are never 0 inside each utterance and 0 in the padding."""
    feats = torch.rand(len(lengths), int(lengths.max()), bins) + 1.0
    valid = torch.arange(feats.size(1)) < lengths[:, None]
    return feats * valid[..., None]


def masked_bins(out: torch.Tensor, lengths: torch.Tensor) -> list[int]:
    """Per utterance: how many frequency bins are zero over all of its frames."""
    return [int((out[b, : lengths[b]] == 0).all(0).sum()) for b in range(len(lengths))]


def masked_frames(out: torch.Tensor, lengths: torch.Tensor) -> list[int]:
    """Per utterance: how many of its frames are zero in every bin."""
    return [int((out[b, : lengths[b]] == 0).all(1).sum()) for b in range(len(lengths))]


def test_masks_applied_in_training_and_not_in_eval():
    feats = features()
    augment = SpecAugment(AugmentConfig(spec_augment=True, time_warp=False))
    out = augment.train()(feats, LENGTHS)
    assert out.shape == feats.shape
    assert sum(masked_bins(out, LENGTHS)) > 0
    assert sum(masked_frames(out, LENGTHS)) > 0
    assert torch.equal(augment.eval()(feats, LENGTHS), feats)


def test_masks_differ_between_utterances():
    lengths = torch.full((16,), 100)
    feats = features(lengths)
    out = SpecAugment(AugmentConfig(time_warp=False)).train()(feats, lengths)
    patterns = {tuple((out[b] == 0).all(0).tolist()) for b in range(16)}
    assert len(patterns) > 8


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(spec_augment=False, time_warp=False),
        AugmentConfig(freq_masks=0, time_masks=0, time_warp=False),
        AugmentConfig(freq_mask_width=0, time_mask_width=0, time_warp=False),
    ],
)
def test_disabled_augmentation_changes_nothing(config):
    feats = features()
    assert torch.equal(SpecAugment(config).train()(feats, LENGTHS), feats)


def test_each_mask_kind_switches_alone():
    feats = features()
    only_freq = SpecAugment(AugmentConfig(time_masks=0, time_warp=False)).train()(feats, LENGTHS)
    assert sum(masked_bins(only_freq, LENGTHS)) > 0 and sum(masked_frames(only_freq, LENGTHS)) == 0
    only_time = SpecAugment(AugmentConfig(freq_masks=0, time_warp=False)).train()(feats, LENGTHS)
    assert sum(masked_bins(only_time, LENGTHS)) == 0 and sum(masked_frames(only_time, LENGTHS)) > 0


def test_mask_widths_are_bounded():
    config = AugmentConfig(
        freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=40, time_warp=False
    )
    augment = SpecAugment(config).train()
    for _ in range(20):
        out = augment(features(), LENGTHS)
        assert max(masked_bins(out, LENGTHS)) <= 2 * 10
        for b, frames in enumerate(masked_frames(out, LENGTHS)):
            # each of the 2 masks is at most min(40, 20% of the utterance) frames wide
            assert frames <= 2 * min(40, int(0.2 * LENGTHS[b]))


def test_random_masks_stay_inside_each_extent():
    extent = torch.tensor([0, 1, 3, 10, 50, 100] * 50)
    widest = torch.tensor([5, 5, 5, 5, 20, 100] * 50)
    covered = random_masks(widest, extent, 120, count=3)
    positions = torch.arange(120)
    assert not (covered & (positions >= extent[:, None])).any()
    # long extents do get masked: the spans really are drawn
    assert covered[extent == 100].any(1).float().mean() > 0.9


def test_time_warp_keeps_shape_moves_frames_and_keeps_ends():
    lengths = torch.tensor([100, 60, 12, 30])
    ramp = torch.arange(100.0)[None, :, None].repeat(4, 1, 3)  # value = frame index
    ramp = ramp * (torch.arange(100) < lengths[:, None])[..., None]
    warped = time_warp(ramp, lengths, window=5)
    assert warped.shape == ramp.shape
    for b, n in enumerate(lengths.tolist()):
        values = warped[b, :n, 0]
        assert values[0] == 0 and values[-1] == n - 1  # the ends stay in place
        assert (values[1:] >= values[:-1]).all()  # time still runs forward
        assert (warped[b, n:] == 0).all()
    assert torch.equal(warped[2], ramp[2])  # 12 < 2 * 5 + 3 frames: too short to warp
    moved = [not torch.equal(time_warp(ramp, lengths, 5)[0], ramp[0]) for _ in range(10)]
    assert sum(moved) >= 5  # a shift of 0 is possible, but rare (1 in 11)


def test_time_warp_in_spec_augment_is_switchable():
    feats = features()
    config = AugmentConfig(freq_masks=0, time_masks=0, time_warp=True, time_warp_window=5)
    out = SpecAugment(config).train()(feats, LENGTHS)
    assert out.shape == feats.shape and not torch.equal(out, feats)
    assert torch.equal(SpecAugment(config).eval()(feats, LENGTHS), feats)
    # spec_augment: false turns every part off, time warp included.
    off = dataclasses.replace(config, spec_augment=False, time_mask_ratio=0.05, time_masks=5)
    assert all(torch.equal(SpecAugment(off).train()(feats, LENGTHS), feats) for _ in range(5))


def _time_mask_widths(config: AugmentConfig, lengths: torch.Tensor, draws: int) -> torch.Tensor:
    """(draws, B) width of the single time mask drawn in each utterance, over many draws."""
    augment = SpecAugment(dataclasses.replace(config, time_masks=1, freq_masks=0, time_warp=False)).train()
    feats = features(lengths, bins=2)
    return torch.stack([torch.tensor(masked_frames(augment(feats, lengths), lengths)) for _ in range(draws)])


def test_time_masks_scale_with_each_utterance_s_length():
    torch.manual_seed(0)
    lengths = torch.tensor([1000, 400, 100])
    widths = _time_mask_widths(AugmentConfig(time_mask_ratio=0.05), lengths, draws=2000).float()
    widest = (lengths * 0.05).floor()  # 50, 20, 5 frames
    assert torch.equal(widths.max(0).values, widest)  # reached, never passed
    assert (widths.min(0).values == 0).all()
    # Width uniform over 0..widest: mean widest / 2, variance ((widest + 1)^2 - 1) / 12.
    assert torch.allclose(widths.mean(0), widest / 2, rtol=0.06)
    assert torch.allclose(widths.var(0), ((widest + 1) ** 2 - 1) / 12, rtol=0.12)
    # Per utterance, not per batch: a short utterance in a long batch gets short masks.
    assert widths[:, 2].mean() < widths[:, 0].mean() / 5


def test_five_masks_of_five_percent_cover_about_eleven_percent():
    """ESPnet's 100 h setting: 5 masks of up to 5% of the length, placed independently."""
    torch.manual_seed(1)
    lengths = torch.full((64,), 800)
    config = AugmentConfig(time_masks=5, time_mask_ratio=0.05, freq_masks=0, time_warp=False)
    augment = SpecAugment(config).train()
    feats = features(lengths, bins=2)
    covered = torch.tensor([masked_frames(augment(feats, lengths), lengths) for _ in range(30)]).float() / 800
    # Each mask covers 2.5% on average; five overlapping ones a little less than 12.5%.
    assert 0.105 < covered.mean() < 0.125
    assert covered.max() <= 0.25


def test_start_of_time_masks_is_uniform_over_the_utterance():
    torch.manual_seed(2)
    lengths = torch.full((4000,), 100)
    covered = random_masks(torch.full((4000,), 10), lengths, 100, count=1)  # (B, T)
    starts = covered.float().argmax(1)[covered.any(1)]
    # Widths 0..10, starts uniform over 0..100 - width: P(start < 48) = 48 / (101 - width),
    # about 0.5 on average; the whole utterance is reached.
    assert abs(float((starts < 48).float().mean()) - 0.5) < 0.03
    assert int(starts.min()) == 0 and int(starts.max()) >= 95


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_and_pitch(factor):
    t = torch.arange(16000) / 16000
    wave = torch.sin(2 * math.pi * 440 * t)
    out = speed_perturb(wave, 16000, factor)
    assert abs(out.numel() - 16000 / factor) <= 1
    spectrum = torch.fft.rfft(out[1000:-1000] * torch.hann_window(out.numel() - 2000))
    peak_hz = spectrum.abs().argmax().item() * 16000 / (out.numel() - 2000)
    assert abs(peak_hz - 440 * factor) < 5
    assert torch.equal(out, speed_perturb(wave, 16000, factor))


def test_speed_one_is_identity():
    wave = torch.randn(1234)
    assert torch.equal(speed_perturb(wave, 16000, 1.0), wave)


def test_choose_speed_is_deterministic_and_varies():
    speeds = (0.9, 1.0, 1.1)
    epoch0 = [choose_speed(speeds, 7, 0, i) for i in range(300)]
    assert epoch0 == [choose_speed(speeds, 7, 0, i) for i in range(300)]
    assert set(epoch0) == set(speeds)
    assert all(epoch0.count(s) > 60 for s in speeds)  # roughly uniform
    assert epoch0 != [choose_speed(speeds, 7, 1, i) for i in range(300)]
    assert epoch0 != [choose_speed(speeds, 8, 0, i) for i in range(300)]
