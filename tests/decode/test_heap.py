"""reused_heap: glibc keeps freed blocks while a batch decodes, and the usual limits return after."""

import platform

import pytest

from asr.decode import heap


def test_thresholds_are_raised_within_and_restored_once_at_the_outermost_exit(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_LIBC", object())  # glibc or not, the logic is the same
    monkeypatch.setattr(heap, "_mallopt", lambda settings: calls.append(dict(settings)))
    monkeypatch.setattr(heap, "_trim", lambda: calls.append("trim"))
    with heap.reused_heap():
        assert calls == [heap.KEEP]
        with heap.reused_heap():  # decode_batch around search_encoded
            pass
        assert calls == [heap.KEEP]  # the inner exit restores nothing
    assert calls == [heap.KEEP, heap.USUAL, "trim"]
    with pytest.raises(ValueError), heap.reused_heap():
        raise ValueError("a failed decode")
    assert calls[-2:] == [heap.USUAL, "trim"] and heap._depth == 0


def test_without_glibc_it_changes_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_LIBC", None)
    monkeypatch.setattr(heap, "_mallopt", lambda settings: pytest.fail("mallopt without glibc"))
    with heap.reused_heap():
        pass


def test_glibc_accepts_the_settings():
    if heap._LIBC is None:  # then reused_heap is a no-op (the test above)
        assert platform.libc_ver()[0] != "glibc"
        return
    assert all(heap._LIBC.mallopt(p, v) == 1 for p, v in {**heap.KEEP, **heap.USUAL}.items())
