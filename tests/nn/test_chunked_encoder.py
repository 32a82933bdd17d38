"""Chunked attention and the streaming encoder: a stream fed piece by piece gives exactly the
full encoder's output under the same chunk mask; dynamic chunk training draws from the RNG."""

import dataclasses

import pytest
import torch

from asr.config import ChunkConfig, EncoderConfig, ModelConfig
from asr.nn.chunks import FULL_CONTEXT, chunk_mask, draw_chunk
from asr.nn.encoder import Encoder
from asr.nn.streaming import StreamingEncoder

CONFIG = ModelConfig(d_model=32, encoder=EncoderConfig(layers=3, heads=4, ff_dim=64, dropout=0.1, conv_channels=8))


def test_a_frame_attends_its_own_chunk_and_the_left_chunks_allowed():
    expected = torch.tensor([
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],  # chunk 2 (partial) with one chunk of left context: not chunk 0
    ], dtype=torch.bool)
    assert torch.equal(chunk_mask(5, 2, left_chunks=1), expected)
    assert torch.equal(chunk_mask(5, 2, left_chunks=-1)[4], torch.ones(5, dtype=torch.bool))
    assert torch.equal(chunk_mask(4, 1, left_chunks=0), torch.eye(4, dtype=torch.bool))


def _stream(encoder: Encoder, feats: torch.Tensor, chunk: int, left: int, pieces: list[int]) -> torch.Tensor:
    streaming = StreamingEncoder(encoder, chunk, left)
    stream = streaming.start(feats.shape[-1])
    outputs, start = [], 0
    for size in pieces:
        outputs.append(streaming.accept(stream, feats[:, start : start + size]))
        start += size
    outputs.append(streaming.accept(stream, feats[:, start:], final=True))
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("chunk, left", [(1, -1), (4, -1), (7, 2), (4, 0), (100, -1)])
def test_the_stream_equals_the_full_encoder_under_the_same_chunk_mask(chunk, left):
    torch.manual_seed(0)
    encoder = Encoder(n_mels=20, config=CONFIG).eval()
    feats = torch.randn(1, 157, 20)  # 38 encoder frames: chunks of 4 end on a partial one
    full, lengths = encoder(feats, torch.tensor([157]), chunk=(chunk, left))
    streamed = _stream(encoder, feats, chunk, left, pieces=[3, 1, 30, 17, 64])  # arbitrary arrivals
    assert streamed.shape == full.shape == (1, int(lengths), 32)
    assert torch.allclose(streamed, full, atol=1e-5)
    if chunk < 38:  # chunking changes the output: the comparison above is not trivially full context
        assert not torch.allclose(full, encoder(feats, torch.tensor([157]))[0], atol=1e-3)


def test_a_stream_emits_each_chunk_as_soon_as_its_frames_have_arrived():
    encoder = Encoder(n_mels=20, config=CONFIG).eval()
    streaming = StreamingEncoder(encoder, chunk=4)
    stream = streaming.start(20)
    # 4 encoder frames need (4 - 1) * 4 + 7 = 19 feature frames
    assert streaming.accept(stream, torch.randn(1, 18, 20)).shape[1] == 0
    assert streaming.accept(stream, torch.randn(1, 1, 20)).shape[1] == 4
    assert streaming.accept(stream, torch.randn(1, 16, 20)).shape[1] == 4


def test_dynamic_chunk_training_draws_chunks_from_the_torch_rng():
    config = ChunkConfig(dynamic=True, max_frames=8, full_context_share=0.5)
    torch.manual_seed(3)
    draws = [draw_chunk(config, 50) for _ in range(200)]
    sizes = [size for size, _ in draws]
    assert 60 < sizes.count(FULL_CONTEXT) < 140 and set(sizes) - {FULL_CONTEXT} == set(range(1, 9))
    torch.manual_seed(3)
    assert [draw_chunk(config, 50) for _ in range(200)] == draws  # a resumed RNG draws the same
    assert draw_chunk(ChunkConfig(dynamic=False), 50) == (FULL_CONTEXT, -1)
    left = {draw_chunk(dataclasses.replace(config, random_left=True, full_context_share=0.0), 50)[1] for _ in range(100)}
    assert min(left) == 0 and max(left) > 3


def test_a_training_forward_uses_the_drawn_chunk_mask():
    config = dataclasses.replace(
        CONFIG, encoder=dataclasses.replace(CONFIG.encoder, dropout=0.0, chunk=ChunkConfig(dynamic=True, full_context_share=0.0, max_frames=5))
    )
    encoder = Encoder(n_mels=20, config=config)
    feats, lengths = torch.randn(2, 120, 20), torch.tensor([120, 90])
    torch.manual_seed(7)
    trained = encoder.train()(feats, lengths)[0]
    torch.manual_seed(7)
    chunk = draw_chunk(config.encoder.chunk, trained.shape[1])
    assert chunk[0] != FULL_CONTEXT
    assert torch.allclose(trained, encoder.eval()(feats, lengths, chunk=chunk)[0], atol=1e-6)


def test_streaming_refuses_encoders_that_see_the_next_chunk():
    conformer = dataclasses.replace(CONFIG.encoder, type="conformer", chunk=ChunkConfig(dynamic=True))
    from asr.nn.conformer import ConformerEncoder

    with pytest.raises(ValueError, match="chunk.dynamic needs model.encoder.type transformer"):
        ConformerEncoder(20, dataclasses.replace(CONFIG, encoder=conformer))
    with pytest.raises(ValueError, match="conv2d stem"):
        StreamingEncoder(Encoder(20, dataclasses.replace(CONFIG, encoder=dataclasses.replace(CONFIG.encoder, stem="conv1d"))), 4)
