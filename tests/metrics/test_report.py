"""asr.metrics.report: JSON, tables with warnings, and report files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from asr.metrics import Transcripts, WerReport, print_report, score, write_report


def _mixed_report() -> WerReport:
    refs = Transcripts(
        {"1-1-1": "A B C D", "1-1-2": "", "2-1-1": "THE CAT", "2-1-2": "GONE"},
        {"1-1-1": "1", "1-1-2": "1", "2-1-1": "2", "2-1-2": "2"},
    )
    hyps = Transcripts({"1-1-1": "A X C", "1-1-2": "UM", "2-1-1": "THE CAT", "9-9-9": "EXTRA"})
    return score(refs, hyps)


def test_json_round_trip():
    report = _mixed_report()
    data = json.loads(json.dumps(report.to_json()))
    assert data == report.to_json()
    assert data["wer"] == report.wer and data["num_utterances"] == 4
    assert data["words"]["substitutions"] == 1 and data["words"]["deletions"] == 2
    assert data["words"]["insertions"] == 1 and data["words"]["reference_length"] == 7
    assert data["missing"] == ["2-1-2"] and data["extra"] == ["9-9-9"]
    first = data["utterances"][0]
    assert first["alignment"] == [["A", "A", "C"], ["B", "X", "S"], ["C", "C", "C"], ["D", None, "D"]]
    assert data["speakers"][0]["words"]["rate"] == pytest.approx(3 / 4)


def test_print_report_shows_tables_alignments_and_warnings():
    console = Console(file=io.StringIO(), width=120, record=True, color_system=None)
    print_report(_mixed_report(), console, alignments=1, top=5)
    out = console.export_text()
    assert "WER %" in out and "57.14" in out  # S=1 D=2 I=1 over 7 reference words
    assert "Per speaker" in out and "Top substitutions" in out and "B -> X" in out
    assert "REF:  a B c D" in out and "HYP:  a X c ***" in out
    assert "id: 1-1-2" not in out  # only the first utterance with errors is aligned
    assert "2-1-2" in out and "9-9-9" in out and "warning" in out


def test_write_report_to_directory_and_to_json_path(tmp_path: Path):
    report = _mixed_report()
    json_path, text_path = write_report(report, tmp_path / "out")
    assert (json_path.name, text_path.name) == ("wer.json", "alignments.txt")
    assert json.loads(json_path.read_text()) == report.to_json()
    text = text_path.read_text()
    for utt in report.utterances:  # every utterance, not only the wrong ones
        assert f"id: {utt.id}" in text
    assert "REF:  a B c D\nHYP:  a X c ***\nEVAL:   S   D\n" in text
    json_path, text_path = write_report(report, tmp_path / "res" / "test_clean.json")
    assert json_path.is_file() and text_path.name == "test_clean.alignments.txt"
