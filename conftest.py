"""Fixtures for the doctests outside tests/: the README's Python example gets ``exp``, a tiny
random experiment, and ``audio``, a 2-second recording (tests/support/experiments.py)."""

import pytest


@pytest.fixture(autouse=True)
def _readme_namespace(request, doctest_namespace, tmp_path_factory):
    if request.node.path.name != "README.md":
        return
    from tests.support.experiments import make_random_experiment, speechlike_file

    root = tmp_path_factory.mktemp("readme")
    texts = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]
    doctest_namespace["exp"] = str(make_random_experiment(root, texts, decoder_layers=1)[0])
    doctest_namespace["audio"] = str(speechlike_file(root / "speech.wav"))


def pytest_ignore_collect(collection_path, config):
    """--doctest-modules is for asr/: helper scripts under tests/ (a DDP worker that runs on
    import, shared test support) are not collected as modules."""
    if collection_path.suffix != ".py" or not collection_path.is_relative_to(config.rootpath / "tests"):
        return None
    return True if not collection_path.name.startswith(("test_", "conftest")) else None
