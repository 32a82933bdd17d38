"""The encoder: padding does not change an utterance's output."""

import torch

from asr.config import DecoderConfig, EncoderConfig, ModelConfig
from asr.nn.encoder import Encoder
from tests.support.batches import assert_batch_equals_alone, padded

CONFIG = ModelConfig(
    d_model=32,
    encoder=EncoderConfig(layers=2, heads=4, ff_dim=64, dropout=0.1, conv_channels=8),
    decoder=DecoderConfig(layers=2, heads=4, ff_dim=64, dropout=0.1),
)
VOCAB = 11


def test_encoder_output_is_the_same_alone_and_padded_in_a_batch():
    encoder = Encoder(n_mels=20, config=CONFIG).eval()
    utterances = [torch.randn(n, 20) for n in (61, 23, 40)]
    feats, lengths = padded(utterances)
    assert_batch_equals_alone(encoder, utterances, feats, lengths)
