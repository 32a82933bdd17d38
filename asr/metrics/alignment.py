"""Word alignments in sclite's style, built from jiwer's alignment chunks.

An alignment is a list of :class:`AlignedWord` columns. Shown as text it is three
lines, each column padded to one width::

    REF:  a B c D
    HYP:  a X c ***
    EVAL:   S   D

As in sclite, correct words are lower case and errors upper case (on both lines),
``***`` fills the empty side of a deletion or insertion, and the EVAL line marks
each error S (substitution), D (deletion) or I (insertion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from jiwer import AlignmentChunk

CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"
LABELS = ("REF:  ", "HYP:  ", "EVAL: ")
EMPTY = "***"

# jiwer's chunk types -> our one-letter ops.
_OPS = {"equal": CORRECT, "substitute": SUBSTITUTION, "delete": DELETION, "insert": INSERTION}


@dataclass(frozen=True)
class AlignedWord:
    """One column of an alignment: ``ref`` is None for an insertion, ``hyp`` for a deletion."""

    ref: str | None
    hyp: str | None
    op: str  # one of C, S, D, I

    def cells(self) -> tuple[str, str, str]:
        """The column's REF, HYP and EVAL cells as displayed (unpadded)."""
        if self.op == CORRECT:
            word = (self.ref or "").lower()
            return word, word, ""
        ref = self.ref.upper() if self.ref is not None else EMPTY
        hyp = self.hyp.upper() if self.hyp is not None else EMPTY
        return ref, hyp, self.op


def align_words(
    ref: Sequence[str], hyp: Sequence[str], chunks: Sequence[AlignmentChunk]
) -> list[AlignedWord]:
    """Expand jiwer's chunks for one utterance into one column per aligned word."""
    columns: list[AlignedWord] = []
    for chunk in chunks:
        op = _OPS[chunk.type]
        ref_words = ref[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp_words = hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if op == DELETION:
            columns.extend(AlignedWord(r, None, op) for r in ref_words)
        elif op == INSERTION:
            columns.extend(AlignedWord(None, h, op) for h in hyp_words)
        else:  # equal and substitute chunks pair words one to one
            columns.extend(AlignedWord(r, h, op) for r, h in zip(ref_words, hyp_words))
    return columns


def format_alignment(columns: Sequence[AlignedWord], width: int | None = None) -> list[str]:
    """The REF / HYP / EVAL lines of an alignment, trailing spaces removed.

    With ``width``, the columns are cut into blocks of three lines that each fit in
    ``width`` characters (a column wider than that still gets a block of its own),
    so a terminal never wraps a line and breaks the columns apart.
    """
    return [line for block in split_blocks(columns, width) for line in format_block(block)]


def format_block(columns: Sequence[AlignedWord]) -> list[str]:
    """The three lines of one block of columns, with no width limit."""
    rows = ["", "", ""]
    for column in columns:
        cells = column.cells()
        pad = column_width(column)
        rows = [row + cell.ljust(pad) + " " for row, cell in zip(rows, cells)]
    return [(label + row).rstrip() for label, row in zip(LABELS, rows)]


def column_width(column: AlignedWord) -> int:
    """Characters the column takes on screen, without its separating space."""
    return max(len(cell) for cell in column.cells())


def split_blocks(
    columns: Sequence[AlignedWord], width: int | None
) -> list[Sequence[AlignedWord]]:
    """Cut columns into runs whose lines (label included) fit in ``width``; None: one run."""
    if width is None or not columns:
        return [columns]
    blocks: list[Sequence[AlignedWord]] = []
    start, used = 0, len(LABELS[0])
    for i, column in enumerate(columns):
        need = column_width(column) + (1 if i > start else 0)
        if i > start and used + need > width:
            blocks.append(columns[start:i])
            start, used, need = i, len(LABELS[0]), column_width(column)
        used += need
    blocks.append(columns[start:])
    return blocks
