import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from asr.data.librispeech import PrepareError, prepare_librispeech, print_summary
from asr.data.manifest import read_manifest
from librispeech_tree import make_librispeech_tree

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
