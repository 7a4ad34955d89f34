"""How often a correct solution fails a hidden check, over instructor secrets: computed, bounded, stored.

A hidden check scores a model on a set drawn from a seed derived from the secret, so a correct
model's score is random. The checkerboard draws ``n`` i.i.d. points per cell; a fixed model errs
on each with its cell's rate ``p_c``, so its errors are a sum of nine Binomial(n, p_c). A large
Monte Carlo sample gives an upper confidence bound on every ``p_c``; the exact law of the errors
at those bounds bounds the chance of failing (more error per cell only makes failing likelier).
A check that scores several models fails when any fails: a union bound adds their chances.
``grader calibrate --write`` stores the figures in ``exercises/calibration.json`` for ``grader
exercises``, which stays torch-free; ``tests/test_calibration.py`` recomputes them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pathlib
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from grader.checks.data import DATA_KINDS, DataFactory
from grader.grading.calibration_solutions import SOLUTIONS, Solution, one_thread
from grader.specs.paths import exercises_root

if TYPE_CHECKING:
    from grader.assignments.catalog import Exercise
    from grader.checks import BoundCheck, CheckContext

TARGET = 1e-4  # the most a correct solution may fail a hidden check, over secrets
CONFIDENCE = 0.999  # of all Monte Carlo bounds of one check together
SAMPLES_PER_CELL = 200_000
SAMPLE_SEED = 2_024_777  # any fixed seed: the figures reproduce
STORE_NAME = "calibration.json"


class NotCalibrated(ValueError):
    """A check draws hidden data, but nothing here knows how to bound it."""


@dataclass(frozen=True)
class Band:
    """A check's pass rule on its measured accuracy, in percent, as the check kinds apply it."""

    min_accuracy: float = float("-inf")
    above: float = float("-inf")
    below: float = float("inf")

    def passes(self, correct: int, total: int) -> bool:
        acc = 100 * correct / total
        return acc + 1e-9 >= self.min_accuracy and acc > self.above and acc < self.below

    def describe(self) -> str:
        parts = [f"at least {self.min_accuracy:g}%" if self.min_accuracy > float("-inf") else "",
                 f"more than {self.above:g}%" if self.above > float("-inf") else "",
                 f"less than {self.below:g}%" if self.below < float("inf") else ""]
        return " and ".join(p for p in parts if p) or "any accuracy"


@dataclass(frozen=True)
class Scored:
    """What a check kind scores: its models, its pass band, and the parameters its figure depends on."""

    models: Callable[[CheckContext, dict], list[tuple[str, Any]]]  # (ctx, params) -> [(label, LoadedModel)]
    band: Callable[[dict], Band]
    keys: tuple[str, ...]


def _one_model(ctx: CheckContext, params: dict) -> list[tuple[str, Any]]:
    return [(params["model"], ctx.value(params["model"], "model"))]


def _each_model(ctx: CheckContext, params: dict) -> list[tuple[str, Any]]:
    from grader.checks.seeds import seed_models

    return [(f"{params['models']}[{s}]", m) for s, m in seed_models(ctx, params["models"], params["seeds"]).items()]


SCORED: dict[str, Scored] = {
    "accuracy": Scored(_one_model, lambda p: Band(p["min_accuracy"], p["above"], p["below"]),
                       ("model", "data", "min_accuracy", "above", "below")),
    "accuracy_each": Scored(_each_model, lambda p: Band(p["min_accuracy"]),
                            ("models", "seeds", "data", "min_accuracy")),
}


@dataclass(frozen=True)
class ModelFigure:
    """One model of one solution on a check: what it scores, and its chance of the wrong verdict."""

    solution: str
    model: str
    accuracy: float  # % on the Monte Carlo sample
    cell_errors: tuple[int, ...]  # its errors in each checkerboard cell, out of SAMPLES_PER_CELL
    estimate: float  # P(the wrong verdict: a correct model fails, a wrong one passes) at the estimated rates
    bound: float | None = None  # correct models: P(fail) at the rates' confidence bounds, an upper bound


@dataclass(frozen=True)
class Calibration:
    """A hidden check's false-fail probability for the reference solutions, and what wrong solutions score."""

    exercise: str
    check: str
    fingerprint: str  # of the parameters it was computed for; a spec edit makes it stale
    points: int  # the size of the hidden set
    rule: str
    false_fail: float  # upper bound, at CONFIDENCE: the worst correct solution, its models' chances added
    correct: tuple[ModelFigure, ...]
    wrong: tuple[ModelFigure, ...]

    @property
    def within_target(self) -> bool:
        return self.false_fail <= TARGET

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        figures = {k: tuple(ModelFigure(**{**m, "cell_errors": tuple(m["cell_errors"])}) for m in data[k])
                   for k in ("correct", "wrong")}
        return cls(**{**data, **figures})


# -- statistics -------------------------------------------------------------------------------------------------


def _kl(p: float, q: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(p) from Bernoulli(q)."""
    term = (lambda a, b: a * math.log(a / b) if a > 0 else 0.0)
    return term(p, q) + term(1 - p, 1 - q)


def upper_bound(k: int, n: int, delta: float) -> float:
    """Chernoff-KL upper confidence bound on a rate from k events in n trials, wrong with probability <= delta."""
    rate, budget = k / n, math.log(1 / delta) / n
    lo, hi = rate, 1.0
    if rate == 1.0:
        return 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _kl(rate, mid) <= budget else (lo, mid)
    return hi


def lower_bound(k: int, n: int, delta: float) -> float:
    return 1.0 - upper_bound(n - k, n, delta)


def error_law(n_per_cell: int, rates: list[float]) -> list[float]:
    """P(errors = e) for e = 0..9n: the sum of one Binomial(n_per_cell, p) per cell, computed exactly."""
    import numpy as np

    k = np.arange(n_per_cell + 1)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n_per_cell + 1)))])
    law = np.array([1.0])
    for p in rates:
        if p <= 0.0 or p >= 1.0:
            pmf = (k == (n_per_cell if p >= 1.0 else 0)).astype(float)
        else:
            pmf = np.exp(log_fact[-1] - log_fact[k] - log_fact[n_per_cell - k] + k * math.log(p)
                         + (n_per_cell - k) * math.log1p(-p))
        law = np.convolve(law, pmf)
    return law.tolist()


def fail_chance(n_per_cell: int, band: Band, high: list[float], low: list[float]) -> float:
    """Bound on P(the check fails) for a model whose cell error rates lie between ``low`` and ``high``.

    The passing correct counts form one interval; failing below it is likeliest at the high rates,
    failing above it at the low ones.
    """
    total = n_per_cell * len(high)
    passing = [c for c in range(total + 1) if band.passes(c, total)]
    if not passing:
        return 1.0
    too_many = sum(error_law(n_per_cell, high)[total - passing[0] + 1:])  # correct < passing[0]
    too_few = sum(error_law(n_per_cell, low)[:total - passing[-1]])  # correct > passing[-1]
    return min(1.0, too_many + too_few)


def pass_chance(n_per_cell: int, band: Band, rates: list[float]) -> float:
    """P(the check passes) for a model with these cell error rates."""
    total, law = n_per_cell * len(rates), error_law(n_per_cell, rates)
    return min(1.0, sum(law[e] for e in range(total + 1) if band.passes(total - e, total)))


# -- measuring the reference solutions ---------------------------------------------------------------------------


def hidden_data(params: Any) -> list[dict]:
    """The data descriptions in a check's parameters that draw from the instructor secret."""
    if isinstance(params, dict):
        found = [params] if params.get("seed") == "hidden" and "kind" in params else []
        return found + [d for v in params.values() for d in hidden_data(v)]
    return [d for v in params for d in hidden_data(v)] if isinstance(params, list) else []


def fingerprint(check: BoundCheck) -> str:
    """What a check's figure depends on in its spec: its kind and the parameters that set data and threshold."""
    scored = SCORED.get(check.kind.name)
    keys = scored.keys if scored else sorted(check.params)
    relevant = {"kind": check.kind.name, **{k: check.params.get(k) for k in keys}}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def loaded_context(exercise: Exercise, values: dict, folder: pathlib.Path, factory: DataFactory) -> CheckContext:
    """``values`` exported as the kernel's export cell does and read back with the grader's loaders."""
    from grader.checks import CheckContext
    from grader.kernel.kernel_export import export_values
    from grader.loading.exports import load_exports

    requests = [{"name": e.name, "kind": e.kind, "input_shape": list(e.input_shape or [])}
                for e in exercise.spec.exports if e.name in values]
    export_values(values, requests, str(folder))
    return CheckContext(exercise.spec, load_exports(folder), (), factory)


_CONTEXTS: dict[tuple[pathlib.Path, str], CheckContext] = {}


def solution_context(exercise: Exercise, solution: Solution) -> CheckContext:
    """A solution's values as the grader loads them, exported once per process (capturing a model is slow)."""
    key = (exercise.spec.path, solution.name)
    if key not in _CONTEXTS:
        with tempfile.TemporaryDirectory(prefix="grader-calibration-") as folder:
            _CONTEXTS[key] = loaded_context(exercise, solution.values(), pathlib.Path(folder), DataFactory())
    return _CONTEXTS[key]


def _filled(desc: dict) -> dict:
    """A data description with its kind's defaults filled in, as the data factory reads it."""
    if desc.get("kind") != "checkerboard":
        raise NotCalibrated(f"hidden {desc.get('kind')} data: only checkerboard sets are calibrated")
    return {"kind": desc["kind"], **{k: desc.get(k, f.default) for k, f in DATA_KINDS[desc["kind"]].fields.items()}}


@functools.cache
def _sample(noise: float) -> Any:
    return DataFactory().make({"kind": "checkerboard", "n_per_cell": SAMPLES_PER_CELL, "noise": noise,
                               "seed": SAMPLE_SEED})


def cell_errors(model: Any, desc: dict) -> list[int]:
    """The model's errors per cell on SAMPLES_PER_CELL points per cell drawn as ``desc`` draws them."""
    data = _sample(float(_filled(desc)["noise"]))
    wrong = model.predict(data.X.float()) != data.Y
    return [int(w) for w in wrong.view(-1, SAMPLES_PER_CELL).sum(dim=1)]


@dataclass(frozen=True)
class _Measured:
    solution: Solution
    model: str
    errors: list[int]  # per cell, out of SAMPLES_PER_CELL


_ERRORS: dict[tuple, list[int]] = {}


def _measure(exercise: Exercise, check: BoundCheck, solution: Solution, desc: dict) -> list[_Measured]:
    """Each model's cell errors, once per process for a model and a noise level."""
    models = SCORED[check.kind.name].models(solution_context(exercise, solution), check.params)
    measured = []
    for label, model in models:
        key = (exercise.spec.path, solution.name, label, float(_filled(desc)["noise"]))
        if key not in _ERRORS:
            _ERRORS[key] = cell_errors(model, desc)
        measured.append(_Measured(solution, label, _ERRORS[key]))
    return measured


def calibrate_check(exercise: Exercise, check: BoundCheck) -> Calibration:
    """The false-fail bound of one check with hidden data, over the exercise's reference solutions."""
    scored, descs = SCORED.get(check.kind.name), hidden_data(check.params)
    missing = [f"{check.kind.name} checks are not calibrated (known: {', '.join(SCORED)})" if scored is None else "",
               f"it draws {len(descs)} hidden data sets, not one" if len(descs) != 1 else "",
               "no reference solutions are listed for it" if exercise.id not in SOLUTIONS else ""]
    if any(missing):
        raise NotCalibrated(f"{exercise.id}/{check.spec.id}: {'; '.join(m for m in missing if m)} "
                            "(grader/grading/calibration.py)")
    desc = _filled(descs[0])
    n_per_cell, band = int(desc["n_per_cell"]), scored.band(check.params)
    measured = [m for s in SOLUTIONS[exercise.id] for m in _measure(exercise, check, s, desc)]
    # Bonferroni: an upper and a lower bound per cell of every correct model hold together at CONFIDENCE.
    delta = (1 - CONFIDENCE) / sum(2 * len(m.errors) for m in measured if m.solution.correct)
    figures = [_figure(m, n_per_cell, band, delta) for m in measured]
    correct = tuple(f for f, m in zip(figures, measured) if m.solution.correct)
    per_solution: dict[str, float] = {}
    for f in correct:  # union bound over the models one check scores
        per_solution[f.solution] = min(1.0, per_solution.get(f.solution, 0.0) + f.bound)
    return Calibration(exercise.id, check.spec.id, fingerprint(check), n_per_cell * len(measured[0].errors),
                       band.describe(), max(per_solution.values(), default=1.0), correct,
                       tuple(f for f, m in zip(figures, measured) if not m.solution.correct))


def _figure(m: _Measured, n_per_cell: int, band: Band, delta: float) -> ModelFigure:
    rates = [e / SAMPLES_PER_CELL for e in m.errors]
    accuracy = round(100 * (1 - sum(rates) / len(rates)), 3)
    if not m.solution.correct:
        return ModelFigure(m.solution.name, m.model, accuracy, tuple(m.errors), pass_chance(n_per_cell, band, rates))
    high = [upper_bound(e, SAMPLES_PER_CELL, delta) for e in m.errors]
    low = [lower_bound(e, SAMPLES_PER_CELL, delta) for e in m.errors]
    return ModelFigure(m.solution.name, m.model, accuracy, tuple(m.errors), fail_chance(n_per_cell, band, rates, rates),
                       fail_chance(n_per_cell, band, high, low))


def calibrated_checks(exercise: Exercise) -> list[BoundCheck]:
    """The checks whose data depend on the instructor secret."""
    return [c for c in exercise.checks if hidden_data(c.params)]


def calibrate(exercises: list[Exercise]) -> list[Calibration]:
    with one_thread():
        return [calibrate_check(e, c) for e in exercises for c in calibrated_checks(e)]


# -- simulation over secrets, with the real check ----------------------------------------------------------------


def simulate(exercise: Exercise, check: BoundCheck, solution: Solution, secrets: int) -> int:
    """How many of ``secrets`` instructor secrets fail ``solution`` on ``check``, graded by the check kind itself."""
    import dataclasses

    from grader.grading.secrets import hidden_seeds

    ctx, failures = solution_context(exercise, solution), 0
    with one_thread():
        for i in range(secrets):
            factory = DataFactory(hidden_seed=hidden_seeds(f"simulated secret {i}".encode(), exercise.id))
            failures += not check.evaluate(dataclasses.replace(ctx, data=factory, check_id=check.spec.id)).passed
    return failures


# -- the stored figures, read by `grader exercises` (no torch) ---------------------------------------------------


def store_path(root: pathlib.Path | None = None) -> pathlib.Path:
    return (root or exercises_root()) / STORE_NAME


def write_store(calibrations: list[Calibration], root: pathlib.Path | None = None) -> pathlib.Path:
    path = store_path(root)
    payload = {"method": {"target": TARGET, "confidence": CONFIDENCE, "samples_per_cell": SAMPLES_PER_CELL,
                          "sample_seed": SAMPLE_SEED, "recompute": "grader calibrate --write"},
               "checks": [c.to_json() for c in calibrations]}
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


@functools.lru_cache(maxsize=4)
def _read_store(path: pathlib.Path, mtime: float) -> dict[tuple[str, str], Calibration]:
    checks = json.loads(path.read_text()).get("checks", [])
    return {(c["exercise"], c["check"]): Calibration.from_json(c) for c in checks}


def read_store(root: pathlib.Path | None = None) -> dict[tuple[str, str], Calibration]:
    """The stored figures by (exercise, check); empty when none were written."""
    path = store_path(root)
    return _read_store(path, path.stat().st_mtime) if path.is_file() else {}


def figure_line(exercise: Exercise, check: BoundCheck, stored: dict[tuple[str, str], Calibration]) -> str:
    """One line for the catalogue: the stored false-fail bound of a check with hidden data, or why there is none."""
    if not hidden_data(check.params):
        return ""
    found = stored.get((exercise.id, check.spec.id))
    if found is None:
        return "false-fail rate not calibrated: run `grader calibrate --write`"
    if found.fingerprint != fingerprint(check):
        return "false-fail rate stale (the spec changed): run `grader calibrate --write`"
    verdict = "target" if found.within_target else "ABOVE the target"
    return (f"false-fail p <= {found.false_fail:.1e} over secrets, {verdict} {TARGET:g} "
            f"({found.points} points, {found.rule})")
