"""Exercise 3's twelve scheduler configurations, their torch runs, and closed forms.

``lr_history`` runs torch's own scheduler the course's way: 30 iterations of
``optimizer.step(); scheduler.step()`` on a dummy SGD(lr=0.1), recording the LR
after each step, so the initial LR is not in the list. The closed forms are pure
functions of the step ``t`` (1-based, the number of ``scheduler.step()`` calls
so far) and are what the tests check torch against.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads on first use, so the configurations can be read without it (spec validation)
    from torch import optim

BASE_LR = 0.1
N_STEPS = 30


@dataclass(frozen=True)
class SchedulerConfig:
    """One configuration: a torch scheduler class name and its keyword arguments."""

    family: str  # torch class name, e.g. "StepLR"
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """E.g. ``StepLR(step_size=5, gamma=0.5)``; the key students use in ``lr_histories``."""
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.family}({args})"

    def build(self, optimizer: optim.Optimizer) -> optim.lr_scheduler.LRScheduler:
        from torch.optim import lr_scheduler

        return getattr(lr_scheduler, self.family)(optimizer, **self.params)

    def closed_form(self, t: int, base_lr: float = BASE_LR) -> float:
        """LR after ``t`` scheduler steps, from the formula rather than torch."""
        return CLOSED_FORMS[self.family](t, base_lr, **self.params)


COURSE_CONFIGS: tuple[SchedulerConfig, ...] = (
    SchedulerConfig("StepLR", {"step_size": 5, "gamma": 0.5}),
    SchedulerConfig("StepLR", {"step_size": 10, "gamma": 0.5}),
    SchedulerConfig("StepLR", {"step_size": 10, "gamma": 0.2}),
    SchedulerConfig("CosineAnnealingLR", {"T_max": 30, "eta_min": 0.0}),
    SchedulerConfig("CosineAnnealingLR", {"T_max": 30, "eta_min": 0.05}),
    SchedulerConfig("CosineAnnealingLR", {"T_max": 30, "eta_min": 0.01}),
    SchedulerConfig("CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 1, "eta_min": 0.0}),
    SchedulerConfig("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 0.01}),
    SchedulerConfig("CosineAnnealingWarmRestarts", {"T_0": 7, "T_mult": 3, "eta_min": 0.05}),
    SchedulerConfig("OneCycleLR", {"max_lr": 0.1, "total_steps": 30, "pct_start": 0.3}),
    SchedulerConfig("OneCycleLR", {"max_lr": 0.1, "total_steps": 30, "pct_start": 0.1}),
    SchedulerConfig("OneCycleLR", {"max_lr": 0.1, "total_steps": 30, "pct_start": 0.5}),
)


def dummy_optimizer(base_lr: float = BASE_LR) -> optim.SGD:
    """The exercise's stand-in: SGD over a Linear(1, 1), so schedulers have something to drive."""
    import torch

    return torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=base_lr)


def lr_history(config: SchedulerConfig, n_steps: int = N_STEPS, base_lr: float = BASE_LR) -> list[float]:
    """The LRs after each of ``n_steps`` iterations of ``optimizer.step(); scheduler.step()``."""
    optimizer = dummy_optimizer(base_lr)
    return stepped_lrs(optimizer, config.build(optimizer), n_steps)


def stepped_lrs(optimizer, scheduler, n_steps: int = N_STEPS) -> list[float]:
    """The LRs after each of ``n_steps`` iterations of ``optimizer.step(); scheduler.step()``, for any scheduler."""
    history = []
    for _ in range(n_steps):
        optimizer.step()
        scheduler.step()
        history.append(optimizer.param_groups[0]["lr"])
    return history


def course_lr_histories(n_steps: int = N_STEPS) -> dict[str, list[float]]:
    """``{config.name: lr_history(config)}`` for the twelve configurations, in course order."""
    with warnings.catch_warnings():
        # OneCycleLR's last step lands one past its schedule; torch does not warn, but be safe.
        warnings.simplefilter("ignore", UserWarning)
        return {c.name: lr_history(c, n_steps) for c in COURSE_CONFIGS}


# --- closed forms -------------------------------------------------------------


def step_lr(t: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """lr = base * gamma ** (t // step_size)."""
    return base_lr * gamma ** (t // step_size)


def cosine_annealing(t: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2


def warm_restarts_position(t: int, T_0: int, T_mult: int = 1) -> tuple[int, int]:
    """(T_cur, T_i): steps into the current cycle and that cycle's length.

    >>> [warm_restarts_position(t, 5, 2) for t in (4, 5, 14, 15)]
    [(4, 5), (0, 10), (9, 10), (0, 20)]
    """
    T_cur, T_i = t, T_0
    while T_cur >= T_i:  # integer walk avoids log() rounding at cycle boundaries
        T_cur -= T_i
        T_i *= T_mult
    return T_cur, T_i


def cosine_warm_restarts(t: int, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> float:
    """Cosine annealing within cycles of length T_0, T_0*T_mult, T_0*T_mult**2, ..."""
    T_cur, T_i = warm_restarts_position(t, T_0, T_mult)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def one_cycle(
    t: int,
    base_lr: float,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """Cosine warm-up from max_lr/div_factor to max_lr, then cosine decay to initial/final_div_factor.

    Phase 1 ends at step pct_start*total_steps - 1, phase 2 at total_steps - 1;
    ``base_lr`` is ignored, as OneCycleLR overwrites the optimizer's LR.
    """
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    warm_end = pct_start * total_steps - 1
    if t <= warm_end:
        start, end, pct = initial, max_lr, t / warm_end
    else:
        start, end, pct = max_lr, minimum, (t - warm_end) / (total_steps - 1 - warm_end)
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


CLOSED_FORMS: dict[str, Callable[..., float]] = {
    "StepLR": step_lr,
    "CosineAnnealingLR": cosine_annealing,
    "CosineAnnealingWarmRestarts": cosine_warm_restarts,
    "OneCycleLR": one_cycle,
}


def closed_form_history(config: SchedulerConfig, n_steps: int = N_STEPS, base_lr: float = BASE_LR) -> list[float]:
    return [config.closed_form(t, base_lr) for t in range(1, n_steps + 1)]
