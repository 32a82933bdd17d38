"""The `asr` command line: help for every command, every option reaching the library, user errors.

Commands are enumerated from the Typer app, so a new command (or a new option of an old one)
fails ``test_every_command_has_a_reach_case_using_every_option`` until a case below covers it.
Library functions are replaced by recorders to check what each option turns into; a few tests
run the real code on tiny data, and two run the installed ``asr`` script in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import typer.main
from typer.testing import CliRunner

import asr.data.librispeech
import asr.data.synthetic
import asr.decode.run
import asr.metrics
import asr.text.tokenizer
import asr.train.loop
import asr.transcribe
from asr.cli import app
from asr.config import DecoderConfig, ExperimentConfig, to_dict
from asr.data.manifest import Utterance, write_manifest
from asr.decode.options import DecodeOptions
from asr.text.tokenizer import train_tokenizer

ASR = Path(sys.executable).parent / "asr"  # the console script installed with the package
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _commands(command, path: tuple[str, ...] = ()) -> dict:
    """Every command of the app by its path, e.g. ("prepare", "librispeech"); groups included.
    (Typer vendors its own click: a group is told by its ``commands``.)"""
    found = {path: command}
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found.update(_commands(sub, path + (name,)))
    return found


COMMANDS = _commands(typer.main.get_command(app))
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not hasattr(cmd, "commands")}


def _invoke(args: list[str]):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


class Recorder:
    """Stands in for a library function: records its arguments, returns ``result``."""

    def __init__(self, result=None):
        self.result = result
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.result

    @property
    def only_call(self) -> tuple[tuple, dict]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


# --------------------------------------------------------------------------- help


def test_the_app_has_the_documented_commands():
    assert set(LEAVES) == {
        ("prepare", "librispeech"), ("prepare", "synthetic"), ("prepare", "kaldi"), ("prepare", "jsonl"),
        ("prepare", "shards"), ("tokenizer", "train"), ("train",), ("average",), ("decode",), ("transcribe",), ("wer",),
        ("plot", "attention"), ("plot", "training"), ("import", "whisper"), ("lm", "train"), ("lm", "download"),
        ("export",),
    }  # fmt: skip


def test_commands_are_listed_in_pipeline_order_and_help_shows_no_python_types():
    text = ANSI.sub("", _invoke(["--help"]).output)
    order = ["prepare", "tokenizer", "train", "average", "decode", "transcribe", "wer"]
    positions = [re.search(rf"^\W*{name}\s", text, re.M).start() for name in order]
    assert positions == sorted(positions), text
    for path in COMMANDS:
        text = ANSI.sub("", _invoke([*path, "--help"]).output)
        assert not re.search(r"<(bool|int|float|str|path|list\[\w+\])>", text, re.I), (path, text)


def test_version_prints_the_package_version():
    import asr

    result = _invoke(["--version"])
    assert result.exit_code == 0 and result.stdout == f"asr {asr.__version__}\n"


def test_shell_completion_is_available():
    result = subprocess.run([str(ASR), "--show-completion", "bash"], capture_output=True, text=True, env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _asr_completion asr" in result.stdout


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "asr")
def test_help_of_every_command_exits_0_and_names_every_option(path):
    result = _invoke([*path, "--help"])
    assert result.exit_code == 0, result.output
    text = ANSI.sub("", result.output)
    command = COMMANDS[path]
    assert (command.help or "").split("\n")[0].split(".")[0] in " ".join(text.split())
    for param in command.params:
        names = [param.metavar or param.name] if param.param_type_name == "argument" else [*param.opts, *param.secondary_opts]
        for name in names:
            assert name in text, f"{' '.join(path)} --help does not mention {name}"
    for name in getattr(command, "commands", {}):
        assert name in text


# --------------------------------------------------------------------------- options reach the code
# One argv per command giving every option a non-default value; the tests below check each value
# arrives, and this first test that no option of any command is left out.


def _decode_args(tmp: Path) -> list[str]:
    return ["decode", "--exp", tmp / "exp", "--manifest", tmp / "test.jsonl", "--out", tmp / "out",
            "--checkpoint", "step-7.pt", "--method", "attention_rescoring", "--beam", "7",
            "--ctc-weight", "0.45", "--length-bonus", "0.25", "--no-length-norm",
            "--max-length-ratio", "0.6", "--batch-size", "3", "--device", "cuda:1", "--nbest", "4",
            "--normalizer", "unicode", "--lm", tmp / "lm", "--lm-weight", "0.4", "--precision", "bf16", "--language", "fr",
            "--best-of", "3", "--compression-ratio-threshold", "2.0", "--logprob-threshold", "-0.5",
            "--no-speech-threshold", "0.7", "--no-repeat-ngram", "4",
            "--set", "decode.length_alpha=0.5", "--set", "decode.pre_beam_ratio=2"]  # fmt: skip


def _transcribe_args(tmp: Path) -> list[str]:
    return ["transcribe", "--exp", tmp / "exp", tmp / "a.wav", tmp / "b.flac", "--format", "json",
            "--out", tmp / "out.jsonl", "--checkpoint", "averaged.pt", "--segment-seconds", "12.5",
            "--nbest", "3", "--no-timestamps", "--align", "cross-attention", "--no-vad",
            "--method", "attention_beam", "--beam", "4", "--ctc-weight", "0.2", "--length-bonus", "0",
            "--length-norm", "--max-length-ratio", "0.8", "--batch-size", "5", "--device", "cpu",
            "--precision", "bf16", "--language", "de", "--best-of", "2", "--compression-ratio-threshold", "3",
            "--logprob-threshold", "-2", "--no-speech-threshold", "0.5", "--no-repeat-ngram", "5",
            "--set", "decode.beam=6", "--set", "decode.temperatures=[0, 0.5]"]  # fmt: skip


def _train_args(tmp: Path) -> list[str]:
    return ["train", "--config", tmp / "config.yaml", "--exp", tmp / "exp",
            "--set", "model.encoder.layers=3", "--set", "train.lr=5e-4",
            "--set", "data.train_manifest=/data/train.jsonl", "--device", "cuda:2", "--init", tmp / "init"]  # fmt: skip


def _tokenizer_args(tmp: Path) -> list[str]:
    return ["tokenizer", "train", "--manifest", tmp / "a.jsonl", "--manifest", tmp / "b.jsonl",
            "--vocab-size", "77", "--model-type", "bpe", "--out", tmp / "tok", "--normalizer", "unicode"]  # fmt: skip


def _librispeech_args(tmp: Path) -> list[str]:
    return ["prepare", "librispeech", "--root", tmp / "corpus",
            "--subsets", " dev-clean, test-other,,train-clean-100 ", "--out", tmp / "manifests",
            "--download", "--base-url", "http://mirror.example/12", "--workers", "3",
            "--sample-rate", "8000", "--trust-layout"]  # fmt: skip


def _synthetic_args(tmp: Path) -> list[str]:
    return ["prepare", "synthetic", "--out", tmp / "synth", "--train-speakers", "5",
            "--dev-speakers", "3", "--test-speakers", "4", "--utterances", "9", "--seed", "11",
            "--workers", "1"]  # fmt: skip


def _average_args(tmp: Path) -> list[str]:
    return ["average", "--exp", tmp / "exp", "--best", "2", "--out", tmp / "avg.pt"]


def _import_args(tmp: Path) -> list[str]:
    return ["import", "whisper", tmp / "tiny.en.pt", "--out", tmp / "exp", "--tokenizer", tmp / "tokenizer.json",
            "--language", "de", "--pad-seconds", "10"]  # fmt: skip


def _wer_args(tmp: Path) -> list[str]:
    return ["wer", tmp / "ref.txt", tmp / "hyp.txt", "--out", tmp / "report", "--json",
            "--alignments", "3", "--top", "4", "--normalizer", "english", "--cer"]  # fmt: skip


def _kaldi_args(tmp: Path) -> list[str]:
    return ["prepare", "kaldi", tmp / "data" / "train", "--out", tmp / "m", "--name", "mine", "--normalizer", "unicode"]


def _jsonl_args(tmp: Path) -> list[str]:
    return ["prepare", "jsonl", tmp / "list.jsonl", "--out", tmp / "m", "--name", "mine", "--normalizer", "unicode"]


def _shards_args(tmp: Path) -> list[str]:
    return ["prepare", "shards", tmp / "train.jsonl", "--out", tmp / "shards", "--shard-seconds", "600",
            "--seed", "3", "--workers", "5"]  # fmt: skip


def _plot_attention_args(tmp: Path) -> list[str]:
    return ["plot", "attention", tmp / "exp", tmp / "a.wav", "--out", tmp / "att.png", "--checkpoint", "last.pt",
            "--method", "attention_beam", "--beam", "3", "--ctc-weight", "0.5", "--device", "cpu"]  # fmt: skip


def _plot_training_args(tmp: Path) -> list[str]:
    return ["plot", "training", tmp / "exp", "--out", tmp / "curves.png"]


def _train_dry_run_args(tmp: Path) -> list[str]:
    return ["train", "--config", tmp / "config.yaml", "--dry-run", "--gpus", "3",
            "--set", f"data.train_manifest={tmp / 'train.jsonl'}"]  # fmt: skip


# Further cases of a command, for options that change what it does (checked with REACH_ARGS).
def _tokenizer_config_args(tmp: Path) -> list[str]:
    return ["tokenizer", "train", "--manifest", tmp / "a.jsonl", "--config", tmp / "config.yaml",
            "--out", tmp / "tok"]  # fmt: skip


MORE_REACH_ARGS = {("train",): _train_dry_run_args, ("tokenizer", "train"): _tokenizer_config_args}

def _lm_train_args(tmp: Path) -> list[str]:
    return ["lm", "train", "--config", tmp / "lm.yaml", "--out", tmp / "lm", "--set", "lm.model.layers=3",
            "--set", f"lm.data.text=[{tmp / 'a.txt'}, {tmp / 'b.txt.gz'}]", "--set", "lm.train.lr=0.002",
            "--device", "cpu"]  # fmt: skip


def _lm_download_args(tmp: Path) -> list[str]:
    return ["lm", "download", "--out", tmp / "lmtext", "--base-url", "http://mirror.example/11",
            "--sha256", "ab" * 32]  # fmt: skip


def _export_args(tmp: Path) -> list[str]:
    return ["export", "--exp", tmp / "exp", "--out", tmp / "model.onnx", "--checkpoint", "step-9.pt"]


REACH_ARGS = {
    ("export",): _export_args,
    ("lm", "train"): _lm_train_args,
    ("lm", "download"): _lm_download_args,
    ("plot", "attention"): _plot_attention_args,
    ("plot", "training"): _plot_training_args,
    ("prepare", "kaldi"): _kaldi_args,
    ("prepare", "jsonl"): _jsonl_args,
    ("prepare", "shards"): _shards_args,
    ("decode",): _decode_args,
    ("transcribe",): _transcribe_args,
    ("train",): _train_args,
    ("tokenizer", "train"): _tokenizer_args,
    ("prepare", "librispeech"): _librispeech_args,
    ("prepare", "synthetic"): _synthetic_args,
    ("average",): _average_args,
    ("wer",): _wer_args,
    ("import", "whisper"): _import_args,
}


def test_every_command_has_a_reach_case_using_every_option(tmp_path):
    assert set(REACH_ARGS) == set(LEAVES), "add a case (args + test) for the new command"
    for path, make_args in REACH_ARGS.items():
        args = [str(a) for a in make_args(tmp_path)]
        if path in MORE_REACH_ARGS:
            args += [str(a) for a in MORE_REACH_ARGS[path](tmp_path)]
        assert tuple(args[: len(path)]) == path
        for param in LEAVES[path].params:
            if param.param_type_name == "option" and "--help" not in param.opts:
                used = [*param.opts, *param.secondary_opts]
                assert any(name in args for name in used), f"{' '.join(path)}: no case sets {used[0]}"


def test_export_options_reach_the_export_and_a_parity_failure_is_exit_2(tmp_path, monkeypatch):
    import asr.experiment
    import asr.export
    from asr.export import Parity

    model = SimpleNamespace()
    load = Recorder((model, None, None))
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x" * 2_000_000)
    export = Recorder(onnx)
    monkeypatch.setattr(asr.experiment, "load_for_inference", load)
    monkeypatch.setattr(asr.export, "export_onnx", export)
    monkeypatch.setattr(asr.export, "check_parity", Recorder(Parity(3e-6, True, True)))
    result = _invoke(_export_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert load.only_call[0] == (tmp_path / "exp", "step-9.pt", "cpu")
    assert export.only_call[0] == (model, tmp_path / "model.onnx")
    text = " ".join(result.stdout.split())  # unwrapped
    assert "2.0 MB" in text and "max |diff| 3.00e-06" in text
    monkeypatch.setattr(asr.export, "check_parity", Recorder(Parity(3e-6, True, False)))
    result = _invoke(_export_args(tmp_path))
    assert result.exit_code == 2 and "differ from torch" in result.output


def test_prepare_shards_options_reach_write_shards(tmp_path, monkeypatch):
    import asr.data.shards

    index = SimpleNamespace(files=("a.tar", "b.tar"), utterances=[SimpleNamespace(duration=1800.0)] * 4)
    record = Recorder(index)
    monkeypatch.setattr(asr.data.shards, "write_shards", record)
    result = _invoke(_shards_args(tmp_path))
    assert result.exit_code == 0, result.output
    (manifest, out), kwargs = record.only_call
    assert (Path(manifest), Path(out)) == (tmp_path / "train.jsonl", tmp_path / "shards")
    assert (kwargs["shard_seconds"], kwargs["seed"], kwargs["num_workers"]) == (600.0, 3, 5)
    assert "2 shard(s) of 4 utterances (2.00 h)" in result.stdout


def _pretend_two_gpus(monkeypatch) -> None:
    """--device cuda:1 is checked against the machine; these tests only follow the option."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_decode_options_reach_decode_manifest(tmp_path, monkeypatch):
    _pretend_two_gpus(monkeypatch)
    record = Recorder(SimpleNamespace(rtf=0.5, rejected=[]))
    monkeypatch.setattr(asr.decode.run, "decode_manifest", record)
    result = _invoke(_decode_args(tmp_path))
    assert result.exit_code == 0, result.output
    (exp, manifest, out, options), kwargs = record.only_call
    assert (Path(exp), Path(manifest), Path(out)) == (tmp_path / "exp", tmp_path / "test.jsonl", tmp_path / "out")
    assert options == DecodeOptions(
        method="attention_rescoring", beam=7, ctc_weight=0.45, length_bonus=0.25, length_norm=False,
        max_length_ratio=0.6, batch_size=3, lm_weight=0.4, precision="bf16", nbest=4, normalizer="unicode",
        lm=str(tmp_path / "lm"), language="fr", length_alpha=0.5, pre_beam_ratio=2.0, best_of=3,
        compression_ratio_threshold=2.0, logprob_threshold=-0.5, no_speech_threshold=0.7, no_repeat_ngram=4,
    )  # fmt: skip
    assert kwargs["checkpoint"] == "step-7.pt"
    assert kwargs["device"] == torch.device("cuda", 1)
    unwrapped = "".join(result.stdout.split())  # rich wraps a long path at the console's width
    assert f"{tmp_path / 'out'}/hyp.txt" in unwrapped and "RTF 0.500" in result.stdout


@pytest.mark.parametrize(
    "extra, length_norm, length_bonus",
    [([], False, 0.0), (["--length-bonus", "1.5"], False, 1.5), (["--length-norm"], True, 0.0)],
)
def test_decode_ranks_by_raw_score_and_length_bonus_unless_told_otherwise(tmp_path, monkeypatch, extra, length_norm, length_bonus):
    record = Recorder(SimpleNamespace(rtf=1.0, rejected=[]))
    monkeypatch.setattr(asr.decode.run, "decode_manifest", record)
    result = _invoke(["decode", "--exp", tmp_path, "--manifest", tmp_path / "dev-clean.jsonl", *extra])
    assert result.exit_code == 0, result.output
    (_, _, out, options), kwargs = record.only_call
    assert (options.length_norm, options.length_bonus) == (length_norm, length_bonus)
    # `asr decode` and DecodeOptions() have the same defaults (ESPnet's ranking: raw score + bonus).
    assert options == dataclasses.replace(DecodeOptions(), length_norm=length_norm, length_bonus=length_bonus).for_model(True)
    assert Path(out) == tmp_path / "decode" / "dev-clean-joint_beam"  # the default output folder
    assert kwargs["checkpoint"] is None and kwargs["device"].type in ("cpu", "cuda")


def test_transcribe_options_reach_transcribe_files(tmp_path, monkeypatch):
    from asr.transcribe import Segment, Transcription

    done = [Transcription(str(tmp_path / "a.wav"), "HELLO", 1.0, [Segment(0.0, 1.0, "HELLO")]),
            Transcription(str(tmp_path / "b.flac"), "", 0.5, [Segment(0.0, 0.5, "")])]  # fmt: skip
    record = Recorder(done)
    monkeypatch.setattr(asr.transcribe, "transcribe_files", record)
    result = _invoke(_transcribe_args(tmp_path))
    assert result.exit_code == 0, result.output
    (exp, audio, options), kwargs = record.only_call
    assert Path(exp) == tmp_path / "exp" and [Path(p) for p in audio] == [tmp_path / "a.wav", tmp_path / "b.flac"]
    assert options == DecodeOptions(
        method="attention_beam", beam=6, ctc_weight=0.2, length_bonus=0.0, length_norm=True,
        max_length_ratio=0.8, batch_size=5, precision="bf16", nbest=3, language="de", best_of=2,
        compression_ratio_threshold=3.0, logprob_threshold=-2.0, no_speech_threshold=0.5, no_repeat_ngram=5,
        temperatures=(0.0, 0.5),
    )  # fmt: skip  (--set decode.beam=6 over --beam 4)
    assert kwargs["checkpoint"] == "averaged.pt" and kwargs["segment_seconds"] == 12.5
    assert (kwargs["timestamps"], kwargs["vad"], kwargs["align"]) == (False, False, "cross-attention")
    assert kwargs["device"] == torch.device("cpu")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()  # --out and --format json
    assert [json.loads(line) for line in lines] == [t.to_json() for t in done]
    assert result.stdout == ""


def test_transcribe_plain_format_prints_path_tab_text(tmp_path, monkeypatch):
    from asr.transcribe import Segment, Transcription

    done = [Transcription("a.wav", "HELLO THERE", 1.0, [Segment(0.0, 1.0, "HELLO THERE")]), Transcription("b.wav", error="b.wav: file not found")]
    monkeypatch.setattr(asr.transcribe, "transcribe_files", Recorder(done))
    result = _invoke(["transcribe", "--exp", tmp_path, "a.wav", "b.wav"])
    assert result.exit_code == 1  # one file failed
    assert result.stdout == "a.wav\tHELLO THERE\n"
    assert result.stderr.strip() == "error: b.wav: file not found"


def _fake_manifest(path: Path, durations: list[float]) -> None:
    """A manifest whose audio does not exist: enough for a dry run, which reads durations only."""
    write_manifest(
        (Utterance(f"u{i}", f"/nowhere/u{i}.flac", d, 16000, "1", "1", "A B") for i, d in enumerate(durations)),
        path,
    )


def test_train_dry_run_prints_the_schedule_and_trains_nothing(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text(
        "data: {max_batch_seconds: 100}\ntrain: {gpus: 4, accum_steps: 1, epochs: 10, warmup_steps: 1000}\n"
    )
    _fake_manifest(tmp_path / "train.jsonl", [10.0] * 400 + [40.0])  # 40 s: over data.max_duration
    record = Recorder()
    monkeypatch.setattr(asr.train.loop, "train", record)
    result = _invoke(_train_dry_run_args(tmp_path)[:-2] + ["--set", f"data.train_manifest={tmp_path / 'train.jsonl'}"])
    assert result.exit_code == 0, result.output
    assert record.calls == []
    out = " ".join(result.stdout.split())
    # 4 x 100 s per update kept on 3 GPUs: 2 micro-batches of 400/6 s each; 6 utterances per
    # micro-batch (66.7 s) -> 67 micro-batches, 23 per rank (dealt in equal shares), 12 updates.
    assert "400 utterances (1.1 h) per epoch, on 3 GPU(s) x 2 accumulated micro-batch(es) of <= 67 s" in out
    assert "audio per update: <= 400 s" in out
    assert "12 per epoch x 10 epochs = 120 total; warmup 1000 (833.3% of the run)" in out
    assert "written for 4 GPU(s); on 3" in out
    assert "warning: warmup (1000 updates) is more than 30% of the run" in out


def test_train_overrides_land_in_the_config_and_device_arrives(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("model:\n  d_model: 64\n  encoder: {layers: 6, heads: 2}\ntrain:\n  epochs: 3\n")
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "config.yaml").write_text("features: {n_mels: 40}\nmodel: {d_model: 32, ctc_weight: 0.1}\n")
    record = Recorder(SimpleNamespace(steps=12, epochs_done=3, best_dev={"metric": [0.5, 1.0], "step": 10}))
    monkeypatch.setattr(asr.train.loop, "train", record)
    result = _invoke(_train_args(tmp_path))
    assert result.exit_code == 0, result.output
    (config, exp), kwargs = record.only_call
    assert isinstance(config, ExperimentConfig) and Path(exp) == tmp_path / "exp"
    assert config.model.encoder.layers == 3 and config.train.lr == 5e-4  # overrides
    assert config.data.train_manifest == "/data/train.jsonl"
    assert config.model.d_model == 64 and config.model.encoder.heads == 2 and config.train.epochs == 3  # YAML
    assert config.model.decoder == DecoderConfig()  # defaults
    assert kwargs["device"] == "cuda:2"
    assert "trained 12 steps (3 epochs)" in result.stdout
    # --init: its config is the base (n_mels, ctc_weight), the file and --set win (d_model)
    assert config.features.n_mels == 40 and config.model.ctc_weight == 0.1
    assert config.train.init == str(tmp_path / "init") and config.data.tokenizer == str(tmp_path / "init" / "tokenizer")


def test_tokenizer_options_reach_train_tokenizer(tmp_path, monkeypatch):
    for name, text in (("a", "A CAT"), ("b", "THE DOG")):
        write_manifest([Utterance(f"s-1-{name}", "x.wav", 1.0, 16000, "s", "1", text)], tmp_path / f"{name}.jsonl")
    record = Recorder(SimpleNamespace(vocab_size=77))
    monkeypatch.setattr(asr.text.tokenizer, "train_tokenizer", record)
    result = _invoke(_tokenizer_args(tmp_path))
    assert result.exit_code == 0, result.output
    (texts, out, vocab_size, model_type, normalizer), _ = record.only_call
    assert list(texts) == ["A CAT", "THE DOG"]  # the transcripts of both manifests, in order
    assert (Path(out), vocab_size, model_type, normalizer) == (tmp_path / "tok", 77, "bpe", "unicode")


def test_tokenizer_vocabulary_size_comes_from_the_config(tmp_path, monkeypatch):
    record = Recorder(SimpleNamespace(vocab_size=300))
    monkeypatch.setattr(asr.text.tokenizer, "train_tokenizer", record)
    (tmp_path / "config.yaml").write_text("data: {vocab_size: 300}\n")
    result = _invoke(_tokenizer_config_args(tmp_path))
    assert result.exit_code == 0, result.output
    (_, _, vocab_size, model_type, _), _ = record.only_call
    assert (vocab_size, model_type) == (300, "unigram")
    (tmp_path / "config.yaml").write_text("data: {vocab_size: 0}\n")
    _assert_one_line_error(_invoke(_tokenizer_config_args(tmp_path)), "--vocab-size")


def test_lm_train_options_reach_train_lm(tmp_path, monkeypatch):
    import asr.lm.train

    record = Recorder(SimpleNamespace(updates=3, loss=1.5))
    monkeypatch.setattr(asr.lm.train, "train_lm", record)
    (tmp_path / "lm.yaml").write_text(f"lm:\n  data: {{tokenizer: {tmp_path / 'tok'}, batch_tokens: 500}}\n  model: {{layers: 2, d_model: 48, heads: 3}}\n")
    result = _invoke(_lm_train_args(tmp_path))
    assert result.exit_code == 0, result.output
    (config, out), kwargs = record.only_call
    assert Path(out) == tmp_path / "lm" and kwargs["device"] == torch.device("cpu") and "3 updates" in result.stdout
    assert (config.data.tokenizer, config.data.batch_tokens) == (str(tmp_path / "tok"), 500)  # the file's
    assert config.data.text == (str(tmp_path / "a.txt"), str(tmp_path / "b.txt.gz"))  # --set's
    assert (config.model.layers, config.model.d_model, config.train.lr) == (3, 48, 0.002)
    _assert_one_line_error(_invoke(["lm", "train", "--out", tmp_path / "x", "--set", "lm.model.depth=3"]), "lm.model.depth")
    _assert_one_line_error(_invoke(["lm", "train", "--out", tmp_path / "x", "--set", "lm.model.heads=5"]), "lm.model.heads=5")


def test_lm_download_options_reach_the_downloader(tmp_path, monkeypatch):
    import asr.lm.download

    record = Recorder(tmp_path / "lmtext" / "librispeech-lm-norm.txt.gz")
    monkeypatch.setattr(asr.lm.download, "download_lm_corpus", record)
    result = _invoke(_lm_download_args(tmp_path))
    assert result.exit_code == 0, result.output
    (out, base_url, sha256), _ = record.only_call
    assert (Path(out), base_url, sha256) == (tmp_path / "lmtext", "http://mirror.example/11", "ab" * 32)


def test_tokenizer_train_end_to_end(tmp_path):
    texts = ["A CAT SAT", "THAT CAT", "A HAT", "THE CAT SAT AT THE HAT", "SEE THE CAT"]  # 8 letters
    write_manifest([Utterance(f"s-1-{i}", "x.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(texts)], tmp_path / "m.jsonl")
    result = _invoke(["tokenizer", "train", "--manifest", tmp_path / "m.jsonl", "--vocab-size", "16", "--out", tmp_path / "tok"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tok" / "tokenizer.model").is_file() and "16 units" in result.stdout


def test_too_small_vocabulary_is_a_one_line_error(tmp_path):
    write_manifest([Utterance("s-1-1", "x.wav", 1.0, 16000, "s", "1", "THE QUICK BROWN FOX JUMPS")], tmp_path / "m.jsonl")
    result = _invoke(["tokenizer", "train", "--manifest", tmp_path / "m.jsonl", "--vocab-size", "8", "--out", tmp_path / "tok"])
    _assert_one_line_error(result, "vocab")


def test_prepare_librispeech_options_reach_the_library(tmp_path, monkeypatch):
    record = Recorder({})
    monkeypatch.setattr(asr.data.librispeech, "prepare_librispeech", record)
    monkeypatch.setattr(asr.data.librispeech, "print_summary", Recorder())
    result = _invoke(_librispeech_args(tmp_path))
    assert result.exit_code == 0, result.output
    (root, subsets, out), kwargs = record.only_call
    assert Path(root) == tmp_path / "corpus" and Path(out) == tmp_path / "manifests"
    assert subsets == ["dev-clean", "test-other", "train-clean-100"]  # split, blanks dropped
    assert kwargs["download"] is True and kwargs["base_url"] == "http://mirror.example/12"
    assert kwargs["num_workers"] == 3 and kwargs["sample_rate"] == 8000 and kwargs["trust_layout"] is True


@pytest.mark.parametrize("command, module, function, make_args", [
    ("kaldi", "asr.data.kaldi", "prepare_kaldi", _kaldi_args),
    ("jsonl", "asr.data.jsonl", "prepare_jsonl", _jsonl_args),
])  # fmt: skip
def test_prepare_kaldi_and_jsonl_options_reach_the_library(tmp_path, monkeypatch, command, module, function, make_args):
    import importlib

    from asr.data.librispeech import PrepareReport

    record = Recorder(PrepareReport("mine", 3, 0.01))
    monkeypatch.setattr(importlib.import_module(module), function, record)
    result = _invoke(make_args(tmp_path))
    assert result.exit_code == 0, result.output
    (source, out), kwargs = record.only_call
    assert Path(source) == Path(make_args(tmp_path)[2]) and Path(out) == tmp_path / "m"
    assert kwargs["name"] == "mine" and kwargs["normalizer"] == "unicode"
    assert "mine" in result.stdout and "3" in result.stdout


def test_plot_options_reach_the_library(tmp_path, monkeypatch):
    import asr.api
    import asr.plot

    made, drawn = Recorder(), Recorder((tmp_path / "att.png", tmp_path / "att.json"))
    monkeypatch.setattr(asr.api, "Recognizer", made)
    monkeypatch.setattr(asr.plot, "attention_data", Recorder({"text": "HI"}))
    monkeypatch.setattr(asr.plot, "plot_attention", drawn)
    result = _invoke(_plot_attention_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert made.only_call == ((tmp_path / "exp", "last.pt", torch.device("cpu")), {})
    (_, kwargs) = asr.plot.attention_data.only_call
    assert kwargs == {"method": "attention_beam", "beam": 3, "ctc_weight": 0.5}
    assert drawn.only_call[0] == ({"text": "HI"}, tmp_path / "att.png")
    curves = Recorder((tmp_path / "curves.png", tmp_path / "curves.json"))
    monkeypatch.setattr(asr.plot, "training_data", Recorder({"train": {}}))
    monkeypatch.setattr(asr.plot, "plot_training", curves)
    result = _invoke(_plot_training_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert asr.plot.training_data.only_call[0] == (tmp_path / "exp",)
    assert curves.only_call[0] == ({"train": {}}, tmp_path / "curves.png")


def test_prepare_librispeech_does_not_download_unless_asked(tmp_path, monkeypatch):
    record = Recorder({})
    monkeypatch.setattr(asr.data.librispeech, "prepare_librispeech", record)
    monkeypatch.setattr(asr.data.librispeech, "print_summary", Recorder())
    assert _invoke(["prepare", "librispeech", "--root", tmp_path, "--subsets", "dev-clean"]).exit_code == 0
    _, kwargs = record.only_call
    assert kwargs["download"] is False and kwargs["sample_rate"] == 16000 and kwargs["trust_layout"] is False


def test_prepare_synthetic_options_reach_the_library(tmp_path, monkeypatch):
    record = Recorder(tmp_path / "synth")
    monkeypatch.setattr(asr.data.synthetic, "make_synthetic_corpus", record)
    result = _invoke(_synthetic_args(tmp_path))
    assert result.exit_code == 0, result.output
    (out,), kwargs = record.only_call
    assert Path(out) == tmp_path / "synth"
    assert {k: v for k, v in kwargs.items() if k != "console"} == {
        "speakers_train": 5, "speakers_dev": 3, "speakers_test": 4, "utterances_per_speaker": 9,
        "seed": 11, "num_workers": 1,
    }  # fmt: skip


def _write_best_checkpoints(exp: Path) -> list[dict]:
    """Three fake checkpoints listed best first in best.json, as training leaves them."""
    directory = exp / "checkpoints"
    directory.mkdir(parents=True)
    states = []
    for step, value in ((30, 1.0), (10, 2.0), (20, 6.0)):
        state = {"model": {"w": torch.full((2,), value), "count": torch.tensor(step)}, "config": {}, "vocab_size": 5}
        torch.save(state, directory / f"step-{step:08d}.pt")
        states.append(state)
    best = [{"name": f"step-{s:08d}.pt", "step": s, "metric": [m, 0.0]} for s, m in ((30, 0.1), (10, 0.2), (20, 0.3))]
    (directory / "best.json").write_text(json.dumps(best))
    return states


def test_average_averages_the_best_n_into_out(tmp_path):
    _write_best_checkpoints(tmp_path / "exp")
    result = _invoke(_average_args(tmp_path))
    assert result.exit_code == 0, result.output
    averaged = torch.load(tmp_path / "avg.pt", weights_only=True)
    assert torch.equal(averaged["model"]["w"], torch.full((2,), 1.5))  # mean of the best 2
    assert averaged["averaged_from"] == ["step-00000030.pt", "step-00000010.pt"]
    assert "averaged 2 checkpoints" in result.stdout


def test_average_writes_averaged_pt_by_default(tmp_path):
    _write_best_checkpoints(tmp_path / "exp")
    assert _invoke(["average", "--exp", tmp_path / "exp"]).exit_code == 0  # --best 5: all 3 kept
    averaged = torch.load(tmp_path / "exp" / "checkpoints" / "averaged.pt", weights_only=True)
    assert torch.equal(averaged["model"]["w"], torch.full((2,), 3.0))


def _write_ref_hyp(tmp: Path) -> None:
    (tmp / "ref.txt").write_text("1-2-0001\tTHE CAT SAT\n1-2-0002\tHELLO\n")
    (tmp / "hyp.txt").write_text("1-2-0001\tTHE CAT SIT\n1-2-0002\tHELLO\n")


def test_wer_json_prints_the_report_and_out_writes_wer_json(tmp_path):
    _write_ref_hyp(tmp_path)
    result = _invoke(_wer_args(tmp_path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["wer"] == pytest.approx(0.25) and report["ser"] == pytest.approx(0.5)
    assert report["words"]["substitutions"] == 1 and report["num_utterances"] == 2
    written = json.loads((tmp_path / "report" / "wer.json").read_text())
    assert written["wer"] == pytest.approx(0.25)
    assert (report["normalizer"], report["primary"]) == ("english", "cer")
    assert report["utterances"][0]["ref"] == "the cat sat"  # the english rule: lower case


def test_wer_reads_kaldi_text_files_and_scores_other_scripts_by_cer(tmp_path):
    (tmp_path / "text").write_text("u1 你好世界\nu2 Привет мир\n")
    (tmp_path / "hyp").write_text("u1 你好世间\nu2 привет, мир!\n")
    result = _invoke(["wer", tmp_path / "text", tmp_path / "hyp", "--normalizer", "unicode", "--cer", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["primary"] == "cer" and report["emptied"] == []
    assert report["chars"]["errors"] == 1 and report["chars"]["reference_length"] == 4 + 10
    tables = _invoke(["wer", tmp_path / "text", tmp_path / "hyp", "--normalizer", "unicode", "--cer"])
    assert "Character error rate" in tables.stdout


def test_wer_warns_when_normalisation_empties_transcripts(tmp_path):
    (tmp_path / "text").write_text("u1 你好世界\nu2 HELLO\n")
    (tmp_path / "hyp").write_text("u1 再见\nu2 HELLO\n")
    result = _invoke(["wer", tmp_path / "text", tmp_path / "hyp"])  # the English default rule
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 transcript(s) became empty under the 'librispeech' normalizer" in text and "u1" in text


def test_wer_alignments_and_top_reach_the_report(tmp_path, monkeypatch):
    _write_ref_hyp(tmp_path)
    record = Recorder()
    monkeypatch.setattr(asr.metrics, "print_report", record)
    result = _invoke(["wer", tmp_path / "ref.txt", tmp_path / "hyp.txt", "--alignments", "3", "--top", "4"])
    assert result.exit_code == 0, result.output
    (report, _), kwargs = record.only_call
    assert report.wer == pytest.approx(0.25) and kwargs == {"alignments": 3, "top": 4}


def test_wer_tables_name_the_error_rates(tmp_path):
    _write_ref_hyp(tmp_path)
    result = _invoke(["wer", tmp_path / "ref.txt", tmp_path / "hyp.txt"])
    assert result.exit_code == 0, result.output
    assert "WER" in result.stdout and "25.0" in result.stdout and "SIT" in result.stdout


# --------------------------------------------------------------------------- end to end on tiny data


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_model):
    """A tiny random experiment (tokenizer, last.pt) and a two-utterance manifest."""
    root = tmp_path_factory.mktemp("cli")
    utterances = []
    for i, text in enumerate(["A CAT SAT", "THE HAT"]):
        t = np.arange(int(0.8 * 16000)) / 16000
        sf.write(root / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t)).astype(np.float32), 16000)
        utterances.append(Utterance(f"1-2-{i:04d}", str(root / f"u{i}.wav"), 0.8, 16000, "1", "2", text))
    write_manifest(utterances, root / "test.jsonl")
    exp = root / "exp"
    tokenizer = train_tokenizer(["A CAT SAT", "THE HAT"], exp / "tokenizer", vocab_size=12)
    model = tiny_model(tokenizer.vocab_size, peaked=False)
    (exp / "checkpoints").mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": to_dict(model.config), "vocab_size": tokenizer.vocab_size}, exp / "checkpoints" / "last.pt")
    return exp, root / "test.jsonl"


def test_decode_end_to_end_writes_hypotheses_and_wer(experiment, tmp_path):
    exp, manifest = experiment
    result = _invoke(["decode", "--exp", exp, "--manifest", manifest, "--out", tmp_path / "out",
                      "--method", "joint_beam", "--beam", "2", "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    ids = [line.split("\t")[0] for line in (tmp_path / "out" / "hyp.txt").read_text().splitlines()]
    assert ids == ["1-2-0000", "1-2-0001"]
    timing = json.loads((tmp_path / "out" / "timing.json").read_text())
    assert timing["options"]["beam"] == 2 and timing["device"] == "cpu"
    assert (tmp_path / "out" / "wer.json").is_file()


# --------------------------------------------------------------------------- user errors


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_decode_nbest_writes_the_n_best_hypotheses_with_scores(experiment, tmp_path):
    exp, manifest = experiment
    result = _invoke(["decode", "--exp", exp, "--manifest", manifest, "--out", tmp_path / "out",
                      "--method", "attention_beam", "--beam", "3", "--nbest", "3", "--device", "cpu",
                      # length normalisation keeps the search going until the beam is full of
                      # finished hypotheses (with raw scores a short one can end it early)
                      "--length-norm"])  # fmt: skip
    assert result.exit_code == 0, result.output
    hyps = dict(line.split("\t") for line in (tmp_path / "out" / "hyp.txt").read_text().splitlines())
    records = [json.loads(line) for line in (tmp_path / "out" / "nbest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == list(hyps)
    for record in records:
        assert 1 < len(record["nbest"]) <= 3
        assert record["nbest"][0]["text"] == hyps[record["id"]]
        scores = [h["score"] for h in record["nbest"]]
        assert scores == sorted(scores, reverse=True) and len({tuple(h["tokens"]) for h in record["nbest"]}) == len(scores)


def test_missing_manifest_is_a_one_line_error(experiment, tmp_path):
    exp, _ = experiment
    missing = tmp_path / "nope.jsonl"
    result = _invoke(["decode", "--exp", exp, "--manifest", missing, "--out", tmp_path / "out"])
    _assert_one_line_error(result, "manifest not found", str(missing))


def test_unknown_config_key_via_set_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(asr.train.loop, "train", Recorder())
    (tmp_path / "config.yaml").write_text("model:\n  d_model: 64\n")
    result = _invoke(["train", "--config", tmp_path / "config.yaml", "--exp", tmp_path / "exp",
                      "--set", "model.encoder.layerz=3"])  # fmt: skip
    _assert_one_line_error(result, "unknown config key model.encoder.layerz", "layers")
    assert not (tmp_path / "exp").exists()


def test_bad_method_is_a_one_line_error(experiment, tmp_path):
    exp, manifest = experiment
    result = _invoke(["decode", "--exp", exp, "--manifest", manifest, "--method", "beamy", "--out", tmp_path / "o"])
    _assert_one_line_error(result, "method 'beamy' is not one of", "joint_beam")
    result = _invoke(["transcribe", "--exp", exp, "a.wav", "--method", "greedy"])
    _assert_one_line_error(result, "method 'greedy' is not one of")


def test_bad_output_format_is_a_one_line_error(experiment):
    exp, _ = experiment
    _assert_one_line_error(_invoke(["transcribe", "--exp", exp, "a.wav", "--format", "csv"]), "--format 'csv'")


def test_missing_ref_file_for_wer_is_a_one_line_error(tmp_path):
    _write_ref_hyp(tmp_path)
    result = _invoke(["wer", tmp_path / "no-ref.txt", tmp_path / "hyp.txt"])
    _assert_one_line_error(result, "not found", str(tmp_path / "no-ref.txt"))


def test_missing_experiment_dir_is_a_one_line_error(tmp_path):
    missing = tmp_path / "no-exp"
    _assert_one_line_error(_invoke(["transcribe", "--exp", missing, "a.wav"]), "experiment directory not found", str(missing))
    _assert_one_line_error(_invoke(["average", "--exp", missing]), str(missing))


def test_decode_with_a_missing_experiment_names_it_and_creates_nothing(tmp_path):
    (tmp_path / "test.jsonl").write_text("")
    missing = tmp_path / "no-exp"
    result = _invoke(["decode", "--exp", missing, "--manifest", tmp_path / "test.jsonl"])
    _assert_one_line_error(result, "experiment directory not found", str(missing))
    assert not missing.exists()


def test_error_messages_are_printed_verbatim_not_as_markup(tmp_path):
    missing = tmp_path / "[bold]x[/bold].txt"
    result = _invoke(["wer", missing, missing])
    _assert_one_line_error(result, "[bold]x[/bold].txt")


def test_a_bug_is_not_disguised_as_a_user_error(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch inside the model")

    monkeypatch.setattr(asr.decode.run, "decode_manifest", broken)
    result = _invoke(["decode", "--exp", tmp_path, "--manifest", tmp_path / "m.jsonl"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)  # a traceback


# --------------------------------------------------------------------------- the installed script


def test_installed_script_help_lists_every_command():
    result = subprocess.run([ASR, "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("prepare", "tokenizer", "train", "average", "decode", "transcribe", "wer"):
        assert name in result.stdout


def test_installed_script_wer_json_end_to_end(tmp_path):
    _write_ref_hyp(tmp_path)
    result = subprocess.run([ASR, "wer", tmp_path / "ref.txt", tmp_path / "hyp.txt", "--json", "--out", tmp_path / "r"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["wer"] == pytest.approx(0.25)
    assert json.loads((tmp_path / "r" / "wer.json").read_text())["cer"] == pytest.approx(1 / 16)
    missing = subprocess.run([ASR, "wer", tmp_path / "nope", tmp_path / "hyp.txt"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: transcript file not found: {tmp_path / 'nope'}"


def test_import_whisper_options_reach_the_importer(tmp_path, monkeypatch):
    import asr.whisper.convert

    summary = SimpleNamespace(source="s", out=tmp_path / "exp", parameters=1e6, vocab_size=51865, n_mels=80, multilingual=True)
    record = Recorder(summary)
    monkeypatch.setattr(asr.whisper.convert, "import_whisper", record)
    result = _invoke(_import_args(tmp_path))
    assert result.exit_code == 0, result.output
    (src, out), kwargs = record.only_call
    assert (Path(src), Path(out)) == (tmp_path / "tiny.en.pt", tmp_path / "exp")
    assert kwargs == {"tokenizer": tmp_path / "tokenizer.json", "language": "de", "pad_seconds": 10.0}
    assert "multilingual" in result.stdout


def test_decode_and_transcribe_keep_freed_memory_in_their_process(tmp_path, monkeypatch):
    """The allocator setting is the commands' (asr.cpu.keep_freed_memory), never the library's."""
    from asr import cpu

    kept = []
    monkeypatch.setattr(cpu, "keep_freed_memory", lambda: kept.append(True) or True)
    monkeypatch.setattr(asr.decode.run, "decode_manifest", Recorder(SimpleNamespace(rtf=0.5, rejected=[])))
    monkeypatch.setattr(asr.transcribe, "transcribe_files", Recorder([]))
    assert _invoke(["decode", "--exp", tmp_path, "--manifest", tmp_path / "m.jsonl"]).exit_code == 0
    assert kept == [True]
    assert _invoke(["transcribe", "--exp", tmp_path, tmp_path / "a.wav"]).exit_code == 0
    assert kept == [True, True]


def _transcribe_stream_args(tmp: Path) -> list[str]:
    return ["--stream", "--chunk-ms", "400"]


MORE_REACH_ARGS[("transcribe",)] = _transcribe_stream_args


def test_transcribe_stream_prints_partials_and_the_final_text(random_experiment, tmp_path):
    from tests.support.experiments import speechlike_file

    exp = random_experiment(["HELLO WORLD", "GOOD MORNING", "A DOG", "YES NO"], decoder_layers=1)[0]
    audio = speechlike_file(tmp_path / "a.wav", seconds=2.0)
    result = _invoke(["transcribe", "--exp", str(exp), str(audio), "--stream", "--chunk-ms", "400", "--format", "json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["path"] == str(audio) and record["text"] == " ".join(s["text"] for s in record["segments"])
    assert record["text"], "a peaked random model says something in 2 s"
    assert f"{audio}: " in result.stderr  # partial results, as they change
    refused = _invoke(["transcribe", "--exp", str(exp), str(audio), "--stream", "--format", "srt"])
    assert refused.exit_code == 2 and "--format srt with --stream" in refused.stderr
