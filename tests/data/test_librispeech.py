import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from asr.data import librispeech_check
from asr.data.download import SUBSETS
from asr.data.librispeech import PrepareError, prepare_librispeech, print_summary
from asr.data.librispeech_check import SubsetCounts
from asr.data.manifest import read_manifest
from librispeech_tree import make_librispeech_tree, read_only, tree_state

QUIET = Console(quiet=True)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A dev-clean tree with three good utterances and one of each kind of bad input."""
    root = tmp_path / "root"
    one_and_a_half_seconds = np.linspace(-0.5, 0.5, 24000, dtype=np.float32)
    subset = make_librispeech_tree(
        root,
        "dev-clean",
        [
            ("19", "198", "Hello, world!", one_and_a_half_seconds),  # 0000 kept
            ("19", "198", "it's   fine", None),  # 0001 kept (1 s tone)
            ("19", "198", "garbage", None),  # 0002 unreadable
            ("19", "198", "cut short", None),  # 0003 truncated
            ("19", "198", "gone", None),  # 0004 audio deleted
            ("19", "198", "", None),  # 0005 empty transcript
            ("19", "198", "?!", None),  # 0006 empty once normalised
            ("19", "198", "silence", None),  # 0007 zero-length audio
            ("26", "495", "wrong rate", None),  # 0000 8 kHz
            ("26", "495", "Mr. Smith's dog", None),  # 0001 kept
        ],
    )
    a, b = subset / "19" / "198", subset / "26" / "495"
    (a / "19-198-0002.flac").write_bytes(b"\x00garbage" * 100)
    cut = a / "19-198-0003.flac"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (a / "19-198-0004.flac").unlink()
    (a / "19-198-0007.flac").unlink()
    sf.write(a / "19-198-0007.wav", np.zeros(0, np.float32), 16000)
    sf.write(b / "26-495-0000.flac", np.zeros(8000, np.float32), 8000)
    sf.write(b / "26-495-0009.flac", np.zeros(16000, np.float32), 16000)  # no transcript line
    with (b / "26-495.trans.txt").open("a") as f:
        f.write("hello there\n26-496-0001 WRONG CHAPTER\n26-495-0001 AGAIN\n\n   \n")
    return root


def test_manifest_and_every_rejection(corpus: Path, tmp_path: Path):
    out = tmp_path / "manifests"
    reports = prepare_librispeech(corpus, ["dev-clean"], out, num_workers=2, console=QUIET)
    report = reports["dev-clean"]
    subset = corpus / "LibriSpeech" / "dev-clean"

    utts = read_manifest(out / "dev-clean.jsonl")
    assert [u.id for u in utts] == ["19-198-0000", "19-198-0001", "26-495-0001"]
    assert [u.text for u in utts] == ["HELLO WORLD", "IT'S FINE", "MR SMITH'S DOG"]
    assert [u.duration for u in utts] == pytest.approx([1.5, 1.0, 1.0], abs=1e-3)
    assert [(u.speaker, u.chapter, u.sample_rate) for u in utts] == [
        ("19", "198", 16000),
        ("19", "198", 16000),
        ("26", "495", 16000),
    ]
    assert utts[0].audio == str(subset / "19" / "198" / "19-198-0000.flac")
    assert all(Path(u.audio).is_absolute() and Path(u.audio).is_file() for u in utts)

    assert report.kept == 3
    assert report.hours == pytest.approx(3.5 / 3600, abs=1e-6)
    a, b = subset / "19" / "198", subset / "26" / "495"
    expected = [
        (f"{a}/19-198-0002.flac", "unreadable audio"),
        (f"{a}/19-198-0003.flac", "truncated audio"),
        (f"{a}/19-198-0004.flac", "no audio file"),
        (f"{a}/19-198-0005.flac", "empty transcript"),
        (f"{a}/19-198-0006.flac", "empty transcript"),
        (f"{a}/19-198-0007.wav", "empty audio"),
        (f"{b}/26-495-0000.flac", "wrong sample rate"),
        (f"{b}/26-495-0009.flac", "no transcript"),
        (f"{b}/26-495.trans.txt:3", "malformed transcript line"),
        (f"{b}/26-495.trans.txt:4", "malformed transcript line"),
        (f"{b}/26-495.trans.txt:5", "duplicate utterance id"),
    ]
    assert report.rejections == expected
    assert report.rejected == {
        "unreadable audio": 1,
        "truncated audio": 1,
        "no audio file": 1,
        "empty transcript": 2,
        "empty audio": 1,
        "wrong sample rate": 1,
        "no transcript": 1,
        "malformed transcript line": 2,
        "duplicate utterance id": 1,
    }
    tsv = (out / "dev-clean.rejected.tsv").read_text().splitlines()
    assert tsv == ["path\treason"] + [f"{path}\t{reason}" for path, reason in expected]


def test_summary_table_lists_counts(corpus: Path, tmp_path: Path):
    reports = prepare_librispeech(corpus, ["dev-clean"], tmp_path / "m", console=QUIET)
    buffer = io.StringIO()
    print_summary(reports, Console(file=buffer, width=300))
    text = buffer.getvalue()
    row = next(line for line in text.splitlines() if "dev-clean" in line and "│" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    header = next(line for line in text.splitlines() if "subset" in line)
    columns = [c.strip() for c in re.split(r"[┃│]", header.strip("┃│ "))]
    values = dict(zip(columns, cells, strict=True))
    assert values["utterances"] == "3" and values["hours"] == "0.00" and values["rejected"] == "11"
    assert values["empty transcript"] == "2" and values["truncated audio"] == "1"


def test_result_does_not_depend_on_workers(corpus: Path, tmp_path: Path):
    prepare_librispeech(corpus, ["dev-clean"], tmp_path / "one", num_workers=1, console=QUIET)
    prepare_librispeech(corpus, ["dev-clean"], tmp_path / "four", num_workers=4, console=QUIET)
    for name in ("dev-clean.jsonl", "dev-clean.rejected.tsv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "four" / name).read_text()


def test_subset_directly_under_root_and_custom_names(tmp_path: Path):
    # The synthetic corpus uses train/dev/test; a tree may also sit directly in root/<subset>.
    make_librispeech_tree(tmp_path / "x", "train", [("7", "8", "a b c", None)])
    (tmp_path / "x" / "LibriSpeech" / "train").rename(tmp_path / "train")
    reports = prepare_librispeech(tmp_path, ["train"], tmp_path / "m", console=QUIET)
    assert reports["train"].kept == 1 and reports["train"].rejected == {}
    [utt] = read_manifest(tmp_path / "m" / "train.jsonl")
    assert utt.audio == str(tmp_path / "train" / "7" / "8" / "7-8-0000.flac")
    assert (tmp_path / "m" / "train.rejected.tsv").read_text() == "path\treason\n"


def test_other_sample_rate_can_be_asked_for(tmp_path: Path):
    make_librispeech_tree(tmp_path, "dev", [("1", "2", "hi", None)], sample_rate=8000)
    report = prepare_librispeech(
        tmp_path, ["dev"], tmp_path / "m", sample_rate=8000, console=QUIET
    )["dev"]
    assert report.kept == 1
    report = prepare_librispeech(tmp_path, ["dev"], tmp_path / "m", console=QUIET)["dev"]
    assert report.kept == 0 and report.rejected == {"wrong sample rate": 1}


def test_missing_root_is_one_line_naming_it(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(PrepareError, match=re.escape(f"LibriSpeech root {missing} not found")):
        prepare_librispeech(missing, ["dev-clean"], tmp_path / "m", console=QUIET)


def test_missing_subset_names_it_and_the_expected_path(corpus: Path, tmp_path: Path):
    expected = corpus / "LibriSpeech" / "test-other"
    with pytest.raises(PrepareError) as err:
        prepare_librispeech(corpus, ["dev-clean", "test-other"], tmp_path / "m", console=QUIET)
    message = str(err.value)
    assert message.startswith(f"subset test-other not found under {corpus / 'LibriSpeech'}")
    assert f"(expected {expected})" in message and "--download" in message and "\n" not in message
    # Every subset is located before any is scanned, so nothing was written.
    assert not (tmp_path / "m").exists()


def test_unknown_subset_name_is_refused_only_when_downloading(tmp_path: Path):
    with pytest.raises(PrepareError, match="unknown LibriSpeech subset dev-clena"):
        prepare_librispeech(tmp_path, ["dev-clena"], tmp_path / "m", download=True, console=QUIET)
    with pytest.raises(PrepareError, match="subset dev-clena not found"):
        prepare_librispeech(tmp_path, ["dev-clena"], tmp_path / "m", console=QUIET)


# --------------------------------------------------------------------------- copies without a marker

FAKE_DEV_CLEAN = SubsetCounts(speakers=2, chapters=3, transcripts=3, utterances=5)


@pytest.fixture
def copy(tmp_path: Path, monkeypatch) -> Path:
    """A dev-clean extracted elsewhere, with no .complete marker, and a subset table in which
    this five-utterance tree is what the official dev-clean holds. Returns the root."""
    monkeypatch.setattr(librispeech_check, "OFFICIAL_COUNTS", {"dev-clean": FAKE_DEV_CLEAN})
    root = tmp_path / "shared" / "LibriSpeech"
    make_librispeech_tree(
        tmp_path / "shared", "dev-clean",
        [("1272", "128104", "MISTER QUILTER", None), ("1272", "128104", "NOR IS MISTER", None),
         ("1272", "135031", "BECAUSE YOU WERE", None),
         ("1462", "170138", "HE HAD WRITTEN", None), ("1462", "170138", "THAT IS THE", None)],
        complete=False,
    )  # fmt: skip
    return root


def test_a_whole_copy_without_marker_is_used_read_only_writing_only_to_out(copy: Path, tmp_path: Path):
    out = tmp_path / "manifests"
    with read_only(copy):
        before = tree_state(copy)
        report = prepare_librispeech(copy, ["dev-clean"], out, console=QUIET)["dev-clean"]
        assert tree_state(copy) == before  # nothing written, added, removed or touched under root
    assert report.kept == 5 and report.rejected == {}
    utts = read_manifest(out / "dev-clean.jsonl")
    assert [u.id for u in utts][:3] == ["1272-128104-0000", "1272-128104-0001", "1272-135031-0000"]
    assert all(Path(u.audio).is_relative_to(copy / "dev-clean") for u in utts)
    assert sorted(p.name for p in out.iterdir()) == ["dev-clean.jsonl", "dev-clean.rejected.tsv"]
    assert not (copy / "dev-clean" / ".complete").exists()


def test_a_whole_copy_is_not_downloaded_again(copy: Path, tmp_path: Path, monkeypatch):
    import asr.data.librispeech

    def no_download(*args, **kwargs):
        raise AssertionError("a whole copy was downloaded again")

    monkeypatch.setattr(asr.data.librispeech, "download_subset", no_download)
    reports = prepare_librispeech(copy, ["dev-clean"], tmp_path / "m", download=True, console=QUIET)
    assert reports["dev-clean"].kept == 5


def _lose_audio(subset: Path) -> None:
    (subset / "1462" / "170138" / "1462-170138-0001.flac").unlink()


def _lose_chapter(subset: Path) -> None:
    shutil.rmtree(subset / "1272" / "135031")


def _lose_transcript(subset: Path) -> None:
    (subset / "1272" / "135031" / "1272-135031.trans.txt").unlink()


def _lose_speaker(subset: Path) -> None:
    shutil.rmtree(subset / "1462")


def _add_utterance(subset: Path) -> None:
    folder = subset / "1462" / "170138"
    shutil.copy(folder / "1462-170138-0000.flac", folder / "1462-170138-0002.flac")
    with (folder / "1462-170138.trans.txt").open("a") as f:
        f.write("1462-170138-0002 ONE MORE\n")


@pytest.mark.parametrize("damage, missing", [
    (_lose_audio, "dev-clean: 4 of 5 utterances; 1 transcript line without its audio file "
                  "(first 1462-170138-0001) in chapter 1462/170138, in "),
    (_lose_chapter, "dev-clean: 4 of 5 utterances; 2 of 3 chapters; 2 of 3 transcript files, in "),
    (_lose_transcript, "dev-clean: 4 of 5 utterances; 2 of 3 transcript files; no transcript in "
                       "chapter 1272/135031, in "),
    (_lose_speaker, "dev-clean: 3 of 5 utterances; 1 of 2 speakers; 2 of 3 chapters; 2 of 3 transcript files, in "),
    (_add_utterance, "dev-clean: 6 utterances where the official subset has 5, in "),
])  # fmt: skip
def test_a_partial_copy_is_refused_naming_what_is_missing(copy, tmp_path, damage, missing):
    subset = copy / "dev-clean"
    damage(subset)
    with read_only(copy), pytest.raises(PrepareError) as err:
        prepare_librispeech(copy, ["dev-clean"], tmp_path / "m", console=QUIET)
    message = str(err.value)
    assert message.startswith(missing + str(subset) + ";"), message
    assert "--download" in message and "--trust-layout" in message and "\n" not in message
    assert not (tmp_path / "m").exists()  # refused before anything was written


def test_trust_layout_takes_a_copy_as_it_is_and_lists_what_is_missing(copy, tmp_path):
    _lose_audio(copy / "dev-clean")
    report = prepare_librispeech(copy, ["dev-clean"], tmp_path / "m", console=QUIET, trust_layout=True)["dev-clean"]
    assert report.kept == 4 and report.rejected == {"no audio file": 1}


def test_own_data_without_marker_needs_trust_layout(tmp_path: Path):
    make_librispeech_tree(tmp_path, "mine", [("7", "8", "A B C", None)], complete=False)
    with pytest.raises(PrepareError) as err:
        prepare_librispeech(tmp_path, ["mine"], tmp_path / "m", console=QUIET)
    message = str(err.value)
    assert message.startswith(f"subset mine in {tmp_path / 'LibriSpeech' / 'mine'} has no completion marker")
    assert "not an official LibriSpeech subset" in message and "--trust-layout" in message
    report = prepare_librispeech(tmp_path, ["mine"], tmp_path / "m", console=QUIET, trust_layout=True)["mine"]
    assert report.kept == 1


def test_the_official_counts_cover_every_subset_and_add_up():
    counts = librispeech_check.OFFICIAL_COUNTS
    assert tuple(counts) == SUBSETS
    assert all(c.transcripts == c.chapters for c in counts.values())  # one transcript per chapter
    assert sum(c.utterances for c in counts.values()) == 292_367  # all 960 h + dev + test
    assert sum(c.speakers for c in counts.values()) == 2_484  # the paper's Table 1, added up


def test_the_cli_uses_a_read_only_copy_and_refuses_a_partial_one_in_one_line(copy, tmp_path):
    from typer.testing import CliRunner

    from asr.cli import app

    def prepare(out: Path):
        args = ["prepare", "librispeech", "--root", str(copy), "--subsets", "dev-clean", "--out", str(out)]
        return CliRunner().invoke(app, args, env={"COLUMNS": "250", "NO_COLOR": "1"})

    with read_only(copy):
        before = tree_state(copy)
        result = prepare(tmp_path / "m")
        assert result.exit_code == 0, result.stderr
        assert tree_state(copy) == before
    assert (tmp_path / "m" / "dev-clean.jsonl").read_text().count("\n") == 5
    _lose_chapter(copy / "dev-clean")
    with read_only(copy):
        result = prepare(tmp_path / "m2")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: dev-clean: 4 of 5 utterances; 2 of 3 chapters")
