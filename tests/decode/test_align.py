"""asr.decode.align: CTC forced alignment -> token spans -> words with times and confidences."""

import math

import pytest
import torch

from asr.decode.align import FrameClock, TokenSpan, Word, align_tokens, cut_at_pauses, snap_to_speech, words_from_spans

BLANK = 0


def _peaked(frames: int, vocab: int, peaks: dict[int, int], p: float = 0.9) -> torch.Tensor:
    """(T, V) log-probs: blank everywhere except token ``peaks[t]`` at frame t, with probability p."""
    probs = torch.full((frames, vocab), (1 - p) / (vocab - 1))
    probs[:, BLANK] = p
    for t, token in peaks.items():
        probs[t] = (1 - p) / (vocab - 1)
        probs[t, token] = p
    return probs.log()


def test_each_token_gets_the_frames_where_it_peaks():
    log_probs = _peaked(20, 8, {3: 5, 4: 5, 10: 6, 15: 5})
    spans = align_tokens(log_probs, [5, 6, 5])
    assert [(s.token, s.start, s.end) for s in spans] == [(5, 3, 5), (6, 10, 11), (5, 15, 16)]
    assert all(s.confidence == pytest.approx(0.9) for s in spans)


def test_tokens_that_cannot_fit_in_the_frames_give_no_alignment():
    log_probs = _peaked(2, 8, {0: 5, 1: 5})
    assert align_tokens(log_probs, [5, 5]) == []  # a repeat needs a blank between: 3 frames
    assert len(align_tokens(_peaked(3, 8, {0: 5, 2: 5}), [5, 5])) == 2
    assert align_tokens(log_probs, []) == []


def test_the_clock_of_the_tiny_model_follows_hop_window_and_subsampling(random_experiment):
    _, model = random_experiment(["A B C"])
    clock = FrameClock.of(model)
    # 10 ms hop x 4; an encoder frame sees 7 feature frames = 6 hops + one 25 ms window
    assert clock.stride == pytest.approx(0.04)
    assert clock.offset == pytest.approx((6 * 160 + 400) / 2 / 16000)
    assert clock.span_seconds(0, 1) == (pytest.approx(0.0225), pytest.approx(0.0625))
    assert clock.span_seconds(10, 12) == (pytest.approx(0.4225), pytest.approx(0.5025))


def test_words_start_at_a_word_boundary_piece_and_average_their_confidences():
    spans = [TokenSpan(3, 2, 3, 0.8), TokenSpan(4, 3, 5, 0.4), TokenSpan(5, 9, 10, 1.0), TokenSpan(6, 12, 13, 0.5)]
    pieces = ["\u2581HEL", "LO", "\u2581", "\u2581YOU"]  # a lone boundary piece is no word
    text = {3: "HEL", 4: "LO", 5: "", 6: "YOU"}
    clock = FrameClock(stride=0.1, offset=0.05)
    words = words_from_spans(spans, pieces, lambda ids: "".join(text[i] for i in ids), clock, offset_seconds=1.0)
    assert words == [Word("HELLO", 1.2, 1.5, pytest.approx(0.6)), Word("YOU", 2.2, 2.3, 0.5)]


def test_boundaries_snap_to_the_edges_of_speech_but_not_past_a_neighbour():
    voiced = torch.zeros(100, dtype=torch.bool)
    voiced[10:30] = True  # word 1 sounds over frames 10-29
    voiced[40:60] = True  # word 2 over 40-59 ...
    voiced[60:70] = True  # ... running straight into word 3
    words = [Word("A", 0.12, 0.15, 0.5), Word("B", 0.45, 0.47, 0.5), Word("C", 0.65, 0.66, 0.5)]
    snapped = snap_to_speech(words, voiced, frame_seconds=0.01, offset=2.0 - 2.0)
    assert [(w.start, w.end) for w in snapped] == [(0.1, 0.3), (0.4, 0.65), (0.65, 0.7)]
    # a span that sits in silence is left where CTC put it
    assert snap_to_speech([Word("D", 0.8, 0.9, 0.1)], voiced)[0] == Word("D", 0.8, 0.9, 0.1)
    # with an offset, frames count from the segment start
    shifted = snap_to_speech([Word("A", 5.12, 5.15, 0.5)], voiced, offset=5.0)
    assert (shifted[0].start, shifted[0].end) == (5.1, 5.3)
    assert not math.isnan(snapped[0].confidence)


def test_a_bridged_start_moves_back_over_short_pauses_only():
    voiced = torch.zeros(100, dtype=torch.bool)
    voiced[10:20] = True  # word 1
    voiced[40:45] = True  # word 2's onset, then a 4-frame closure ...
    voiced[49:60] = True  # ... and the rest of word 2, where a late start lands
    words = [Word("A", 0.12, 0.18, 0.5), Word("B", 0.52, 0.58, 0.5)]
    plain = snap_to_speech(words, voiced)
    bridged = snap_to_speech(words, voiced, bridge=0.1)
    assert (plain[1].start, bridged[1].start) == (0.49, 0.4)
    assert bridged[0] == plain[0]  # 20 silent frames before word 2's onset: not bridged
    assert snap_to_speech(words, voiced, bridge=0.03)[1].start == 0.49  # the closure is longer than that


def test_a_word_over_a_pause_keeps_its_part_with_the_most_speech():
    voiced = torch.zeros(100, dtype=torch.bool)
    voiced[10:40] = True  # the word
    voiced[65:70] = True  # the next phrase's first sounds, after a 0.25 s pause
    word = Word("PARK", 0.15, 0.68, 0.9)
    assert cut_at_pauses([word], voiced) == [Word("PARK", 0.15, 0.4, 0.9)]
    assert cut_at_pauses([word], voiced, min_pause=0.3) == [word]  # a shorter pause stays inside
    assert cut_at_pauses([word], voiced, offset=1.0) == [word]  # no speech where it lies: unchanged
