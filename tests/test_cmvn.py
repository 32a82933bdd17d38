"""CMVN statistics of a training set (asr.cmvn): exact sums, seeded subsets, the JSON file."""

import json

import pytest
import soundfile as sf
import torch

from asr.cmvn import CMVNError, compute_cmvn_stats, load_cmvn, save_cmvn
from asr.features import GlobalCMVN, LogMel
from test_features import CONFIG, read_frames, write_corpus


def test_cmvn_stats_match_direct_computation(tmp_path):
    utterances = write_corpus(tmp_path, [16000, 8000, 12000, 5000, 9999, 401])
    mean, var = compute_cmvn_stats(utterances, CONFIG, num_workers=2)
    frames = read_frames(utterances).double()
    assert mean.shape == var.shape == (80,)
    torch.testing.assert_close(mean, frames.mean(0).float(), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(var, frames.var(0, unbiased=False).float(), atol=1e-4, rtol=1e-4)


def test_cmvn_subset_is_seeded(tmp_path):
    utterances = write_corpus(tmp_path, [4000 + 1000 * i for i in range(8)])
    first = compute_cmvn_stats(utterances, CONFIG, max_utterances=3, num_workers=0)
    again = compute_cmvn_stats(utterances, CONFIG, max_utterances=3, num_workers=0)
    full = compute_cmvn_stats(utterances, CONFIG, num_workers=0)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first[0], full[0])


def test_normalised_training_features_have_zero_mean_unit_std(tmp_path):
    utterances = write_corpus(tmp_path, [16000, 8000, 12000, 5000, 9999])
    cmvn = GlobalCMVN.from_stats(*compute_cmvn_stats(utterances, CONFIG, num_workers=0))
    logmel = LogMel(CONFIG)
    normalised = []
    for u in utterances:
        wave = torch.from_numpy(sf.read(u.audio, dtype="float32")[0])
        padded = torch.nn.functional.pad(wave, (0, 3000))[None]  # padding must stay out of stats
        feats, lengths = logmel(padded, torch.tensor([wave.numel()]))
        out = cmvn(feats, lengths)
        assert (out[0, lengths[0] :] == 0).all()
        normalised.append(out[0, : lengths[0]])
    frames = torch.cat(normalised).double()
    assert frames.mean(0).abs().max() < 1e-4
    assert (frames.std(0, unbiased=False) - 1).abs().max() < 1e-4


def test_cmvn_json_round_trip_and_state_dict(tmp_path):
    mean, var = torch.randn(80), torch.rand(80) + 0.5
    save_cmvn(tmp_path / "cmvn.json", mean, var)
    record = json.loads((tmp_path / "cmvn.json").read_text())
    assert sorted(record) == ["mean", "var"] and len(record["mean"]) == len(record["var"]) == 80
    loaded_mean, loaded_var = load_cmvn(tmp_path / "cmvn.json")
    torch.testing.assert_close(loaded_mean, mean)
    torch.testing.assert_close(loaded_var, var)

    cmvn = GlobalCMVN.from_stats(loaded_mean, loaded_var)
    torch.testing.assert_close(cmvn.std, var.sqrt())
    restored = GlobalCMVN(80)  # how a model built from a checkpoint gets its statistics
    restored.load_state_dict(cmvn.state_dict())
    feats = torch.randn(2, 7, 80)
    lengths = torch.tensor([7, 4])
    expected = (feats - mean) / var.sqrt()
    out = restored(feats, lengths)
    torch.testing.assert_close(out[0], expected[0])
    torch.testing.assert_close(out[1, :4], expected[1, :4])
    assert (out[1, 4:] == 0).all()


def test_a_damaged_cmvn_file_is_one_clear_error(tmp_path):
    path = tmp_path / "cmvn.json"
    path.write_text('{"mean": [0.0, 1.0]')  # cut short by a crash in an older version
    with pytest.raises(CMVNError, match=r"cmvn.json: not CMVN statistics .*delete it to recompute"):
        load_cmvn(path)
    path.write_text('{"mean": [0.0, 1.0], "var": [1.0]}')
    with pytest.raises(CMVNError, match="mean has 2 bins but var has 1"):
        load_cmvn(path)
    path.write_text('{"mean": [NaN, 1.0], "var": [1.0, 1.0]}')  # what older versions wrote for NaN audio
    with pytest.raises(CMVNError, match="statistics are not finite"):
        load_cmvn(path)


def test_nonfinite_audio_gives_a_clear_error_not_nan_statistics(tmp_path):
    utterances = write_corpus(tmp_path, [8000, 9000])
    sf.write(utterances[1].audio, torch.full((9000,), float("nan")).numpy(), 16000, subtype="FLOAT")
    with pytest.raises(ValueError) as error:  # CMVNError here, or the audio reader's own error
        compute_cmvn_stats(utterances, CONFIG, num_workers=0)
    assert "\n" not in str(error.value) and any(w in str(error.value).lower() for w in ("nan", "finite"))

