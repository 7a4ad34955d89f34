"""Diagnose per-epoch loss or accuracy curves into a trend and advice a student can act on.

Pure numpy; every threshold is relative to the curve's own level, so summed losses (6.66), mean losses (0.3)
and accuracies in % or as fractions are judged alike. The numbers behind a verdict go in ``evidence``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

__all__ = ["Diagnosis", "Trend", "diagnose", "diagnose_accuracy"]

MIN_EPOCHS = 3  # two points give one step: no way to tell a trend from noise
END_SMOOTHING = 10  # half-window = n // 10: a 33-epoch curve is averaged over 7 epochs, a 5-epoch one not at all
TAIL_FRACTION = 1 / 3  # "the last part" of a curve: its final third (at least MIN_EPOCHS points)

# OSCILLATING: all three must hold, so noisy-but-converging mini-batch curves are not flagged.
OSC_MIN_FLIPS = 2  # at least two changes of direction (down-up-down), i.e. 4+ epochs
OSC_FLIP_RATE = 0.5  # direction changes in at least half the places they could happen
OSC_AMPLITUDE = 0.10  # typical epoch-to-epoch jump >= 10% of the curve's level (mini-batch noise is ~1-3%)
OSC_PATH_RATIO = 2.5  # distance travelled >= 2.5x the net change: the ups give back > 40% of the downs

# DIVERGING: the (smoothed) end is worse than the best point by a clear margin and most steps after it go up.
DIVERGE_RISE = 0.10  # worse by >= 10% of the level: well above 1-3% epoch noise
DIVERGE_REBOUND = 0.5  # and gives back >= half of what had been gained (an end above the start always does)
DIVERGE_UP_FRACTION = 0.5  # at least half the steps after the best point go the wrong way

# OVERFITTING: val worsens after its best epoch while train keeps improving.
OVERFIT_MIN_AFTER = 3  # best val epoch at least 3 epochs before the end: not a last-epoch dip
OVERFIT_RISE_OF_GAIN = 0.10  # val gives back >= 10% of its gain (noise on a converged val curve: ~3%)
OVERFIT_RISE_OF_LEVEL = 0.02  # and >= 2% of its level, for curves whose best epoch is the first one
OVERFIT_TRAIN_FALL = 0.02  # train improves by >= 2% of its level after the best val epoch

# PLATEAU vs CONVERGING.
PLATEAU_PROGRESS = 0.10  # under 10% overall improvement is "barely moved" (stuck, or LR far too small)
PLATEAU_TAIL = 0.05  # ...unless the last third still improves by >= 5%: then it has only started to learn
LEVEL_OFF = 0.10  # converged: the last third moved < 10% of the total improvement
STEADY = 0.75  # "steadily" in a message: at least 3 in 4 steps go the right way

ACC_FLOOR = 0.10  # accuracy jumps/drops are judged against >= 10 points, not against a tiny error rate
ACC_HIGH = 0.90  # a flat curve at >= 90% accuracy has levelled off high; say so instead of "stuck"


class Trend(str, Enum):
    CONVERGING = "converging"
    DIVERGING = "diverging"
    OSCILLATING = "oscillating"
    PLATEAU = "plateau"
    OVERFITTING = "overfitting"
    TOO_SHORT = "too short"


@dataclass(frozen=True)
class Diagnosis:
    trend: Trend
    summary: str  # one sentence in the student's terms: epochs and values
    advice: str  # what to try next
    onset_epoch: int | None = None  # 1-based: best val epoch (overfitting) or first bad epoch (diverging)
    evidence: dict = field(default_factory=dict)  # the numbers behind the verdict


ADVICE: dict[Trend, str] = {
    Trend.CONVERGING: "keep these settings; if it is still improving at the end, train a few more epochs "
                      "and watch the validation curve so you can stop before it turns",
    Trend.DIVERGING: "lower the learning rate (for example by 10x) or add a decaying scheduler such as StepLR",
    Trend.OSCILLATING: "the updates overshoot: lower the learning rate (for example by 3-10x), add a scheduler "
                       "that decays it, or use a larger batch size for less noisy steps",
    Trend.PLATEAU: "raise the learning rate (for example by 10x) or train for more epochs; if it still does not "
                   "move, check that optimizer.zero_grad(), loss.backward() and optimizer.step() are all called",
    Trend.OVERFITTING: "use early stopping with patience and restore the best weights (epoch {best}) from "
                       "state_dict, or reduce overfitting with more data, weight decay or a smaller model",
    Trend.TOO_SHORT: f"record one value per epoch and train for at least {MIN_EPOCHS} epochs "
                     "(10 or more make the trend much clearer)",
}
ADVICE_LEVELLED = ("more epochs will not help much; to go further try a decaying scheduler (StepLR, "
                   "CosineAnnealingLR) or a larger model, and keep an eye on the validation curve")
ADVICE_NONFINITE = ("lower the learning rate (for example by 10x), check the inputs are normalised and the "
                    "loss has no log(0) or division by zero; gradient clipping also helps")


def _num(x: float) -> str:
    """Short human form: 0.85, 6.66, 2, 1.5e+04."""
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}" if x else "0"


@dataclass(frozen=True)
class _Curve:
    """One curve in the student's terms, plus ``y``: the same values oriented so that lower is better."""

    name: str  # "training loss", "val accuracy"
    raw: np.ndarray
    y: np.ndarray
    lower_is_better: bool
    fmt: Callable[[float], str] = _num
    floor: float = 0.0  # smallest scale for jumps and rises (accuracy: 10 points)
    points: float = 0.0  # accuracy only: factor from values to percentage points (100 for fractions)
    diverges: str = "training diverges"  # what a student sees when this curve runs away

    def word(self, improving: bool, ing: bool = False) -> str:
        falls = improving == self.lower_is_better
        return ("falling" if falls else "rising") if ing else ("falls" if falls else "rises")

    def change(self, a: float, b: float) -> str:
        """Change from a to b in the curve's units, e.g. '-71%' or '+88 points'."""
        if self.points:  # accuracy: percentage points are what students read on the plot
            return f"{(b - a) * self.points:+.1f} points"
        return f"{(b - a) / abs(a) * 100:+.0f}%" if a else f"{b - a:+.3g}"


def _smooth(y: np.ndarray) -> np.ndarray:
    """Centred moving average, window 2*(n//10)+1, truncated at the ends; keeps short curves raw."""
    h, n = len(y) // END_SMOOTHING, len(y)
    return np.array([y[max(0, i - h): i + h + 1].mean() for i in range(n)])


def _slope_change(y: np.ndarray) -> float:
    """Change over ``y`` predicted by a least-squares line (robust to single noisy epochs)."""
    x = np.arange(len(y), dtype=float)
    return float(np.polyfit(x, y, 1)[0] * (len(y) - 1))


def _features(c: _Curve) -> dict:
    """The relative numbers every rule uses; all in units of the curve's level."""
    y, ys, n = c.y, _smooth(c.y), len(c.y)
    start, end = float(ys[0]), float(ys[-1])
    level = max(abs(start), abs(end)) or 1.0
    scale = max(level, c.floor)
    steps = np.diff(y)
    signs = np.sign(steps[steps != 0])
    flips = int(np.count_nonzero(signs[1:] != signs[:-1]))
    best = int(np.argmin(ys))
    after = steps[best:]
    tail = max(MIN_EPOCHS, math.ceil(n * TAIL_FRACTION))
    return {
        "n_epochs": n, "smoothing_window": 2 * (n // END_SMOOTHING) + 1,
        "start": start, "end": end, "level": level,
        "progress": (start - end) / level,  # > 0: improved, as a fraction of the level
        "improving_steps": float(np.mean(steps < 0)),
        "sign_changes": flips, "flip_rate": flips / max(len(signs) - 1, 1),
        "amplitude": float(np.median(np.abs(steps))) / scale,
        "path_ratio": min(float(np.abs(steps).sum()) / max(abs(start - end), 1e-12 * scale), 99.0),
        "best_epoch": best + 1,
        "rebound": (end - float(ys[best])) / scale, "gain_before_best": (start - float(ys[best])) / scale,
        "worsening_after_best": float(np.mean(after > 0)) if len(after) else 0.0,
        "tail_epochs": min(tail, n), "tail_change": _slope_change(ys[-tail:]) / level,
    }


def _rounded(d: dict) -> dict:
    return {k: round(float(v), 4) if isinstance(v, float) else v for k, v in d.items()}  # plain, JSON-ready


def _nonfinite(curves: list[_Curve]) -> Diagnosis | None:
    """nan/inf anywhere means the run blew up; report the earliest such epoch."""
    bad = [(int(np.flatnonzero(~np.isfinite(c.raw))[0]), c) for c in curves if not np.isfinite(c.raw).all()]
    if not bad:
        return None
    i, c = min(bad, key=lambda b: b[0])
    before = f" (last finite value {c.fmt(c.raw[i - 1])} at epoch {i})" if i else ""
    summary = (f"{c.name.capitalize()} becomes {c.raw[i]} at epoch {i + 1}{before}: "
               "training has diverged and the weights are no longer usable.")
    return Diagnosis(Trend.DIVERGING, summary, ADVICE_NONFINITE, i + 1,
                     {"n_epochs": len(c.raw), "curve": c.name, "first_nonfinite_epoch": i + 1})


def _shape(c: _Curve, f: dict) -> Diagnosis | None:
    """OSCILLATING or DIVERGING from one curve's shape, else None."""
    n, first, last = f["n_epochs"], c.fmt(c.raw[0]), c.fmt(c.raw[-1])
    if (f["sign_changes"] >= OSC_MIN_FLIPS and f["flip_rate"] >= OSC_FLIP_RATE
            and f["amplitude"] >= OSC_AMPLITUDE and f["path_ratio"] >= OSC_PATH_RATIO):
        summary = (f"{c.name.capitalize()} jumps up and down between {c.fmt(c.raw.min())} and "
                   f"{c.fmt(c.raw.max())}, changing direction {f['sign_changes']} times in {n} epochs, "
                   f"and ends at {last} after starting at {first}: the steps overshoot instead of settling.")
        return Diagnosis(Trend.OSCILLATING, summary, ADVICE[Trend.OSCILLATING], None, _rounded(f))
    if (f["rebound"] >= DIVERGE_RISE and f["rebound"] >= DIVERGE_REBOUND * f["gain_before_best"]
            and f["worsening_after_best"] >= DIVERGE_UP_FRACTION and f["best_epoch"] < n):
        best = f["best_epoch"]  # smoothed best; divergence starts on the epoch after it
        worse = c.word(improving=False)
        if best == 1:
            summary = (f"{c.name.capitalize()} {worse} from {first} at epoch 1 to {last} at epoch {n} "
                       f"({c.change(c.raw[0], c.raw[-1])}): {c.diverges} from epoch {best + 1}.")
        else:
            summary = (f"{c.name.capitalize()} reaches {c.fmt(c.raw[best - 1])} at epoch {best} but then "
                       f"{worse} to {last} by epoch {n}: {c.diverges} from epoch {best + 1}.")
        return Diagnosis(Trend.DIVERGING, summary, ADVICE[Trend.DIVERGING], best + 1, _rounded(f))
    return None


def _overfitting(train: _Curve, val: _Curve, ft: dict) -> Diagnosis | None:
    """Val worsens after its best epoch by a clear margin while train keeps improving."""
    v, n = val.y, len(val.y)
    m = int(np.argmin(v))  # raw best epoch: the one early stopping would keep
    after = n - 1 - m
    if after < OVERFIT_MIN_AFTER:
        return None
    tail = v[-min(after, max(MIN_EPOCHS, n // 5)):]
    rise = float(tail.mean() - v[m])
    gain = max(float(_smooth(v)[0] - v[m]), 0.0)
    ts = _smooth(train.y)
    train_fall = float(ts[m] - ts[-1]) / ft["level"]
    ev = {"val_best_epoch": m + 1, "val_best": float(val.raw[m]), "val_rise": rise,
          "val_rise_of_gain": rise / gain if gain else None, "val_rise_of_level": rise / (abs(v[m]) or 1.0),
          "train_fall_after_best": train_fall}
    if not (rise >= OVERFIT_RISE_OF_GAIN * gain and rise >= OVERFIT_RISE_OF_LEVEL * (abs(v[m]) or 1.0)
            and train_fall >= OVERFIT_TRAIN_FALL):
        return None
    best = "lowest" if val.lower_is_better else "highest"
    summary = (f"{val.name.capitalize()} is {best} at epoch {m + 1} ({val.fmt(val.raw[m])}) and "
               f"{val.word(improving=False)} to {val.fmt(val.raw[-1])} by epoch {n} while {train.name} keeps "
               f"{train.word(improving=True, ing=True)} (from {train.fmt(train.raw[m])} to "
               f"{train.fmt(train.raw[-1])}): the model starts to overfit after epoch {m + 1}; "
               f"early stopping with patience would keep the epoch-{m + 1} weights.")
    return Diagnosis(Trend.OVERFITTING, summary, ADVICE[Trend.OVERFITTING].format(best=m + 1), m + 1,
                     _rounded({**ft, **ev}))


def _progress(c: _Curve, f: dict, high: float | None = None) -> Diagnosis:
    """PLATEAU or CONVERGING for a curve that neither oscillates nor diverges."""
    n, first, last = f["n_epochs"], c.fmt(c.raw[0]), c.fmt(c.raw[-1])
    name, ev = c.name.capitalize(), _rounded(f)
    if f["progress"] < PLATEAU_PROGRESS and f["tail_change"] > -PLATEAU_TAIL:
        lo, hi = c.fmt(c.raw.min()), c.fmt(c.raw.max())
        if high is not None and float(np.mean(c.raw)) >= high:
            summary = (f"{name} is already high at epoch 1 and stays between {lo} and {hi} for {n} epochs: "
                       "it has levelled off, so more epochs of the same will not raise it.")
        else:
            summary = (f"{name} barely moves in {n} epochs (from {first} to {last}, never outside {lo}-{hi}): "
                       "the model is stuck or learning far too slowly.")
        return Diagnosis(Trend.PLATEAU, summary, ADVICE[Trend.PLATEAU], None, ev)
    how = "steadily " if f["improving_steps"] >= STEADY else ""
    moved = f"{c.word(improving=True)} {how}from {first} to {last} ({c.change(c.raw[0], c.raw[-1])})"
    if f["progress"] >= PLATEAU_PROGRESS and abs(f["tail_change"]) < LEVEL_OFF * f["progress"]:
        summary = (f"{name} {moved} and has levelled off over the last {f['tail_epochs']} epochs: "
                   "the model has converged.")
        return Diagnosis(Trend.CONVERGING, summary, ADVICE_LEVELLED, None, ev)
    state = "is converging" if f["progress"] >= PLATEAU_PROGRESS else "has only started to learn"
    summary = f"{name} {moved}: the model {state}."
    return Diagnosis(Trend.CONVERGING, summary, ADVICE[Trend.CONVERGING], None, ev)


def _too_short(n: int) -> Diagnosis:
    summary = f"Only {n} epoch{'s' * (n != 1)} recorded: too few to tell a trend from noise."
    return Diagnosis(Trend.TOO_SHORT, summary, ADVICE[Trend.TOO_SHORT], None, {"n_epochs": n})


def _array(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"expected {what} as a 1-D sequence of per-epoch values, got shape {a.shape}")
    return a


def diagnose(train_loss: Sequence[float], val_loss: Sequence[float] | None = None, *,
             higher_is_better: bool = False) -> Diagnosis:
    """Diagnose per-epoch training (and optional validation) curves; ``higher_is_better`` for scores.

    >>> d = diagnose([0.85, 0.60, 0.45, 0.30, 0.25])
    >>> d.trend.value, d.summary
    ('converging', 'Training loss falls steadily from 0.85 to 0.25 (-71%): the model is converging.')
    >>> diagnose([0.85, 1.10, 1.50, 1.80, 2.00]).trend.value
    'diverging'
    """
    sign = -1.0 if higher_is_better else 1.0
    noun = "metric" if higher_is_better else "loss"
    t = _array(train_loss, "train_loss")
    train = _Curve(f"training {noun}", t, sign * t, not higher_is_better)
    curves = [train]
    if val_loss is not None:
        v = _array(val_loss, "val_loss")
        if len(v) != len(t):
            raise ValueError(f"expected val_loss with one value per epoch ({len(t)}), got {len(v)}")
        curves.append(_Curve(f"val {noun}", v, sign * v, not higher_is_better))
    if (d := _nonfinite(curves)) is not None:
        return d
    if len(t) < MIN_EPOCHS:
        return _too_short(len(t))
    f = _features(train)
    if (d := _shape(train, f)) is not None:
        return d
    if len(curves) == 2 and (d := _overfitting(train, curves[1], f)) is not None:
        return d
    return _progress(train, f)


def diagnose_accuracy(val_acc: Sequence[float]) -> Diagnosis:
    """Diagnose a per-epoch accuracy curve (in % or as fractions): rising, stuck, oscillating or collapsing.

    Judged on the error rate (ceiling - accuracy), so 97% -> 99% counts as real progress (error 3% -> 1%).
    """
    a = _array(val_acc, "val_acc")
    finite = a[np.isfinite(a)]
    ceiling = 100.0 if finite.size and finite.max() > 1.0 else 1.0
    pct = 100.0 / ceiling
    acc = _Curve("val accuracy", a, ceiling - a, False, fmt=lambda x: f"{x * pct:.1f}%",
                 floor=ACC_FLOOR * ceiling, points=pct, diverges="accuracy collapses")
    if (d := _nonfinite([acc])) is not None:
        return d
    if len(a) < MIN_EPOCHS:
        return _too_short(len(a))
    f = _features(acc)
    return _shape(acc, f) or _progress(acc, f, high=ACC_HIGH * ceiling)
