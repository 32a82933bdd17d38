"""DecodeOptions: checked in one place, errors name the option."""

import pytest

from asr.decode.options import DecodeOptions


def test_options_are_checked_and_errors_name_the_option():
    assert DecodeOptions().method == "joint_beam"
    for kwargs, name in [
        ({"method": "viterbi"}, "method"),
        ({"beam": 0}, "beam"),
        ({"ctc_weight": 1.5}, "ctc_weight"),
        ({"max_length_ratio": 0.0}, "max_length_ratio"),
        ({"batch_size": 0}, "batch_size"),
        ({"length_norm": True, "length_bonus": 0.5}, "length_bonus"),
        ({"pre_beam_ratio": 0.5}, "pre_beam_ratio"),
    ]:
        with pytest.raises(ValueError, match=name):
            DecodeOptions(**kwargs)
