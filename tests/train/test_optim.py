import pytest

from asr.train.optim import noam_factor


def test_noam_schedule_warms_up_linearly_then_decays_as_inverse_square_root():
    assert noam_factor(0, 100) == pytest.approx(0.01)
    assert noam_factor(99, 100) == pytest.approx(1.0)
    assert noam_factor(399, 100) == pytest.approx(0.5)
    assert max(noam_factor(s, 100) for s in range(1000)) == pytest.approx(1.0)
