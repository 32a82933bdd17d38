"""Streaming recognition for native joint CTC/attention models (WeNet's U2 decoding).

Audio arrives in pieces of any size. Every ``chunk_ms`` of audio, the chunked encoder
(:class:`asr.nn.streaming.StreamingEncoder`) turns the new frames into encoder output, the CTC
head scores them, and CTC prefix beam search advances its prefixes (:mod:`asr.decode.ctc_beam`):
the best prefix is the partial result. At an endpoint (``endpoint_ms`` of frames where CTC
emits blank, after some words) or at the end of the stream, the n-best prefixes are rescored by
the attention decoder over the utterance's encoder output (attention rescoring), the winner is
forced through CTC for word times, and the next utterance starts afresh.

    stream = RecognitionStream(model, tokenizer, StreamOptions(chunk_ms=640))
    for piece in pieces:            # (S,) float32 samples at the model's rate
        partial = stream.accept(piece)
    result = stream.finish()        # .text, .segments (start, end, text, words)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from asr.decode.align import FrameClock, Word, align_tokens, words_from_spans
from asr.decode.ctc import batched_sequence_log_probs
from asr.decode.ctc_beam import Prefixes, advance_prefixes, prefix_results
from asr.decode.rescore import teacher_forced_log_probs
from asr.decode.scorers import combine
from asr.features import frame_lengths
from asr.model import ASRModel
from asr.nn.streaming import EncoderStream, StreamingEncoder
from asr.text.tokenizer import BLANK_ID, Tokenizer

MAX_CHUNK_MS = 60_000.0
MAX_UTTERANCE_S = 600.0


class StreamError(ValueError):
    """Streaming options this model cannot honour."""


@dataclass(frozen=True)
class StreamOptions:
    chunk_ms: float = 640.0  # audio per encoder chunk: the partial results' period
    left_chunks: int = -1  # chunks of left context the encoder attends (-1: the whole utterance)
    beam: int = 10  # CTC prefix beam; also the n-best that attention rescoring reranks
    ctc_weight: float = 0.5  # rescoring: w * CTC + (1 - w) * attention (WeNet's default)
    rescore: bool = True
    endpoint_ms: float = 800.0  # trailing blank audio that ends an utterance (0: only at the end)
    # An utterance is cut here even without an endpoint: what a stream holds (encoder output,
    # CTC log-probs, the encoder's left context) is bounded by it, whatever the audio or options.
    max_utterance_s: float = 30.0  # rounded up to whole chunks

    def __post_init__(self) -> None:
        if not 0 < self.chunk_ms <= MAX_CHUNK_MS:
            raise StreamError(f"chunk_ms={self.chunk_ms}: must be > 0 and <= {MAX_CHUNK_MS:g}")
        if not 1 <= self.beam <= 200:
            raise StreamError(f"beam={self.beam}: must be 1..200")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise StreamError(f"ctc_weight={self.ctc_weight}: must be in [0, 1]")
        if self.endpoint_ms < 0:
            raise StreamError(f"endpoint_ms={self.endpoint_ms}: must be >= 0")
        if not 0 < self.max_utterance_s <= MAX_UTTERANCE_S:  # shorter than a chunk: cut every chunk
            raise StreamError(f"max_utterance_s={self.max_utterance_s}: must be > 0 and <= {MAX_UTTERANCE_S:g}")


@dataclass
class StreamSegment:
    start: float  # seconds from the start of the stream
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class StreamResult:
    segments: list[StreamSegment]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass
class _Utterance:
    """The current utterance: encoder frames and CTC log-probs so far, and the CTC prefixes."""

    encoder: EncoderStream
    prefixes: Prefixes
    start_frame: int  # its first encoder frame, counted from the start of the stream
    memory: list[Tensor] = field(default_factory=list)  # (1, t, D) per chunk
    log_probs: list[Tensor] = field(default_factory=list)  # (1, t, V) per chunk
    trailing_blanks: int = 0  # encoder frames since CTC last emitted a label


class RecognitionStream:
    """One live stream decoded with a native joint CTC/attention model (see the module doc)."""

    def __init__(self, model: ASRModel, tokenizer: Tokenizer, options: StreamOptions = StreamOptions()):
        if model.ctc is None:
            raise StreamError("streaming needs a CTC head (model.ctc_head: true); this model has none")
        if model.config.features.frontend != "logmel":
            raise StreamError("streaming needs the logmel frontend (Whisper models stream by local agreement)")
        self.model, self.tokenizer, self.options = model.eval(), tokenizer, options
        self.clock = FrameClock.of(model)
        frontend = model.frontend
        self.n_fft, self.hop = frontend.n_fft, frontend.hop
        chunk = max(1, round(options.chunk_ms / 1000 / self.clock.stride))
        try:
            self.encoder = StreamingEncoder(model.encoder, chunk, options.left_chunks)
        except ValueError as error:
            raise StreamError(str(error)) from None
        self.endpoint_frames = round(options.endpoint_ms / 1000 / self.clock.stride)
        self.max_frames = max(chunk, round(options.max_utterance_s / self.clock.stride))
        self.device = next(model.parameters()).device
        self.samples = torch.zeros(0, device=self.device)  # not yet framed
        self.segments: list[StreamSegment] = []
        self.utterance = self._new_utterance(self.encoder.start(model.config.features.n_mels, self.device), 0)

    def _new_utterance(self, encoder: EncoderStream, start_frame: int) -> _Utterance:
        return _Utterance(encoder, Prefixes.empty(1, self.options.beam, 1, self.device), start_frame)

    @torch.inference_mode()
    def accept(self, samples: Tensor | np.ndarray) -> str:
        """Append (S,) float samples at the model's rate; return the partial text of the current
        utterance (final segments so far are in ``segments``)."""
        samples = torch.as_tensor(samples).to(self.device, torch.float32).reshape(-1)
        if not bool(torch.isfinite(samples).all()):
            raise StreamError("samples with NaN or Inf values")
        self.samples = torch.cat([self.samples, samples])
        frames = int(frame_lengths(torch.tensor([self.samples.numel()]), self.n_fft, self.hop))
        if frames > 0:
            used = (frames - 1) * self.hop + self.n_fft
            feats = self._features(self.samples[:used])
            self.samples = self.samples[frames * self.hop :]
            step = self.encoder.chunk * self.encoder.stride  # one chunk at a time: endpoints and cuts fall between chunks
            for start in range(0, feats.shape[1], step):
                self._encode(feats[:, start : start + step], final=False)
        return self.partial_text()

    @torch.inference_mode()
    def finish(self) -> StreamResult:
        """End of the stream: decode what is left and return every segment."""
        self._encode(self.utterance.encoder.pending.new_zeros(1, 0, self.model.config.features.n_mels), final=True)
        self._end_utterance()
        return StreamResult(self.segments)

    def partial_text(self) -> str:
        best = prefix_results(self.utterance.prefixes)[0]
        return self.tokenizer.decode(best[0][0]) if best else ""

    def _features(self, samples: Tensor) -> Tensor:
        lengths = torch.tensor([samples.numel()], device=self.device)
        feats, feat_lengths = self.model.frontend(samples[None], lengths)
        if self.model.cmvn is not None:
            feats = self.model.cmvn(feats, feat_lengths)
        return feats  # (1, T, F)

    def _encode(self, feats: Tensor, final: bool) -> None:
        utt = self.utterance
        encoded = self.encoder.accept(utt.encoder, feats, final=final)  # (1, t, D)
        if encoded.shape[1] == 0:
            return
        log_probs = self.model.ctc_log_probs(encoded)  # (1, t, V)
        utt.prefixes = advance_prefixes(utt.prefixes, log_probs, torch.tensor([encoded.shape[1]]), self.options.beam)
        utt.memory.append(encoded)
        utt.log_probs.append(log_probs)
        blanks = (log_probs[0].argmax(dim=-1) == BLANK_ID).tolist()
        for is_blank in blanks:
            utt.trailing_blanks = utt.trailing_blanks + 1 if is_blank else 0
        endpoint = bool(self.endpoint_frames) and utt.trailing_blanks >= self.endpoint_frames and bool(self.partial_text())
        if not final and (endpoint or utt.encoder.offset >= self.max_frames):
            self._end_utterance()
            self.utterance = self._new_utterance(
                self.encoder.start(self.model.config.features.n_mels, self.device),
                utt.start_frame + utt.encoder.offset,
            )
            self.utterance.encoder.pending = utt.encoder.pending  # the next frames' overlap

    def _end_utterance(self) -> None:
        utt = self.utterance
        if not utt.memory:
            return
        memory, log_probs = torch.cat(utt.memory, dim=1), torch.cat(utt.log_probs, dim=1)
        nbest = [tokens for tokens, _ in prefix_results(utt.prefixes)[0]]
        best = self._rescored(memory, log_probs, nbest) if self.options.rescore and len(nbest) > 1 else nbest[0]
        text = self.tokenizer.decode(best)
        if not text:  # silence: no segment
            return
        start_s = utt.start_frame * self.clock.stride
        end_s = start_s + memory.shape[1] * self.clock.stride
        spans = align_tokens(log_probs[0], best)
        words = words_from_spans(spans, self.tokenizer.pieces(best), self.tokenizer.decode, self.clock, start_s) if spans else []
        self.segments.append(StreamSegment(round(start_s, 3), round(end_s, 3), text, words))

    def _rescored(self, memory: Tensor, log_probs: Tensor, nbest: list[list[int]]) -> list[int]:
        lengths = torch.tensor([memory.shape[1]], device=self.device)
        owner = torch.zeros(len(nbest), dtype=torch.long, device=self.device)
        attention = teacher_forced_log_probs(self.model.decoder, memory, lengths, owner, nbest)
        ctc = batched_sequence_log_probs(log_probs, lengths, owner, nbest).to(attention.device)
        weight = self.options.ctc_weight
        joint = combine({"decoder": attention, "ctc": ctc}, {"decoder": 1.0 - weight, "ctc": weight})
        return nbest[int(joint.argmax())]
