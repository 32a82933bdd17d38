"""The encoder: padding does not change an utterance's output."""

import torch

from asr.config import DecoderConfig, EncoderConfig, ModelConfig
from asr.nn.encoder import Encoder
from tests.support.batches import padded

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
    batch_out, batch_lengths = encoder(feats, lengths)
    for i, utt in enumerate(utterances):
        alone, alone_length = encoder(utt[None], torch.tensor([len(utt)]))
        n = int(alone_length[0])
        assert n == int(batch_lengths[i])
        torch.testing.assert_close(batch_out[i, :n], alone[0], atol=1e-5, rtol=1e-5)
