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
    """Factory: the tests' one tiny random model (tests/support/experiments.py:tiny_model)."""
    from tests.support.experiments import tiny_model

    return tiny_model


@pytest.fixture(scope="session")
def random_experiment(tmp_path_factory):
    """Factory: exp/ with a tokenizer trained on ``texts`` and checkpoints/last.pt of a tiny
    random model (``tiny_model``'s) whose outputs are peaked and rarely <eos>, so that searches
    give hypotheses with words in them. Returns (exp_dir, model)."""
    from tests.support.experiments import make_random_experiment

    def make(texts: list[str], **model_options):
        return make_random_experiment(tmp_path_factory.mktemp("exp"), texts, **model_options)

    return make
