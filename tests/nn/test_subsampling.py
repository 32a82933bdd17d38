import pytest
import torch

from asr.nn.subsampling import LAYERS, ConvSubsampling


@pytest.mark.parametrize("factor", [4, 6, 8])
def test_output_lengths_follow_the_convolution_formula(factor):
    sub = ConvSubsampling(n_mels=80, d_model=16, channels=4, factor=factor)
    for frames in [sub.min_input_frames, 17, 50, 101, 333]:
        out, lengths = sub(torch.randn(1, frames, 80), torch.tensor([frames]))
        expected = frames
        for kernel, stride in LAYERS[factor]:
            expected = (expected - kernel) // stride + 1
        assert out.shape[1] == expected == int(lengths[0])
        assert abs(frames / expected - factor) < factor * 0.5 or frames < 40


@pytest.mark.parametrize("factor", [4, 6, 8])
def test_min_input_frames_gives_exactly_one_frame(factor):
    sub = ConvSubsampling(n_mels=80, d_model=16, channels=4, factor=factor)
    assert int(sub.output_lengths(torch.tensor([sub.min_input_frames]))[0]) == 1
    assert int(sub.output_lengths(torch.tensor([sub.min_input_frames - 1]))[0]) == 0


def test_unknown_factor_is_rejected():
    with pytest.raises(ValueError, match="subsampling factor 5"):
        ConvSubsampling(80, 16, 4, factor=5)
