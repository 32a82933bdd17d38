"""Fixtures of the training tests (the helpers themselves are in toy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toy import TINY_MODEL, make_toy_corpus, toy_overrides  # noqa: F401

# TINY_MODEL and toy_overrides stay importable from here: every test folder's conftest.py is
# module "conftest", and a lazy `from conftest import TINY_MODEL` elsewhere (tests/reliability)
# gets whichever folder's conftest was collected last.


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> dict[str, Path]:
    return make_toy_corpus(tmp_path_factory.mktemp("toy"))
