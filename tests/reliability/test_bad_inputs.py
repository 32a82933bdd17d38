"""Bad inputs, command by command: each is one line naming the file, line, key or option, exit
status 2, and nothing written or changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reliability_kit import World, asr, assert_one_line_error, limit_for_extra, run_asr, snapshot, speechlike, write_wave

# --------------------------------------------------------------------------- manifests

GOOD = {"id": "1-2-0000", "audio": "/x.wav", "duration": 1.0, "sample_rate": 16000,
        "speaker": "1", "chapter": "2", "text": "HELLO"}  # fmt: skip
BAD_RECORDS = {
    "null duration": ({"duration": None}, "duration"),
    "string duration": ({"duration": "1.5"}, "duration"),
    "negative duration": ({"duration": -1}, "duration"),
    "bool sample rate": ({"sample_rate": True}, "sample_rate"),
    "null text": ({"text": None}, "text must be a string"),
    "number id": ({"id": 7}, "id must be a string"),
    "empty audio path": ({"audio": ""}, "audio is empty"),
    "TAB in id": ({"id": "1-2\t0001"}, "id '1-2\\t0001' holds a TAB"),
    "newline in id": ({"id": "1-2\n0001"}, "holds a newline"),
    "line separator in id": ({"id": "1-2\u20280001"}, "U+2028"),
}


def _manifest_commands(world: World, manifest: Path, tmp_path: Path) -> dict[str, list]:
    """Every command that reads a manifest, given ``manifest``."""
    return {
        "decode": ["decode", "--exp", world.exp, "--manifest", manifest, "--out", tmp_path / "out", "--device", "cpu"],
        "wer": ["wer", manifest, world.test_manifest, "--out", tmp_path / "out"],
        "tokenizer": ["tokenizer", "train", "--manifest", manifest, "--vocab-size", "20", "--out", tmp_path / "out"],
        "train": ["train", "--config", world.config, "--exp", tmp_path / "out", "--set", f"data.train_manifest={manifest}", "--set", "model.d_model=16"],
    }


@pytest.mark.parametrize("command", ["decode", "wer", "tokenizer", "train"])
@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_manifest_values_of_the_wrong_type(world, tmp_path, command, case):
    change, fragment = BAD_RECORDS[case]
    manifest = tmp_path / "bad.jsonl"
    records = [GOOD, {**GOOD, "id": "1-2-0001", **change}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = _manifest_commands(world, manifest, tmp_path)[command]
    assert_one_line_error(asr(*args), f"{manifest}:2", fragment)
    _assert_nothing_made(tmp_path / "out", command)


def _assert_nothing_made(out: Path, command: str) -> None:
    # A new experiment's folder gets its config and tokenizer first; nothing else may be made.
    if command == "train":
        assert not (out / "checkpoints").exists() and not (out / "cmvn.json").exists()
    else:
        assert not out.exists()


def test_prepare_jsonl_lists_ids_with_control_characters_as_rejected(tmp_path):
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    src = tmp_path / "mine.jsonl"
    ids = ["good-1", "tab\tid", "new\nline", "bell\x07", "good-2"]
    src.write_text("".join(json.dumps({"id": i, "audio": str(wav), "text": "HELLO"}) + "\n" for i in ids))
    result = asr("prepare", "jsonl", src, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    manifest = [json.loads(line) for line in (tmp_path / "m" / "mine.jsonl").read_text().splitlines()]
    assert [u["id"] for u in manifest] == ["good-1", "good-2"]
    rejected = (tmp_path / "m" / "mine.rejected.tsv").read_text().splitlines()
    assert rejected == ["path\treason", *(f"{src}:{n}\tcontrol character (TAB, newline, ...) in the id" for n in (2, 3, 4))]


@pytest.mark.parametrize("command", ["decode", "wer", "tokenizer", "train"])
def test_duplicate_manifest_ids_name_both_lines(world, tmp_path, command):
    manifest = tmp_path / "dup.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in [GOOD, {**GOOD, "id": "x"}, GOOD]))
    args = _manifest_commands(world, manifest, tmp_path)[command]
    assert_one_line_error(asr(*args), f"{manifest}:3", "duplicate id '1-2-0000'", "first at line 1")
    _assert_nothing_made(tmp_path / "out", command)


@pytest.mark.parametrize("side", ["ref", "hyp"])
def test_duplicate_ids_in_wer_tsv_name_both_lines(tmp_path, side):
    good, dup = tmp_path / "good.txt", tmp_path / "dup.txt"
    good.write_text("a\tHELLO\nb\tWORLD\n")
    dup.write_text("a\tHELLO\nb\tWORLD\n\na\tHELLO AGAIN\n")
    ref, hyp = (dup, good) if side == "ref" else (good, dup)
    assert_one_line_error(asr("wer", ref, hyp), f"{dup}:4", "duplicate id 'a'", "first at line 1")


def test_utf8_bom_is_dropped_in_wer_inputs_and_manifests(world, tmp_path):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_bytes("\ufeff1-2-0000\tHELLO WORLD\n1-2-0001\tGOOD\n".encode())
    hyp.write_text("1-2-0000\tHELLO WORLD\n1-2-0001\tGOOD\n")
    result = asr("wer", ref, hyp, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["wer"] == 0.0 and report["missing"] == [] and report["extra"] == []
    manifest = tmp_path / "bom.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + world.test_manifest.read_bytes())
    result = asr("wer", manifest, world.test_manifest, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["wer"] == 0.0


def test_a_non_utf8_wer_input_names_file_and_line(tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"a\tHELLO\nb\tCAF\xe9\n")
    assert_one_line_error(asr("wer", ref, ref), f"{ref}:2", "not UTF-8")


# --------------------------------------------------------------------------- tokenizers

TOKENIZER_DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "corrupt": lambda data: bytes(b ^ 0x5A for b in data[:200]) + data[200:],
}


@pytest.mark.parametrize("damage", list(TOKENIZER_DAMAGE))
@pytest.mark.parametrize("command", ["decode", "transcribe", "train"])
def test_damaged_tokenizers_are_one_line_errors(world, tmp_path, copy_exp, command, damage):
    exp = copy_exp()
    model = (exp if command != "train" else tmp_path / "tok") / "tokenizer" / "tokenizer.model"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(TOKENIZER_DAMAGE[damage]((world.tokenizer / "tokenizer.model").read_bytes()))
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    args = {
        "decode": ["decode", "--exp", exp, "--manifest", world.test_manifest, "--out", tmp_path / "out"],
        "transcribe": ["transcribe", "--exp", exp, wav],
        "train": ["train", "--config", world.config, "--exp", tmp_path / "out", "--set", f"data.tokenizer={model.parent}", *_tiny()],
    }[command]
    before = snapshot(exp)
    assert_one_line_error(asr(*args), str(model), "SentencePiece")
    assert snapshot(exp) == before and not (tmp_path / "out" / "checkpoints").exists()


def test_a_model_too_large_for_memory_is_refused_before_the_experiment_is_set_up(world, tmp_path):
    """Sizes each within its range, terabytes together (7.5e11 parameters): under ``ulimit -v``,
    one line naming the keys before anything is written, not an allocator traceback."""
    huge = ["model.d_model=16384", "model.encoder.layers=100", "model.encoder.ff_dim=65536",
            "model.decoder.layers=100", "model.decoder.ff_dim=65536"]  # fmt: skip
    exp = tmp_path / "exp"
    result = run_asr("train", "--config", world.config, "--exp", exp, *[a for o in huge for a in ("--set", o)],
                     "--device", "cpu", memory_limit=limit_for_extra(2 << 30), timeout=600)  # fmt: skip
    line = assert_one_line_error(
        result, "M parameters (model.d_model=16384, model.encoder.layers=100 of ff_dim 65536",
        "model.decoder.layers=100 of ff_dim 65536", "data.max_batch_seconds=4", "would need about",
        "lower model.d_model, model.encoder/decoder.layers or ff_dim, or data.max_batch_seconds",
    )  # fmt: skip
    assert float(line.split("would need about ")[1].split(" GiB")[0]) > 10_000  # 11 TiB of weights and their state
    assert [p.name for p in exp.iterdir()] == [".lock"]  # the lock, never deleted; no config, tokenizer, CMVN or log


def _tiny() -> list[str]:
    from reliability_kit import TINY_MODEL

    return [a for o in TINY_MODEL for a in ("--set", o)]


# --------------------------------------------------------------------------- output paths


def _output_commands(world: World, target: Path, wav: Path) -> dict[str, list]:
    return {
        "decode --out": ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", target, "--method", "ctc_greedy"],
        "transcribe --out": ["transcribe", "--exp", world.exp, wav, "--out", target, "--method", "ctc_greedy"],
        "wer --out": ["wer", world.test_manifest, world.test_manifest, "--out", target],
        "prepare --out": ["prepare", "librispeech", "--root", world.root, "--subsets", "test", "--out", target],
        "tokenizer --out": ["tokenizer", "train", "--manifest", world.train_manifest, "--vocab-size", "20", "--out", target],
    }


# A directory is what decode/wer/prepare/tokenizer want, and a file what transcribe wants: each
# gets every kind of path it cannot use.
_OUTPUT_CASES = [
    (command, kind)
    for command in ("decode --out", "transcribe --out", "wer --out", "prepare --out", "tokenizer --out")
    for kind in ("is a file", "is a directory", "under a file", "read-only")
    if kind != ("is a file" if command == "transcribe --out" else "is a directory")
]


@pytest.mark.parametrize("command, kind", _OUTPUT_CASES)
def test_output_paths_that_cannot_be_written(world, tmp_path, read_only_dir, command, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me\n")
    target = {
        "is a file": blocker,
        "is a directory": tmp_path,
        "under a file": blocker / "out",
        "read-only": read_only_dir / "out",
    }[kind]
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    before = snapshot(tmp_path)
    line = assert_one_line_error(asr(*_output_commands(world, target, wav)[command]))
    assert str(target if kind != "read-only" else read_only_dir) in line
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- options and config values


@pytest.mark.parametrize(
    "override, key",
    [("train.log_every=0", "train.log_every"), ("features.n_mels=0", "features.n_mels"),
     ("train.epochs=-1", "train.epochs"), ("train.accum_steps=0", "train.accum_steps"),
     ("train.lr=.inf", "train.lr"), ("model.encoder.dropout=1.5", "model.encoder.dropout"),
     ("data.max_batch_seconds=0", "data.max_batch_seconds"), ("train.keep_best=0", "train.keep_best")],
)  # fmt: skip
def test_config_values_out_of_range(world, tmp_path, override, key):
    assert_one_line_error(asr("train", "--config", world.config, "--exp", tmp_path / "exp", "--set", override), key, "out of range")
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("device", ["nonsense", "cuda:7", "mps"])
@pytest.mark.parametrize("command", ["decode", "transcribe", "train"])
def test_unknown_or_absent_devices(world, tmp_path, command, device):
    import torch

    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    args = {
        "decode": ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", tmp_path / "out"],
        "transcribe": ["transcribe", "--exp", world.exp, wav],
        "train": ["train", "--config", world.config, "--exp", tmp_path / "out", *_tiny()],
    }[command]
    assert_one_line_error(asr(*args, "--device", device), "--device", device)
    _assert_nothing_made(tmp_path / "out", command)


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "1e9", "0.05", "0.999"])
def test_transcribe_segment_seconds_out_of_range(world, tmp_path, value):
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    line = assert_one_line_error(asr("transcribe", "--exp", world.exp, wav, "--segment-seconds", value), "--segment-seconds")
    assert "from 1 to 600 seconds" in line


@pytest.mark.parametrize("value", [0.05, 0.0, float("nan")])
def test_api_segment_seconds_out_of_range(world, value):
    import asr as api

    with pytest.raises(ValueError, match="segment_seconds.*from 1 to 600 seconds|from 1 to 600 seconds.*segment_seconds"):
        api.load(world.exp).transcribe(speechlike(1.0), segment_seconds=value, method="ctc_greedy")


@pytest.mark.parametrize(
    "option, value",
    [("--train-speakers", "0"), ("--dev-speakers", "-1"), ("--test-speakers", "0"), ("--utterances", "0"),
     ("--utterances", "-5"), ("--train-speakers", "100000"), ("--workers", "0")],
)  # fmt: skip
def test_prepare_synthetic_counts_out_of_range(tmp_path, option, value):
    assert_one_line_error(asr("prepare", "synthetic", "--out", tmp_path / "corpus", option, value), option, value)
    assert not (tmp_path / "corpus").exists()


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--workers", "100000"), ("--sample-rate", "-16000")])
def test_prepare_librispeech_options_out_of_range(world, tmp_path, option, value):
    args = ["prepare", "librispeech", "--root", world.root, "--subsets", "test", "--out", tmp_path / "m", option, value]
    assert_one_line_error(asr(*args), option, value)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("best", ["-2", "0"])
def test_average_best_must_be_positive(copy_exp, best):
    exp = copy_exp()
    before = snapshot(exp)
    assert_one_line_error(asr("average", "--exp", exp, "--best", best), "--best", best)
    assert snapshot(exp) == before


@pytest.mark.parametrize(
    "option, value",
    [("--beam", "100000"), ("--beam", "0"), ("--batch-size", "1000000"), ("--max-length-ratio", "1e6"),
     ("--length-bonus", "nan")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["decode", "transcribe"])
def test_decode_options_out_of_bounds(world, tmp_path, command, option, value):
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    args = {
        "decode": ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", tmp_path / "out"],
        "transcribe": ["transcribe", "--exp", world.exp, wav],
    }[command]
    assert_one_line_error(asr(*args, option, value), option.removeprefix("--").replace("-", "_"))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- file names


def test_a_non_utf8_file_name_is_transcribed_and_the_others_kept(world, tmp_path):
    good = write_wave(tmp_path / "good.wav", speechlike(1.0, seed=1))
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.wav"))
    write_wave(tmp_path / "odd.wav", speechlike(1.0, seed=2)).rename(odd)
    missing = Path(os.fsdecode(bytes(tmp_path) + b"/gone\xff.wav"))
    out = tmp_path / "out.jsonl"
    result = asr("transcribe", "--exp", world.exp, good, odd, missing, "--format", "json", "--out", out, "--method", "ctc_greedy")
    assert result.exit_code == 1, result.stderr  # one file failed
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["path"] for r in records] == [str(good), f"{tmp_path}/caf\\xe9.wav", f"{tmp_path}/gone\\xff.wav"]
    assert records[0]["error"] is None and records[1]["error"] is None and records[1]["duration"] == 1.0
    assert "file not found" in records[2]["error"]
    assert result.stderr.strip() == f"error: {tmp_path}/gone\\xff.wav: file not found"


def test_decode_never_replaces_a_folder_that_is_not_a_decode_output(world, tmp_path):
    (tmp_path / "notes.txt").write_text("my thesis\n")
    before = snapshot(tmp_path)
    args = ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", tmp_path, "--method", "ctc_greedy"]
    assert_one_line_error(asr(*args), str(tmp_path), "not the output of an earlier decode")
    assert snapshot(tmp_path) == before


def test_tokenizer_train_never_replaces_a_folder_that_is_not_a_tokenizer(world, tmp_path):
    (tmp_path / "notes.txt").write_text("my thesis\n")
    before = snapshot(tmp_path)
    args = ["tokenizer", "train", "--manifest", world.train_manifest, "--vocab-size", "20", "--out", tmp_path]
    assert_one_line_error(asr(*args), str(tmp_path), "notes.txt", "not a tokenizer's file")
    assert snapshot(tmp_path) == before
