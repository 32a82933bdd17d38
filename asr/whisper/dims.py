"""Whisper's dimensions -> the toolkit's ExperimentConfig, and Whisper's decoding rules
(prompt, suppressed tokens) in the toolkit's token ids.

Every Whisper size (tiny .. large-v3, .en or multilingual, 80 or 128 mels) is the same
architecture with other dimensions, so one function builds them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from asr.config import DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
from asr.text.whisper_bpe import WhisperTokenizer
from asr.text.language import whisper_prompt

PAD_SECONDS = 30.0  # Whisper's input window


@dataclass(frozen=True)
class WhisperDims:
    """The fields of openai-whisper's ``ModelDimensions``."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


# What any Whisper-architecture checkpoint stays within (large-v3: 128 mels, 1280 wide, 32 layers,
# 51866 tokens), with room to spare; beyond it a file is damaged or not a Whisper model, and
# building it would take minutes and gigabytes before failing.
DIM_RANGES = {
    "n_mels": (1, 512), "n_audio_ctx": (1, 100_000), "n_audio_state": (1, 16384), "n_audio_head": (1, 1024),
    "n_audio_layer": (1, 256), "n_vocab": (1, 1_000_000), "n_text_ctx": (1, 100_000),
    "n_text_state": (1, 16384), "n_text_head": (1, 1024), "n_text_layer": (1, 256),
}  # fmt: skip


class DimensionsError(ValueError):
    """Whisper dimensions out of any Whisper model's range, or too large for this machine."""


def check_dims(dims: WhisperDims, where: str, keys: dict[str, str] | None = None) -> None:
    """Refuse, naming ``where`` (the file) and the key (``keys``: field -> its name in that
    file), dimensions that are not whole numbers in ``DIM_RANGES``, heads that do not divide
    the width, or a model whose import would not fit in memory."""
    keys = keys or {}
    for field, (low, high) in DIM_RANGES.items():
        value = getattr(dims, field)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DimensionsError(
                f"{where}: {keys.get(field, field)}={value!r} is out of range for a Whisper model "
                f"(a whole number from {low} to {high}); the file is damaged or not a Whisper checkpoint"
            )
    for state, head in (("n_audio_state", "n_audio_head"), ("n_text_state", "n_text_head")):
        if getattr(dims, state) % getattr(dims, head):
            raise DimensionsError(
                f"{where}: {keys.get(head, head)}={getattr(dims, head)} heads do not divide "
                f"{keys.get(state, state)}={getattr(dims, state)}"
            )
    if dims.n_audio_state != dims.n_text_state:
        raise DimensionsError(f"{where}: encoder width {dims.n_audio_state} != decoder width {dims.n_text_state}")
    _check_import_memory(dims, where)


def parameter_count(dims: WhisperDims) -> int:
    """Parameters of a Whisper model of these dimensions (as openai-whisper counts them)."""
    d = dims.n_audio_state
    encoder = dims.n_audio_layer * (12 * d * d + 12 * d) + 3 * d * (dims.n_mels + d) + 4 * d + dims.n_audio_ctx * d
    decoder = dims.n_text_layer * (16 * d * d + 17 * d) + (dims.n_vocab + dims.n_text_ctx + 2) * d
    return encoder + decoder


def _check_import_memory(dims: WhisperDims, where: str) -> None:
    from asr.memory import require

    parameters = parameter_count(dims)
    # float32 twice over: the source's weights and the built model
    require(
        8 * parameters, f"{where}: importing a Whisper model of {parameters / 1e6:,.0f}M parameters",
        "check the file's dimensions (layers, width, vocabulary), or import on a machine with more memory",
    )


def non_speech_tokens(tokenizer: WhisperTokenizer) -> list[int]:
    """Whisper ids of symbols that are not speech (``non_speech_tokens`` in openai-whisper)."""
    encode = tokenizer._bpe.encode_ordinary
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    miscellaneous = set("♩♪♫♬♭♮♯")  # one token or several sharing the first: suppress that
    result = {encode(" -")[0], encode(" '")[0]}  # "-" and "'" are allowed between words only
    for symbol in symbols + sorted(miscellaneous):
        for tokens in (encode(symbol), encode(" " + symbol)):
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return sorted(result)


def decoding_rules(tokenizer: WhisperTokenizer, language: str | None) -> dict:
    """The decoder's prompt, suppressed and first-step-suppressed tokens, in model ids.

    As openai-whisper and faster-whisper decode without timestamps: prompt <|startoftranscript|>
    [<|language|> <|transcribe|>] <|notimestamps|> (the language and task only for multilingual
    models); suppressed: the non-speech symbols and the task/special tokens; at the first step
    also " " and <|endoftext|>.
    """
    prompt = whisper_prompt(tokenizer, language)
    specials = [n for n in ("transcribe", "translate", "startoftranscript", "startofprev", "startoflm",
                            "nospeech", "nocaptions") if n in _names(tokenizer)]  # fmt: skip
    suppress = {tokenizer.to_model(i) for i in non_speech_tokens(tokenizer)}
    suppress |= {tokenizer.special(n) for n in specials}
    at_start = [tokenizer.to_model(tokenizer._bpe.encode_ordinary(" ")[0]), tokenizer.to_model(tokenizer.eot)]
    return {"prompt": prompt, "suppress": tuple(sorted(suppress)), "suppress_at_start": tuple(at_start)}


def _names(tokenizer: WhisperTokenizer) -> set[str]:
    return {token[2:-2] for token in tokenizer.specials}


def whisper_config(dims: WhisperDims, rules: dict, pad_seconds: float = PAD_SECONDS) -> ExperimentConfig:
    """The toolkit configuration that is this Whisper model (dropout 0, as Whisper trains)."""
    if dims.n_audio_state != dims.n_text_state:
        raise ValueError(f"encoder width {dims.n_audio_state} != decoder width {dims.n_text_state}")
    encoder = EncoderConfig(
        layers=dims.n_audio_layer, heads=dims.n_audio_head, ff_dim=4 * dims.n_audio_state, dropout=0.0,
        stem="conv1d", positions="whisper", max_positions=dims.n_audio_ctx, activation="gelu",
    )  # fmt: skip
    decoder = DecoderConfig(
        layers=dims.n_text_layer, heads=dims.n_text_head, ff_dim=4 * dims.n_text_state, dropout=0.0,
        positions="learned", max_positions=dims.n_text_ctx, activation="gelu", scale_embedding=False,
        tie_output=True, **rules,
    )  # fmt: skip
    model = ModelConfig(d_model=dims.n_audio_state, encoder=encoder, decoder=decoder, ctc_weight=0.0,
                        label_smoothing=0.0, ctc_head=False, attention_key_bias=False)  # fmt: skip
    features = FeatureConfig(n_mels=dims.n_mels, frontend="whisper", pad_seconds=pad_seconds, cmvn=False)
    return ExperimentConfig(features=features, model=model)
