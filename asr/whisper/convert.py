"""`asr import whisper SRC --out EXP`: a Whisper checkpoint -> an ordinary experiment directory.

    EXP/
      config.yaml                 the Whisper configuration of the toolkit's model
      tokenizer/whisper_vocab.json
      checkpoints/imported.pt     the weights in the toolkit's checkpoint format

Everything is read, checked and built in memory first, then written to a temporary folder
beside EXP and renamed to EXP: a bad SRC, a full disk or a SIGTERM (`asr import whisper`)
leaves nothing behind.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from asr import experiment as exp_files
from asr import files
from asr.checkpoint import directory_hash, model_state, save_checkpoint
from asr.config import save_config
from asr.model import ASRModel
from asr.text.whisper_bpe import WhisperTokenizer
from asr.whisper.alignment_heads import whisper_alignment_heads
from asr.whisper.dims import PAD_SECONDS, decoding_rules
from asr.whisper.model import build_whisper_model
from asr.whisper.sources import SourceError, read_source


@dataclass(frozen=True)
class ImportSummary:
    source: str
    out: Path
    parameters: int
    vocab_size: int
    n_mels: int
    multilingual: bool


def load_whisper(
    src: str | Path, tokenizer: str | Path | None = None, language: str | None = None,
    pad_seconds: float = PAD_SECONDS, workdir: str | Path | None = None,
) -> tuple[ASRModel, WhisperTokenizer, str]:
    """Read any of the three formats -> the toolkit model, its tokenizer (written under
    ``workdir``, a folder the caller owns) and the path read."""
    source = read_source(src, tokenizer)
    if len(source.tokens) != source.dims.n_vocab:  # pragma: no cover - read_vocabulary completes it
        raise SourceError(f"{source.path}: vocabulary of {len(source.tokens)} for {source.dims.n_vocab} embeddings")
    tok = WhisperTokenizer.from_tokens(source.tokens, Path(workdir or tempfile.mkdtemp()) / exp_files.TOKENIZER)
    permutation = [tok.to_model(i) for i in range(tok.vocab_size)]  # model id -> Whisper id
    rules = decoding_rules(tok, language)  # and the heads that word times read (decoder config too)
    rules["alignment_heads"] = whisper_alignment_heads(source.dims, source.alignment_heads, source.path)
    model = build_whisper_model(source.dims, source.state, rules, permutation, source.path, pad_seconds)
    return model, tok, source.path


def import_whisper(
    src: str | Path, out: str | Path, tokenizer: str | Path | None = None,
    language: str | None = None, pad_seconds: float = PAD_SECONDS,
) -> ImportSummary:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SourceError(f"{out}: already exists and is not empty; choose a new --out")
    # Written aside (.asr-tmp-PID-NAME), renamed into place; what a killed import left is swept.
    with files.replaced_dir(out) as staging:
        model, tok, path = load_whisper(src, tokenizer, language, pad_seconds, staging)
        save_config(model.config, staging / exp_files.CONFIG)
        state = model_state(model, directory_hash(staging / exp_files.TOKENIZER))
        save_checkpoint(state, staging / exp_files.CHECKPOINTS / exp_files.IMPORTED)
    params = sum(p.numel() for p in model.parameters())
    return ImportSummary(path, out, params, tok.vocab_size, model.config.features.n_mels, tok.multilingual)
