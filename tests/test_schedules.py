import math

import pytest
import torch

from reference.schedules import (
    COURSE_CONFIGS,
    closed_form_history,
    course_lr_histories,
    lr_history,
    warm_restarts_position,
)


@pytest.fixture(scope="module")
def histories():
    return course_lr_histories()


def test_twelve_configurations_in_four_families(histories):
    assert len(histories) == 12
    assert [c.family for c in COURSE_CONFIGS].count("OneCycleLR") == 3
    assert all(len(h) == 30 for h in histories.values())


@pytest.mark.parametrize("config", COURSE_CONFIGS, ids=lambda c: c.name)
def test_torch_agrees_with_the_closed_form(config, histories):
    assert histories[config.name] == pytest.approx(closed_form_history(config), rel=1e-12, abs=1e-15)


def test_hand_computed_values(histories):
    assert histories["StepLR(step_size=5, gamma=0.5)"][:10] == [0.1] * 4 + [0.05] * 5 + [0.025]
    assert histories["StepLR(step_size=10, gamma=0.2)"][-1] == pytest.approx(0.1 * 0.2**3)
    cos = histories["CosineAnnealingLR(T_max=30, eta_min=0.05)"]
    assert cos[14] == pytest.approx(0.075) and cos[-1] == pytest.approx(0.05)
    restarts = histories["CosineAnnealingWarmRestarts(T_0=10, T_mult=1, eta_min=0.0)"]
    assert restarts[9] == pytest.approx(0.1) and restarts[19] == pytest.approx(0.1)  # restarts after 10 and 20 steps
    cycle = histories["OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.3)"]
    assert max(cycle) == pytest.approx(0.1) and cycle.index(max(cycle)) == 7  # peak at step pct*total - 1 = 8
    assert histories["OneCycleLR(max_lr=0.1, total_steps=30, pct_start=0.1)"][0] == pytest.approx(0.004 + 0.096 / 2)


def test_the_initial_lr_is_not_recorded(histories):
    assert all(h[0] != 0.1 or name.startswith("StepLR") for name, h in histories.items())


def test_warm_restart_cycle_positions():
    assert [warm_restarts_position(t, 7, 3) for t in (6, 7, 27, 28)] == [(6, 7), (0, 21), (20, 21), (0, 63)]


def test_lr_history_uses_a_real_torch_scheduler():
    config = COURSE_CONFIGS[0]
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    scheduler = config.build(optimizer)
    assert type(scheduler).__name__ == "StepLR" and scheduler.step_size == 5
    assert lr_history(config, n_steps=6, base_lr=1.0) == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert math.isclose(closed_form_history(config, 6, 1.0)[-1], 0.5)
