"""Faults while writing: kill -9 in the middle of each kind of write, a full disk, and a subset
left half-extracted. The file (or folder) written before survives unchanged, no partial file is
left to trip a later run, and the next run succeeds. (Checkpoints: tests/train.)"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from asr.data import download
from asr.data.download import COMPLETE_MARKER, download_subset
from asr.files import DiskFullError
from reliability_kit import World, asr, assert_one_line_error, run_asr, snapshot, speechlike, temp_leftovers, write_wave
from librispeech_tree import make_librispeech_tree

QUIET = Console(quiet=True)


def _kill_cases(world: World, tmp_path: Path) -> dict[str, tuple[list, Path, str]]:
    """command -> (asr arguments, the output an earlier run left, the write to kill it in)."""
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    decode = ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--method", "ctc_greedy"]
    return {
        "manifest": (["prepare", "librispeech", "--root", world.root, "--subsets", "test", "--out", tmp_path / "m"], tmp_path / "m", "test.jsonl"),
        "rejected list": (["prepare", "librispeech", "--root", world.root, "--subsets", "test", "--out", tmp_path / "m"], tmp_path / "m", "test.rejected.tsv"),
        "wer report": (["wer", world.test_manifest, world.test_manifest, "--out", tmp_path / "w"], tmp_path / "w", "wer.json"),
        "decode hypotheses": ([*decode, "--out", tmp_path / "d"], tmp_path / "d", "hyp.txt"),
        "decode timing": ([*decode, "--out", tmp_path / "d"], tmp_path / "d", "timing.json"),
        "decode wer": ([*decode, "--out", tmp_path / "d"], tmp_path / "d", "alignments.txt"),
        "transcript file": (["transcribe", "--exp", world.exp, wav, "--out", tmp_path / "t" / "out.txt", "--method", "ctc_greedy"], tmp_path / "t", "out.txt"),
    }


KILL_CASES = ["manifest", "rejected list", "wer report", "decode hypotheses", "decode timing", "decode wer", "transcript file"]


@pytest.mark.parametrize("case", KILL_CASES)
def test_kill_during_a_write_keeps_the_earlier_output(world, tmp_path, case):
    args, output, target = _kill_cases(world, tmp_path)[case]
    first = asr(*args)
    assert first.exit_code == 0, first.stderr
    _mark_as_earlier(output)
    before = snapshot(output)

    killed = run_asr(*args, env={"ASR_TEST_KILL_ON": target})
    assert killed.exit_code == -9, (killed.exit_code, killed.stderr)  # SIGKILL, mid-write
    # Every earlier file intact, none half-replaced; the killed write's temporary file may remain
    # (nothing can remove it at SIGKILL) until the next run sweeps it.
    assert _without_temp(snapshot(output)) == before

    again = asr(*args)  # the next run cleans up after the killed one and succeeds
    assert again.exit_code == 0, again.stderr
    assert temp_leftovers(output, output.parent) == []
    assert not any("earlier" in p.read_text() for p in output.rglob("*") if p.is_file())


def _without_temp(files: dict[str, str]) -> dict[str, str]:
    return {path: digest for path, digest in files.items() if "/.asr-tmp-" not in path}


def _mark_as_earlier(output: Path) -> None:
    """Make the earlier run's files recognisable, so a mix of two runs would show."""
    for path in output.rglob("*"):
        if path.is_file() and path.suffix in (".txt", ".tsv", ".jsonl"):
            path.write_text(path.read_text() + "earlier\n" if path.suffix != ".jsonl" else path.read_text())
        elif path.is_file() and path.suffix == ".json":
            path.write_text(json.dumps({**json.loads(path.read_text()), "mark": "earlier"}))


def test_decode_output_folder_is_replaced_whole(world, tmp_path):
    out = tmp_path / "d"
    args = ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", out, "--method", "ctc_greedy"]
    assert asr(*args).exit_code == 0
    (out / "stale-from-another-run.txt").write_text("old\n")
    no_refs = tmp_path / "no-refs.jsonl"  # without references: no wer.json this time
    no_refs.write_text("".join(json.dumps({**json.loads(line), "text": ""}) + "\n" for line in world.test_manifest.read_text().splitlines()))
    assert asr("decode", "--exp", world.exp, "--manifest", no_refs, "--out", out, "--method", "ctc_greedy").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["hyp.txt", "scores.jsonl", "timing.json"]
    timing = json.loads((out / "timing.json").read_text())
    assert timing["rtf"] is None or timing["rtf"] > 0


# --------------------------------------------------------------------------- full disk


@pytest.mark.parametrize("command", ["prepare", "wer", "decode", "transcribe", "tokenizer"])
def test_a_full_disk_says_so_and_keeps_the_earlier_files(world, tmp_path, full_disk, command):
    earlier = {"out/keep.txt": b"earlier output\n", "out/test.jsonl": b"{}\n", "out/wer.json": b"{}\n"}
    disk = full_disk(earlier)
    out = disk / "out"
    wav = write_wave(tmp_path / "a.wav", speechlike(1.0))
    args = {
        "prepare": ["prepare", "librispeech", "--root", world.root, "--subsets", "test", "--out", out],
        "wer": ["wer", world.test_manifest, world.test_manifest, "--out", out],
        "decode": ["decode", "--exp", world.exp, "--manifest", world.test_manifest, "--out", disk / "d", "--method", "ctc_greedy"],
        "transcribe": ["transcribe", "--exp", world.exp, wav, "--out", out / "t.txt", "--method", "ctc_greedy"],
        "tokenizer": ["tokenizer", "train", "--manifest", world.train_manifest, "--vocab-size", "20", "--out", out],
    }[command]
    before = snapshot(out)
    assert_one_line_error(asr(*args), "disk full", str(disk))
    assert snapshot(out) == before
    assert temp_leftovers(disk) == [] and not (disk / "d").exists()


def _tarball(tmp_path: Path, subset: str) -> bytes:
    src = tmp_path / "src"
    make_librispeech_tree(src, subset, [("84", "121", "GO DO YOU HEAR", None), ("84", "121", "BUT IN LESS", None)], complete=False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    return buffer.getvalue()


def test_a_full_disk_while_downloading_leaves_no_partial_file(tmp_path, full_disk):
    data = _tarball(tmp_path, "dev-clean")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "dev-clean.tar.gz").write_bytes(data)
    disk = full_disk({})
    sums = {"dev-clean": hashlib.sha256(data).hexdigest()}
    with pytest.raises(DiskFullError, match=f"{disk}.*disk full"):
        download_subset("dev-clean", disk, mirror.as_uri(), sums, console=QUIET)
    assert [p.name for p in disk.iterdir() if p.name != "filler"] == []


# --------------------------------------------------------------------------- half-extracted subsets


def test_a_half_extracted_subset_is_refused_without_download(tmp_path):
    # No marker, and far less than the official dev-clean: refused, saying what it lacks.
    subset = make_librispeech_tree(tmp_path, "dev-clean", [("1", "2", "HELLO", None)], complete=False)
    line = assert_one_line_error(
        asr("prepare", "librispeech", "--root", tmp_path, "--subsets", "dev-clean", "--out", tmp_path / "m"),
        "dev-clean: 1 of 2,703 utterances; 1 of 40 speakers; 1 of 97 chapters", str(subset),
        COMPLETE_MARKER, "--download", "--trust-layout",
    )
    assert "half-extracted" in line
    assert not (tmp_path / "m").exists()


def test_download_extracts_a_half_extracted_subset_again(tmp_path, monkeypatch):
    data = _tarball(tmp_path, "dev-clean")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "dev-clean.tar.gz").write_bytes(data)
    monkeypatch.setitem(download.CHECKSUMS, "dev-clean", hashlib.sha256(data).hexdigest())
    root = tmp_path / "data"
    # What a killed extraction leaves: some files, one cut short, no marker.
    half = make_librispeech_tree(root, "dev-clean", [("84", "121", "GO DO YOU HEAR", None)], complete=False)
    flac = half / "84" / "121" / "84-121-0000.flac"
    flac.write_bytes(flac.read_bytes()[:100])
    (root / "dev-clean.tar.gz").write_bytes(data)
    result = asr("prepare", "librispeech", "--root", root, "--subsets", "dev-clean", "--download",
                 "--base-url", mirror.as_uri(), "--out", tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (half / COMPLETE_MARKER).is_file()
    manifest = [json.loads(line) for line in (tmp_path / "m" / "dev-clean.jsonl").read_text().splitlines()]
    assert [u["id"] for u in manifest] == ["84-121-0000", "84-121-0001"]  # whole again
    assert (tmp_path / "m" / "dev-clean.rejected.tsv").read_text() == "path\treason\n"
