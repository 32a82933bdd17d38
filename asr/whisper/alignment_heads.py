"""Which decoder cross-attention heads of each Whisper model follow the audio in time.

openai-whisper publishes them per model (``_ALIGNMENT_HEADS`` in whisper/__init__.py, version
20250625: base85-encoded gzipped boolean masks of shape (decoder layers, heads)); the table
below is those masks decoded into (layer, head) pairs. Word times from cross-attention
(:mod:`asr.decode.attention_align`) average these heads; a model not in the table gets all
heads of the decoder's upper half there.

A checkpoint does not say which model it is, so the heads are found at import, first from the
source itself (CTranslate2's config.json and transformers' generation_config.json carry them),
then by an openai-whisper file name (``large-v2.pt``), then by the dimensions where only one
model has them (all but large-v1 and large-v2 do).
"""

from __future__ import annotations

from pathlib import Path

from asr.whisper.dims import WhisperDims

Heads = tuple[tuple[int, int], ...]

ALIGNMENT_HEADS: dict[str, Heads] = {
    "tiny.en": ((1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)),
    "tiny": ((2, 2), (3, 0), (3, 2), (3, 3), (3, 4), (3, 5)),
    "base.en": ((3, 3), (4, 7), (5, 1), (5, 5), (5, 7)),
    "base": ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6)),
    "small.en": ((6, 6), (7, 0), (7, 3), (7, 8), (8, 2), (8, 5), (8, 7), (9, 0), (9, 4), (9, 8), (9, 10),
                 (10, 0), (10, 1), (10, 2), (10, 3), (10, 6), (10, 11), (11, 2), (11, 4)),
    "small": ((5, 3), (5, 9), (8, 0), (8, 4), (8, 7), (8, 8), (9, 0), (9, 7), (9, 9), (10, 5)),
    "medium.en": ((11, 4), (14, 1), (14, 12), (14, 14), (15, 4), (16, 0), (16, 4), (16, 9), (17, 12),
                  (17, 14), (18, 7), (18, 10), (18, 15), (20, 0), (20, 3), (20, 9), (20, 14), (21, 12)),
    "medium": ((13, 15), (15, 4), (15, 15), (16, 1), (20, 0), (23, 4)),
    "large-v1": ((9, 19), (11, 2), (11, 4), (11, 17), (22, 7), (22, 11), (22, 17), (23, 2), (23, 15)),
    "large-v2": ((10, 12), (13, 17), (16, 11), (16, 12), (16, 13), (17, 15), (17, 16), (18, 4), (18, 11),
                 (18, 19), (19, 11), (21, 2), (21, 3), (22, 3), (22, 9), (22, 12), (23, 5), (23, 7),
                 (23, 13), (25, 5), (26, 1), (26, 12), (27, 15)),
    "large-v3": ((7, 0), (10, 17), (12, 18), (13, 12), (16, 1), (17, 14), (19, 11), (21, 4), (24, 1), (25, 6)),
    "large-v3-turbo": ((2, 4), (2, 11), (3, 3), (3, 6), (3, 11), (3, 14)),
}  # fmt: skip
ALIGNMENT_HEADS["large"] = ALIGNMENT_HEADS["large-v3"]  # openai-whisper's aliases
ALIGNMENT_HEADS["turbo"] = ALIGNMENT_HEADS["large-v3-turbo"]

ENGLISH_VOCAB = 51864  # the .en models' vocabulary; multilingual ones have 51865 or more

# (decoder layers, heads, mel bins, English-only) -> the one model with those dimensions
_BY_DIMS: dict[tuple[int, int, int, bool], str] = {
    (4, 6, 80, True): "tiny.en", (4, 6, 80, False): "tiny",
    (6, 8, 80, True): "base.en", (6, 8, 80, False): "base",
    (12, 12, 80, True): "small.en", (12, 12, 80, False): "small",
    (24, 16, 80, True): "medium.en", (24, 16, 80, False): "medium",
    (32, 20, 128, False): "large-v3", (4, 20, 128, False): "large-v3-turbo",
}  # fmt: skip


def whisper_alignment_heads(dims: WhisperDims, source_heads: Heads | None = None, name: str = "") -> Heads:
    """The alignment heads of the model with ``dims``: ``source_heads`` (what the checkpoint
    carries) if given, else the table's entry for ``name`` (a file name such as ``large-v2.pt``)
    or for the dimensions; () where neither decides (the upper half is then used)."""
    heads = source_heads
    if not heads:
        stem = Path(name).name.removesuffix(".pt")
        known = stem if stem in ALIGNMENT_HEADS else _BY_DIMS.get(
            (dims.n_text_layer, dims.n_text_head, dims.n_mels, dims.n_vocab == ENGLISH_VOCAB)
        )
        heads = ALIGNMENT_HEADS.get(known, ()) if known else ()
    return tuple((int(layer), int(head)) for layer, head in heads if layer < dims.n_text_layer and head < dims.n_text_head)
