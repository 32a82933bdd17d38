"""DecodeOptions: the one decode config. Checked in one place, errors name the option, and its
defaults are the only ones: `asr decode`, `asr transcribe`, the API and `--set` all read them."""

import dataclasses

import pytest
import typer.main

from asr.api import DEFAULTS, PIPELINE_DEFAULTS, decode_options
from asr.cli import app
from asr.config import ConfigError
from asr.decode.options import DecodeOptions, with_overrides


def test_options_are_checked_and_errors_name_the_option():
    assert DecodeOptions().method is None  # decided per model:
    assert DecodeOptions().for_model(has_ctc_head=True).method == "joint_beam"
    assert DecodeOptions().for_model(has_ctc_head=False).method == "attention_beam"
    assert DecodeOptions(method="ctc_greedy").for_model(False).method == "ctc_greedy"
    for kwargs, name in [
        ({"method": "viterbi"}, "method"),
        ({"beam": 0}, "beam"),
        ({"ctc_weight": 1.5}, "ctc_weight"),
        ({"max_length_ratio": 0.0}, "max_length_ratio"),
        ({"batch_size": 0}, "batch_size"),
        ({"length_norm": True, "length_bonus": 0.5}, "length_bonus"),
        ({"pre_beam_ratio": 0.5}, "pre_beam_ratio"),
        ({"nbest": 0}, "nbest"),
        ({"lm": "lm/"}, "lm_weight"),
    ]:
        with pytest.raises(ValueError, match=name):
            DecodeOptions(**kwargs)


def _command_defaults(name: str) -> dict:
    return {p.name: p.default for p in typer.main.get_command(app).commands[name].params}


@pytest.mark.parametrize("command", ["decode", "transcribe"])
def test_every_decoding_option_of_the_cli_has_the_default_of_decode_options(command):
    defaults, fields = _command_defaults(command), dataclasses.asdict(DecodeOptions())
    shared = sorted(set(defaults) & set(fields))
    assert len(shared) >= 10  # the options each command has a flag for
    assert {name: defaults[name] for name in shared} == {name: fields[name] for name in shared}
    assert defaults["set_"] is None  # and --set decode.KEY reaches every other field


def test_the_api_has_every_option_of_decode_options_with_its_default():
    fields = dataclasses.asdict(DecodeOptions())
    assert {k: v for k, v in DEFAULTS.items() if k in fields} == {k: v for k, v in fields.items() if k not in ("lm", "normalizer")}
    assert set(DEFAULTS) - set(fields) == set(PIPELINE_DEFAULTS)
    options, _ = decode_options()
    assert options == DecodeOptions().for_model(True)


def test_set_overrides_any_field_with_its_type_checked_and_names_an_unknown_key():
    options = with_overrides(DecodeOptions(), ["decode.beam=5", "decode.length_alpha=0.6", "decode.language=null"])
    assert options == dataclasses.replace(DecodeOptions(), beam=5, length_alpha=0.6)
    assert with_overrides(DecodeOptions(), []) == DecodeOptions()
    with pytest.raises(ConfigError, match="unknown config key decode.beam_size; valid keys here: .*beam"):
        with_overrides(DecodeOptions(), ["decode.beam_size=5"])
    with pytest.raises(ConfigError, match="decode.beam: expected an integer"):
        with_overrides(DecodeOptions(), ["decode.beam=wide"])
    with pytest.raises(ConfigError, match="decode.KEY=VALUE"):
        with_overrides(DecodeOptions(), ["model.d_model=4"])
    with pytest.raises(ValueError, match="beam must be an integer from 1"):
        with_overrides(DecodeOptions(), ["decode.beam=0"])
