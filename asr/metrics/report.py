"""Showing a :class:`WerReport`: rich tables on a console, and JSON + text files on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from asr import files
from asr.metrics.alignment import (
    LABELS,
    AlignedWord,
    column_width,
    format_alignment,
    format_block,
    split_blocks,
)
from asr.metrics.wer import UtteranceScore, WerReport

JSON_NAME = "wer.json"
ALIGNMENTS_NAME = "alignments.txt"
_OP_STYLES = {"S": "yellow", "D": "red", "I": "green"}
_IDS_SHOWN = 10  # ids listed in a warning before "... and N more"


def print_report(
    report: WerReport, console: Console, *, alignments: int = 10, top: int = 10
) -> None:
    """Print the summary, per-speaker WER, the ``top`` confusions of each kind, the
    first ``alignments`` utterances with errors aligned, and a warning naming any
    missing or extra hypothesis ids."""
    console.print(_summary_table(report))
    if report.speakers:
        console.print(_speaker_table(report))
    confusions = _confusion_tables(report, top)
    if confusions:
        console.print(Columns(confusions))
    wrong = [u for u in report.utterances if u.words.errors > 0]
    shown = wrong[: max(alignments, 0)]
    if shown:
        heading = f"\nFirst {len(shown)} of {len(wrong)} utterances with errors"
        console.print(Text(heading, style="bold"))
    for utt in shown:
        console.print()
        console.print(Text(_utterance_header(utt), style="bold"))
        for line in _styled_alignment(utt.alignment, console.width):
            console.print(line, no_wrap=True, overflow="ignore")
    warnings = _warnings(report)
    if warnings:
        console.print()
    for warning in warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")


def write_report(report: WerReport, out: str | Path) -> tuple[Path, Path]:
    """Write the report as JSON and every utterance's alignment as plain text.

    ``out`` is either a directory (created if needed), receiving ``wer.json`` and
    ``alignments.txt``, or a ``.json`` path, with the alignments written beside it
    as ``<stem>.alignments.txt``. Returns (json path, alignments path).
    """
    out = Path(out)
    if out.suffix.lower() == ".json":
        json_path, text_path = out, out.with_name(out.stem + "." + ALIGNMENTS_NAME)
    else:
        json_path, text_path = out / JSON_NAME, out / ALIGNMENTS_NAME
    files.sweep_dead(json_path.parent)  # temporary files of a killed earlier write
    # One line, not indented: per-word alignment triples would otherwise double its size.
    files.write_text(json_path, json.dumps(report.to_json(), ensure_ascii=False, allow_nan=False) + "\n")
    files.write_text(text_path, format_report_text(report))
    return json_path, text_path


def format_report_text(report: WerReport) -> str:
    """The plain-text report: totals, warnings, then every utterance aligned."""
    lines = [_summary_line(report), *_warnings(report), ""]
    for utt in report.utterances:
        w = utt.words
        lines.append(_utterance_header(utt))
        lines.append(f"Scores: (#C #S #D #I) {w.hits} {w.substitutions} {w.deletions} {w.insertions}")
        lines.extend(format_alignment(utt.alignment))
        lines.append("")
    return "\n".join(lines)


def _summary_line(report: WerReport) -> str:
    w = report.words
    lead = f"primary metric CER {100 * report.cer:.2f}%  " if report.primary == "cer" else ""
    return lead + (
        f"WER {100 * report.wer:.2f}% (S={w.substitutions} D={w.deletions} I={w.insertions}"
        f" / {w.reference_length} words)  CER {100 * report.cer:.2f}%"
        f"  SER {100 * report.ser:.2f}%  utterances {report.num_utterances}"
    )


def _utterance_header(utt: UtteranceScore) -> str:
    header = f"id: {utt.id}"
    if utt.speaker is not None:
        header += f"  speaker: {utt.speaker}"
    if utt.missing:
        header += "  (no hypothesis: scored as empty)"
    return header


def _warnings(report: WerReport) -> list[str]:
    warnings = []
    if report.missing:
        warnings.append(
            f"{len(report.missing)} reference id(s) have no hypothesis and were scored as "
            f"all deletions: {_id_list(report.missing)}"
        )
    if report.extra:
        warnings.append(
            f"{len(report.extra)} hypothesis id(s) have no reference and were not scored: "
            f"{_id_list(report.extra)}"
        )
    if report.emptied:
        warnings.append(
            f"{len(report.emptied)} transcript(s) became empty under the {report.normalizer!r} "
            f"normalizer (text in another script?); try --normalizer unicode: {_id_list(report.emptied)}"
        )
    return warnings


def _id_list(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_IDS_SHOWN])
    return shown + (f" ... and {len(ids) - _IDS_SHOWN} more" if len(ids) > _IDS_SHOWN else "")


def _summary_table(report: WerReport) -> Table:
    cer_first = report.primary == "cer"
    table = Table(title="Character error rate" if cer_first else "Word error rate")
    rates = ("CER %", "WER %") if cer_first else ("WER %", "CER %")
    for name in (*rates, "SER %", "Sub", "Del", "Ins", "Utts", "Words"):
        table.add_column(name, justify="right")
    w = report.words
    first, second = (report.cer, report.wer) if cer_first else (report.wer, report.cer)
    table.add_row(
        f"{100 * first:.2f}",
        f"{100 * second:.2f}",
        f"{100 * report.ser:.2f}",
        str(w.substitutions),
        str(w.deletions),
        str(w.insertions),
        str(report.num_utterances),
        str(w.reference_length),
    )
    return table


def _speaker_table(report: WerReport) -> Table:
    table = Table(title="Per speaker")
    table.add_column("Speaker")
    for name in ("Utts", "Words", "Sub", "Del", "Ins", "WER %"):
        table.add_column(name, justify="right")
    for s in report.speakers:
        w = s.words
        table.add_row(
            escape(s.speaker),
            str(s.utterances),
            str(w.reference_length),
            str(w.substitutions),
            str(w.deletions),
            str(w.insertions),
            f"{100 * w.rate:.2f}",
        )
    return table


def _confusion_tables(report: WerReport, top: int) -> list[Table]:
    tables: list[Table] = []
    if top <= 0:
        return tables
    if report.substitutions:
        table = Table(title="Top substitutions")
        table.add_column("Ref -> Hyp")
        table.add_column("Count", justify="right")
        for ref, hyp, count in report.substitutions[:top]:
            table.add_row(escape(f"{ref} -> {hyp}"), str(count))
        tables.append(table)
    for title, pairs in (("Top deletions", report.deletions), ("Top insertions", report.insertions)):
        if pairs:
            table = Table(title=title)
            table.add_column("Word")
            table.add_column("Count", justify="right")
            for word, count in pairs[:top]:
                table.add_row(escape(word), str(count))
            tables.append(table)
    return tables


def _styled_alignment(columns: Sequence[AlignedWord], width: int) -> list[Text]:
    """format_alignment's lines, cut to ``width``, with each error column coloured by its op."""
    styled = []
    for block in split_blocks(columns, width):
        texts = [Text(line) for line in format_block(block)]
        pos = len(LABELS[0])
        for column in block:
            pad = column_width(column)
            style = _OP_STYLES.get(column.op)
            if style:
                for text in texts:
                    text.stylize(style, pos, pos + pad)
            pos += pad + 1
        styled.extend(texts)
    return styled
