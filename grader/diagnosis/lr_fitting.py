"""Find the scheduler parameters that make torch reproduce a student's LR list, and torch's readings of a run.

Pure functions: no kernel, no files. Step k means entry k of a list (1-based): the LR read
after k calls of ``scheduler.step()``, as in ``reference.schedules.lr_history``.
``readings`` reads one run the ways students read it (after the step, before it, one
ahead, through ``get_lr()``), for torch's own run (``torch_runs``) and for a student's
exported scheduler replayed by the grader alike. ``fit`` finds parameters of a family that
reproduce a list, fewest changes from the expected configuration first. A fit counts only
when torch, run with the fitted parameters, reproduces the list to rtol 1e-6; the closed
forms and least squares only propose candidates. ``grader.diagnosis.lr_messages`` turns
both into advice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from reference.schedules import BASE_LR, N_STEPS, SchedulerConfig, dummy_optimizer, lr_history, warm_restarts_position

RTOL = 1e-6
ATOL = 1e-12  # torch's cosine lands on exactly 0.0, a formula on 1e-18; no course LR is below 4e-7
DEFAULTS = {"OneCycleLR": {"div_factor": 25.0, "final_div_factor": 1e4, "anneal_strategy": "cos"}}
MAX_VERIFIED = 6  # torch runs per family to confirm the best-ranked candidates


@dataclass(frozen=True)
class Fit:
    config: SchedulerConfig
    base_lr: float


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)


def same(a: Sequence[float], b: Sequence[float] | None) -> bool:
    """Equal length and every entry within rtol 1e-6.

    >>> same([0.1, 0.05], [0.1, 0.05 * (1 + 1e-9)]), same([0.1], [0.1, 0.05])
    (True, False)
    """
    return b is not None and len(a) == len(b) and all(map(close, a, b))


def rounded(lrs: Sequence[float], run: Sequence[float] | None) -> str | None:
    """How ``lrs`` is ``run`` rounded ("4 decimal places", "3 significant digits"), or None when it is not.

    Rounding that keeps fewer than three significant digits of the largest LR is not recognised: so coarse a list
    could be another schedule's as well; nor is one that changes a single LR of the run.

    >>> rounded([0.0997, 0.0989], [0.0997261, 0.0989074]), rounded([0.1, 0.1], [0.0997261, 0.0989074])
    ('4 decimal places', None)
    """
    if run is None or len(run) != len(lrs) or not run or same(lrs, run):
        return None
    # One LR of the run changed is as much a value set by hand (a floor, a cap) as a rounding: neither is named.
    if len({x for x, y in zip(run, lrs) if not close(x, y)}) < 2:
        return None
    top = max(abs(x) for x in run)
    for places in range(11):
        if 10.0 ** -places <= top / 100 and same(lrs, [round(x, places) for x in run]):
            return f"{places} decimal places"
    for digits in range(3, 11):
        if same(lrs, [float(f"{x:.{digits}g}") for x in run]):
            return f"{digits} significant digits"
    return None


def clamped(lrs: Sequence[float], run: Sequence[float] | None) -> tuple[str, float] | None:
    """("floor", c) where ``lrs`` is ``run`` with every LR below c raised to c, ("cap", c) where every LR above c
    is lowered to c, for a c that changes some of the run; None otherwise.

    >>> clamped([0.1, 0.02, 0.001], [0.1, 0.02, 0.0008]), clamped([0.05, 0.05, 0.01], [0.1, 0.05, 0.01])
    (('floor', 0.001), ('cap', 0.05))
    """
    if run is None or len(run) != len(lrs) or not run or same(lrs, run):
        return None
    low, high = min(lrs), max(lrs)
    if same(lrs, [max(x, low) for x in run]):
        return "floor", low
    if same(lrs, [min(x, high) for x in run]):
        return "cap", high
    return None


def as_floats(value: object) -> list[float] | str:
    """The list as floats, or why it is not a flat list of finite numbers."""
    if hasattr(value, "tolist"):  # a tensor or array that reached the grader as one
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return f"it must be a list of numbers, not {type(value).__name__}"
    if value and all(isinstance(v, list) and len(v) == 1 for v in value):
        return ("each entry is a one-element list like [0.1], which is what get_last_lr() returns; "
                "store the number itself: scheduler.get_last_lr()[0] or optimizer.param_groups[0]['lr']")
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        return f"it must hold numbers only, but one entry is {bad[0]!r:.60}"
    if not all(math.isfinite(v) for v in value):
        return "it holds NaN or infinite values"
    return [float(v) for v in value]


def _nice(x: float) -> float:
    """Eight significant digits, so a fitted 0.7000000000000001 reads 0.7 (and stays well within rtol).

    >>> _nice(0.7000000000000001), _nice(0.0001953125), _nice(-3e-17)
    (0.7, 0.0001953125, 0.0)
    """
    return 0.0 if abs(x) < 1e-12 else float(f"{x:.8g}")


def call(config: SchedulerConfig) -> str:
    """``SchedulerConfig.name`` with strings quoted: ``OneCycleLR(..., anneal_strategy='linear')``."""
    return f"{config.family}({', '.join(f'{k}={v!r}' for k, v in config.params.items())})"


def restarts(lrs: Sequence[float]) -> list[int]:
    """Steps where the LR jumps back up, e.g. [5, 15] for warm restarts with T_0=5, T_mult=2."""
    return [k + 1 for k in range(1, len(lrs)) if lrs[k] > lrs[k - 1] and not close(lrs[k], lrs[k - 1])]


# --- one run, read every way a student can read it -----------------------------------------

# What each reading records at iteration k of `optimizer.step(); scheduler.step()` (1-based).
READINGS = {
    "after": "the LR after step k (optimizer.param_groups[0]['lr'] or scheduler.get_last_lr()[0]): the course's list",
    "before": "the same LR read before step k, so the list starts with the initial LR",
    "initial": "the initial LR, then the LR after each step: one value more",
    "get_lr": "scheduler.get_lr() after step k",
    "get_lr_before": "scheduler.get_lr() before step k",
    "ahead": "the LR after step k + 1: one step taken before the loop",
}
# Readings of a scheduler stepped exactly n times: each list is still that scheduler's run.
SAME_RUN = ("after", "before", "initial", "get_lr", "get_lr_before")


def readings(optimizer: object, scheduler: object, n: int) -> dict[str, list[float] | None]:
    """Step ``scheduler`` n + 1 times (as long as it lets itself be stepped) and read it as in ``READINGS``."""
    initial = optimizer.param_groups[0]["lr"]
    after: list[float] = []
    get_lr: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # get_lr() outside step() warns: that is the mistake replayed
        first = float(scheduler.get_lr()[0])
        for _ in range(n + 1):
            optimizer.step()
            try:
                scheduler.step()
            except ValueError:  # OneCycleLR refuses to step past total_steps
                break
            after.append(optimizer.param_groups[0]["lr"])
            get_lr.append(float(scheduler.get_lr()[0]))
    return {"after": after[:n], "before": [initial] + after[:n - 1], "initial": [initial] + after[:n],
            "get_lr": get_lr[:n], "get_lr_before": [first] + get_lr[:n - 1],
            "ahead": after[1:] if len(after) > n else None}


def torch_runs(config: SchedulerConfig, n: int, base_lr: float = BASE_LR) -> dict[str, list[float] | None]:
    """torch's own run of ``config`` read every way in ``READINGS``; "after" is the course's list."""
    optimizer = dummy_optimizer(base_lr)
    return readings(optimizer, config.build(optimizer), n)


def rebuilt_runs(config: SchedulerConfig, n: int, base_lr: float = BASE_LR) -> dict[str, list[float]]:
    """The LRs when a new scheduler is made in every iteration and stepped once, on one optimizer or a new one each."""
    optimizer = dummy_optimizer(base_lr)
    same_optimizer = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(n):
            scheduler = config.build(optimizer)
            optimizer.step()
            scheduler.step()
            same_optimizer.append(optimizer.param_groups[0]["lr"])
    return {"same_optimizer": same_optimizer, "new_optimizer": lr_history(config, 1, base_lr) * n}


# --- candidate parameters from closed forms ---------------------------------------------


def _linear_fit(basis: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Least-squares coefficients when they reproduce ``y`` to rtol, else None."""
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    fitted = basis @ coef
    return coef if np.all(np.abs(fitted - y) <= RTOL * np.abs(y) + ATOL) else None


def _step_candidates(y: np.ndarray) -> Iterator[tuple[dict, float]]:
    for k in range(1, len(y) + 1):
        base, gamma = (y[0] / (y[1] / y[0]), y[1] / y[0]) if k == 1 else (y[0], y[k - 1] / y[0])
        t = np.arange(1, len(y) + 1)
        if gamma > 0 and np.allclose(base * gamma ** (t // k), y, rtol=RTOL, atol=ATOL):
            yield {"step_size": k, "gamma": _nice(gamma)}, _nice(base)


def _cosine_candidates(y: np.ndarray, family: str) -> Iterator[tuple[dict, float]]:
    t = np.arange(1, len(y) + 1)
    if family == "CosineAnnealingLR":
        grid = [({"T_max": T}, t / T) for T in range(1, 4 * N_STEPS + 1)]
    else:
        grid = []
        for T_0 in range(1, 2 * N_STEPS + 1):
            for T_mult in range(1, 5):
                cur, length = zip(*(warm_restarts_position(int(s), T_0, T_mult) for s in t))
                grid.append(({"T_0": T_0, "T_mult": T_mult}, np.array(cur) / np.array(length)))
    for params, phase in grid:
        c = (1 + np.cos(np.pi * phase)) / 2  # lr = eta_min + (base - eta_min) * c, linear in (base, eta_min)
        coef = _linear_fit(np.stack([c, 1 - c], axis=1), y)
        if coef is not None and coef[0] > 0 and -ATOL <= coef[1] < coef[0]:
            yield params | {"eta_min": _nice(max(coef[1], 0.0))}, _nice(coef[0])


def _one_cycle_candidates(y: np.ndarray) -> Iterator[tuple[dict, float]]:
    """OneCycleLR's LR is linear in (initial, max, min) once total_steps and pct_start are fixed."""
    k = len(y)
    totals = np.arange(max(k, 2), 4 * N_STEPS + 1, dtype=float)[:, None, None]
    pcts = np.round(np.arange(1, 100) / 100, 2)[None, :, None]
    t = np.arange(1, k + 1, dtype=float)[None, None, :]
    warm = pcts * totals - 1  # torch: phase 1 ends at step pct_start * total_steps - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = t <= warm
        p0, p1 = t / warm, (t - warm) / (totals - 1 - warm)
        for anneal in ("cos", "linear"):
            if anneal == "cos":
                w0, w1 = (np.cos(np.pi * p0) + 1) / 2, (np.cos(np.pi * p1) + 1) / 2
            else:
                w0, w1 = 1 - p0, 1 - p1
            basis = np.stack([np.where(rising, w0, 0), np.where(rising, 1 - w0, w1), np.where(rising, 0, 1 - w1)], -1)
            valid = ((warm > 0) & (warm < totals - 1))[..., 0] & np.isfinite(basis).all(axis=(-1, -2))
            basis = np.where(np.isfinite(basis), basis, 0)
            coef = np.einsum("abij,j->abi", np.linalg.pinv(basis), y)
            fitted = np.einsum("abij,abj->abi", basis, coef)
            close_enough = np.all(np.abs(fitted - y) <= RTOL * np.abs(y) + ATOL, axis=-1)
            # A one-cycle schedule rises from initial to max and ends below initial; a fit that needs a
            # div_factor above 1e4 is a curve that merely resembles a warm-up, not a OneCycleLR a student set.
            shaped = ((coef[..., 0] > 0) & (coef[..., 1] > coef[..., 0]) & (coef[..., 2] < coef[..., 0])
                      & (coef[..., 1] <= 1e4 * coef[..., 0]))
            good = valid & close_enough & shaped
            for a, b in zip(*np.nonzero(good)):
                initial, peak, low = coef[a, b]
                params = {"max_lr": _nice(peak), "total_steps": int(totals[a, 0, 0]), "pct_start": float(pcts[0, b, 0]),
                          "div_factor": _nice(peak / initial), "anneal_strategy": anneal,
                          "final_div_factor": _nice(initial / low) if low > 0 else 1e4}  # low is 0 if never reached
                yield params, BASE_LR


def _candidates(family: str, y: np.ndarray) -> Iterator[tuple[dict, float]]:
    if family == "StepLR":
        return _step_candidates(y)
    if family in ("CosineAnnealingLR", "CosineAnnealingWarmRestarts"):
        return _cosine_candidates(y, family)
    if family == "OneCycleLR":
        return _one_cycle_candidates(y)
    return iter(())


# --- ranking and confirming with torch ---------------------------------------------------


def _differs(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return not close(float(a), float(b))
    return a != b


def changed(fit: Fit, expected: SchedulerConfig, base_lr: float = BASE_LR) -> dict[str, object]:
    """The expected values of the parameters the fit changes, "lr" for the optimizer's starting LR."""
    defaults = DEFAULTS.get(expected.family, {})
    want = defaults | expected.params
    out = {key: want[key] for key in want if _differs(fit.config.params.get(key, want[key]), want[key])}
    if expected.family != "OneCycleLR" and _differs(fit.base_lr, base_lr):  # OneCycleLR sets its own LR
        out["lr"] = base_lr
    return out


def _tidy(family: str, params: dict, like: SchedulerConfig) -> SchedulerConfig:
    """The fitted parameters in the expected one's order, leaving out defaults it does not name."""
    defaults = DEFAULTS.get(family, {})
    keys = [k for k in like.params if k in params] if like.family == family else []
    keys += [k for k in params if k not in keys and (k not in defaults or _differs(params[k], defaults[k]))]
    return SchedulerConfig(family, {k: params[k] for k in keys})


def fit(family: str, lrs: Sequence[float], expected: SchedulerConfig, base_lr: float = BASE_LR) -> Fit | None:
    """Parameters of ``family`` that make torch produce ``lrs``, fewest changes from ``expected`` first."""
    y = np.asarray(lrs, dtype=float)
    if len(y) < 4 or (family == "StepLR" and np.any(y <= 0)):
        return None
    found = {}
    for params, base in _candidates(family, y):
        candidate = Fit(_tidy(family, params, expected), base)
        found.setdefault(candidate.config.name + f"@{base}", candidate)

    def cost(f: Fit) -> tuple[int, float]:
        if f.config.family != expected.family:
            return 99, 0.0  # another family: the first candidate that torch confirms
        diffs = changed(f, expected, base_lr)
        spread = 0.0  # how far the changed values are, so gamma=0.7 beats gamma=7 for gamma=0.5
        for key, want in diffs.items():
            got = f.base_lr if key == "lr" else f.config.params.get(key, want)
            if isinstance(want, (int, float)) and isinstance(got, (int, float)) and want > 0 and got > 0:
                spread += abs(math.log(got / want))
        return len(diffs), spread

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for candidate in sorted(found.values(), key=cost)[:MAX_VERIFIED]:
            try:
                if same(lrs, lr_history(candidate.config, len(lrs), candidate.base_lr)):
                    return candidate
            except (ValueError, ZeroDivisionError, OverflowError):  # torch refuses the candidate
                continue
    return None


