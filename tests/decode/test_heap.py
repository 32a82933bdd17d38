"""keep_freed_memory: glibc keeps freed blocks for the next batch, set once per process."""

import platform

from asr.decode import heap


def test_thresholds_are_raised_once_and_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_LIBC", object())  # glibc or not, the logic is the same
    monkeypatch.setattr(heap, "_kept", False)
    monkeypatch.setattr(heap, "_mallopt", lambda settings: calls.append(dict(settings)))
    heap.keep_freed_memory()
    heap.keep_freed_memory()  # decode_batch, then search_encoded: nothing more to do
    assert calls == [heap.KEEP]


def test_without_glibc_it_changes_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_LIBC", None)
    monkeypatch.setattr(heap, "_kept", False)
    monkeypatch.setattr(heap, "_mallopt", lambda settings: (_ for _ in ()).throw(AssertionError("mallopt without glibc")))
    heap.keep_freed_memory()
    assert heap._kept is False


def test_glibc_accepts_the_settings():
    if heap._LIBC is None:  # then keep_freed_memory is a no-op (the test above)
        assert platform.libc_ver()[0] != "glibc"
        return
    assert all(heap._LIBC.mallopt(p, v) == 1 for p, v in heap.KEEP.items())
