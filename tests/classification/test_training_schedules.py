"""Learning-rate schedules against the paper's formulas, and the linear scaling rule."""

import math

import keras
import numpy as np
import pytest

from kresnet.errors import UserError
from kresnet.tricks.schedules import WarmupStepDecay, build_schedule, scaled_learning_rate, warmup_cosine


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_linear_scaling_rule():
    assert scaled_learning_rate(0.1, 256) == pytest.approx(0.1)
    assert scaled_learning_rate(0.1, 1024) == pytest.approx(0.4)
    assert scaled_learning_rate(0.1, 64) == pytest.approx(0.025)


def test_cosine_with_warmup_matches_formula():
    base, spe, epochs, warmup_epochs = 0.4, 10, 20, 5
    schedule = build_schedule("cosine", base, spe, epochs, warmup_epochs=warmup_epochs)
    warmup, total = warmup_epochs * spe, epochs * spe

    def formula(step):
        if step < warmup:
            return base * step / warmup
        t = step - warmup
        return 0.5 * (1 + math.cos(math.pi * t / (total - warmup))) * base

    for step in [0, 1, warmup // 2, warmup, warmup + 1, (warmup + total) // 2, total - 1, total, total + 5]:
        assert _lr(schedule, step) == pytest.approx(formula(min(step, total)), abs=1e-6), step
    assert _lr(schedule, 0) == 0.0
    assert _lr(schedule, warmup) == pytest.approx(base)
    assert _lr(schedule, (warmup + total) // 2) == pytest.approx(base / 2, abs=1e-6)
    assert _lr(schedule, total) == pytest.approx(0.0, abs=1e-7)


def test_cosine_without_warmup_starts_at_base():
    schedule = build_schedule("cosine", 0.1, 10, 4)
    assert _lr(schedule, 0) == pytest.approx(0.1)
    assert _lr(schedule, 20) == pytest.approx(0.05, abs=1e-6)
    assert _lr(schedule, 40) == pytest.approx(0.0, abs=1e-7)


def test_step_decay_with_warmup_matches_formula():
    base, spe = 0.1, 10
    schedule = build_schedule("step", base, spe, 120, warmup_epochs=5, step_epochs=[30, 60, 90], step_factor=0.1)
    expected = {0: 0.0, 25: base * 25 / 50, 49: base * 49 / 50, 50: base, 299: base, 300: base / 10,
                599: base / 10, 600: base / 100, 900: base / 1000, 1199: base / 1000}
    for step, value in expected.items():
        assert _lr(schedule, step) == pytest.approx(value, rel=1e-5, abs=1e-9), step


def test_step_decay_without_warmup_and_config_round_trip():
    schedule = WarmupStepDecay(0.2, 0, [3, 6], 0.5)
    assert [round(_lr(schedule, s), 6) for s in [0, 2, 3, 5, 6, 9]] == [0.2, 0.2, 0.1, 0.1, 0.05, 0.05]
    clone = WarmupStepDecay.from_config(schedule.get_config())
    np.testing.assert_allclose([_lr(clone, s) for s in range(8)], [_lr(schedule, s) for s in range(8)])


def test_warmup_cosine_takes_its_step_counts_by_keyword():
    """`warmup_cosine(0.1, 10, 100)` swapped the counts and failed on a value the user never passed (decay_steps=-90)."""
    with pytest.raises(TypeError, match="positional"):
        warmup_cosine(0.1, 10, 100)
    schedule = warmup_cosine(0.1, total_steps=100, warmup_steps=10)
    assert _lr(schedule, 10) == pytest.approx(0.1) and _lr(schedule, 55) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("total_steps, warmup_steps", [(10, 100), (100, 100), (0, 0), (100, -1)])
def test_warmup_cosine_names_impossible_step_counts_in_one_line(total_steps, warmup_steps):
    with pytest.raises(UserError, match=rf"^warmup_cosine: .*total_steps={total_steps}.*warmup_steps={warmup_steps}[^\n]*$"):
        warmup_cosine(0.1, total_steps=total_steps, warmup_steps=warmup_steps)
