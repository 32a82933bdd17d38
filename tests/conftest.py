import pytest
import torch

# The tests' models are tiny: a second thread only adds synchronisation, which costs
# milliseconds per op on a busy 2-core machine. Subprocesses (training runs) keep the default.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def random_experiment(tmp_path_factory):
    """Factory: exp/ with a tokenizer trained on ``texts`` and checkpoints/last.pt of a tiny
    random model (16 kHz, 20 mels) whose outputs are peaked and rarely <eos>, so that searches
    give hypotheses with words in them. Returns (exp_dir, model)."""
    from asr.config import DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
    from asr.data.manifest import Utterance, write_manifest
    from asr.experiment import model_state
    from asr.model import ASRModel
    from asr.data.manifest import manifest_texts
    from asr.text.tokenizer import SOS_EOS_ID, train_tokenizer

    def make(texts: list[str], decoder_layers: int = 2):
        root = tmp_path_factory.mktemp("exp")
        manifest = root / "text.jsonl"
        write_manifest([Utterance(f"s-1-{i}", "unused.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(texts)], manifest)
        exp = root / "exp"
        tokenizer = train_tokenizer(manifest_texts([manifest]), exp / "tokenizer", vocab_size=24)
        torch.manual_seed(0)
        config = ExperimentConfig(
            features=FeatureConfig(n_mels=20),
            model=ModelConfig(
                d_model=32,
                encoder=EncoderConfig(layers=2, heads=2, ff_dim=64, conv_channels=8),
                decoder=DecoderConfig(layers=decoder_layers, heads=2, ff_dim=64),
            ),
        )
        model = ASRModel(config, tokenizer.vocab_size).eval()
        with torch.no_grad():
            model.decoder.output.weight.mul_(3.0)
            model.decoder.output.bias[SOS_EOS_ID] -= 3.0
            model.ctc.weight.mul_(4.0)
        (exp / "checkpoints").mkdir(parents=True)
        torch.save(model_state(model), exp / "checkpoints" / "last.pt")
        return exp, model

    return make
