"""Fixtures of the training tests (the helpers themselves are in toy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toy import make_toy_corpus


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> dict[str, Path]:
    return make_toy_corpus(tmp_path_factory.mktemp("toy"))
