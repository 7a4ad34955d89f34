"""Reference solutions of the unit's three exercises, and two experiments beyond the course."""

from __future__ import annotations

import statistics
import time

import matplotlib.pyplot as plt
import torch
from torch.utils.data import DataLoader
from torchinfo import summary

from reference import published
from reference.data import course_loaders, course_splits
from reference.models import SimpleMLP, TinyMLP, count_parameters
from reference.plots import plot_boundary_row, plot_decision_boundary, plot_scheduler_grid
from reference.results import Comparison, ExperimentResult, compare_lines, tee
from reference.schedules import COURSE_CONFIGS, closed_form_history, course_lr_histories
from reference.extras.tiny_search import SMALLEST_KNOWN, exercise1_data, fit_recipe, search_smallest_mlp, train_accuracy
from reference.training import Logger, evaluate, exercise_log_line, train_model_extended
from reference.extras.vectorised import ShuffleStream, StackedMLP, train_stacked

COURSE_SEEDS = (0, 3, 18)


def tiny_model(log: Logger | None = print, device=None) -> ExperimentResult:
    """Exercise 1: the course's 33-parameter 2-5-3 MLP, then the smallest model our search found."""
    result = ExperimentResult("tiny-model", "Exercise 1: a tiny MLP that fits (20, 0.1, seed 0)")
    emit = result.emitter(log)
    dataset = exercise1_data()
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=16, shuffle=True)
    model = TinyMLP((5,))
    # torchinfo runs a forward pass on random input, consuming RNG: the course's numbers depend on it.
    emit(str(summary(model, input_size=(16, 2), verbose=0, col_width=20)))
    emit(f"Trainable parameters: {count_parameters(model)}")
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    lines: list[str] = []
    train_model_extended(model, loader, optimizer=optimizer, n_epochs=50, logging_interval=10, device=device,
                         log=tee(lines.append, emit), log_line=exercise_log_line)
    result.comparisons += compare_lines("log", published.TINY_MODEL, lines)
    result.comparisons.append(Comparison("parameters", str(published.TINY_MODEL_PARAMS), str(count_parameters(model))))

    smallest = fit_recipe(SMALLEST_KNOWN, dataset)
    emit(f"Smallest found: 2-{'-'.join(map(str, SMALLEST_KNOWN.hidden))}-3 with {count_parameters(smallest)} parameters, "
         f"train accuracy {train_accuracy(smallest, dataset):.2f}% (seed {SMALLEST_KNOWN.seed}, full-batch Adam "
         f"{SMALLEST_KNOWN.lr}, {SMALLEST_KNOWN.epochs} steps)")
    for name, m in (("course 2-5-3", model), ("smallest 2-3-3", smallest)):
        result.table.append({"model": name, "parameters": count_parameters(m),
                             "eval train acc (%)": round(train_accuracy(m, dataset), 2)})
    result.figures["decision_boundaries"] = plot_boundary_row(
        [(dataset, model, "Course: 33 parameters"), (dataset, smallest, f"Ours: {count_parameters(smallest)} parameters")])
    return result


def seed_line(seed: int, history, test_loss: float, test_acc: float) -> str:
    """Exercise 2's summary line; TL/TA/VL/VA are the best epoch's running figures."""
    b = history.best_epoch
    return (f"Seed {seed}: Best Epoch={b}, TL={history.train_loss[b - 1]:.4f}, TA={history.train_acc[b - 1]:.2f}%, "
            f"VL={history.val_loss[b - 1]:.4f}, VA={history.val_acc[b - 1]:.2f}%, "
            f"TestL={test_loss:.4f}, TestA={test_acc:.2f}%")


def random_seeds(log: Logger | None = print, device=None, seeds=COURSE_SEEDS) -> ExperimentResult:
    """Exercise 2: SimpleMLP from seeds 0, 3 and 18 with early stopping on the course splits."""
    result = ExperimentResult("random-seeds", "Exercise 2: the effect of the random seed")
    emit = result.emitter(log)
    splits = course_splits()
    loaders = course_loaders(splits)
    panels = []
    for seed in seeds:
        torch.manual_seed(seed)
        history = train_model_extended(SimpleMLP(), loaders.train, loaders.val, lr=0.01, n_epochs=500,
                                       logging_interval=None, patience=20, device=device)
        test_loss, test_acc = evaluate(history.model, loaders.test, device=device)
        line = seed_line(seed, history, test_loss, test_acc)
        emit(line)
        if seed in published.RANDOM_SEEDS:
            result.comparisons.append(Comparison(f"seed {seed}", published.RANDOM_SEEDS[seed], line))
        b = history.best_epoch
        result.table.append({
            "seed": seed, "best epoch": b, "stopped at": history.epochs_run,
            "running train acc (%)": round(history.train_acc[b - 1], 2),
            "eval train acc (%)": round(evaluate(history.model, loaders.train, device=device)[1], 2),
            "val acc (%)": round(history.val_acc[b - 1], 2), "test acc (%)": round(test_acc, 2),
        })
        panels += [(splits.train, history.model, f"seed {seed}: train"), (splits.test, history.model, f"seed {seed}: test")]
    tests = [row["test acc (%)"] for row in result.table]
    result.notes += [
        "TA/VA in the log lines are the best epoch's figures: training accuracy counted on the fly during the "
        "epoch (the course's definition), validation accuracy in eval mode. 'eval train acc' re-evaluates the "
        "restored model in eval mode, which is what the grader measures.",
        f"Test accuracy across seeds: {min(tests):.2f}% to {max(tests):.2f}% (spread {max(tests) - min(tests):.2f} points).",
    ]
    result.figures["decision_boundaries"] = plot_boundary_row(panels, size=2.0)
    return result


def schedulers(log: Logger | None = print, device=None) -> ExperimentResult:
    """Exercise 3: LR histories of the twelve configurations, checked against their closed forms."""
    result = ExperimentResult("schedulers", "Exercise 3: twelve LR schedules over 30 steps")
    emit = result.emitter(log)
    histories = course_lr_histories()
    for config in COURSE_CONFIGS:
        lrs, closed = histories[config.name], closed_form_history(config)
        worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(lrs, closed))
        emit(f"{config.name:<62} first {lrs[0]:.5f} | min {min(lrs):.5f} | last {lrs[-1]:.6f}")
        result.table.append({"scheduler": config.name, "lr after step 1": lrs[0], "min": min(lrs),
                             "after step 30": lrs[-1], "max rel. error vs closed form": f"{worst:.1e}"})
    result.data = {"lr_histories": histories}
    result.figures["scheduler_grid"] = plot_scheduler_grid(histories)
    return result


def tiny_search(log: Logger | None = print, device=None) -> ExperimentResult:
    """Search for the smallest MLP with 100% training accuracy on Exercise 1's data."""
    torch.set_num_threads(1)  # the goal is stated for one core
    result = ExperimentResult("tiny-search", "Beyond the course: the smallest MLP that fits Exercise 1")
    emit = result.emitter(log)
    search = search_smallest_mlp(log=emit)
    result.data = search.to_json()
    result.table = [{"architecture": "-".join(map(str, (2, *a.hidden, 3))), "parameters": a.n_params, "lr": a.lr,
                     "restarts": a.restarts, "epochs": a.epochs_run, "fitted seeds": len(a.fitted_seeds),
                     "seconds": round(a.seconds, 1)} for a in search.attempts]
    if search.best is None:
        emit("No candidate reached 100% training accuracy.")
        return result
    best = search.best
    emit(f"Smallest found: {best.n_params} parameters (hidden {best.hidden}, seed {best.seed}, lr {best.lr}, "
         f"{best.epochs} full-batch steps) in {search.seconds:.1f}s; sizes tried: {search.sizes_tried()}")
    model = fit_recipe(best)
    result.figures["smallest"] = plot_decision_boundary(exercise1_data(), model,
                                                        title=f"{best.n_params} parameters, 100% train acc")
    return result


def seed_variance(log: Logger | None = print, device=None, n_seeds: int = 16) -> ExperimentResult:
    """Exercise 2 for many seeds at once with stacked weights, checked against the sequential loop."""
    torch.set_num_threads(1)
    result = ExperimentResult("seed-variance", f"Beyond the course: Exercise 2 for {n_seeds} seeds at once")
    emit = result.emitter(log)
    splits = course_splits()
    seeds = list(range(n_seeds))
    start = time.perf_counter()
    models, streams = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(SimpleMLP())
        streams.append(ShuffleStream(len(splits.train), other_loaders_per_epoch=1))
    run = train_stacked(StackedMLP(models), splits.train, streams, splits.val, lr=0.01, n_epochs=500, patience=20)
    seconds = time.perf_counter() - start
    loaders = course_loaders(splits)
    for seed, history in zip(seeds, run.histories):
        test_loss, test_acc = evaluate(run.model.to_module(seed), loaders.test)
        result.table.append({"seed": seed, "best epoch": history.best_epoch, "stopped at": len(history.train_loss),
                             "val acc (%)": round(history.val_acc[history.best_epoch - 1], 2),
                             "test acc (%)": round(test_acc, 2)})
    tests = [row["test acc (%)"] for row in result.table]
    emit(f"{n_seeds} seeds trained together in {seconds:.2f}s")
    emit(f"Test accuracy: mean {statistics.mean(tests):.2f}%, sd {statistics.stdev(tests):.2f}, "
         f"min {min(tests):.2f}%, max {max(tests):.2f}%")
    for seed in COURSE_SEEDS:
        if seed < n_seeds:
            row = result.table[seed]
            emit(f"seed {seed}: best epoch {row['best epoch']}, test acc {row['test acc (%)']:.2f}%")
    fig, ax = plt.subplots(figsize=(4.5, 2.6), layout="constrained")
    ax.hist(tests, bins=10, color="tab:blue", edgecolor="white")
    ax.set_xlabel("test accuracy (%)", fontsize=8)
    ax.set_ylabel("seeds", fontsize=8)
    ax.set_title(f"Exercise 2 set-up, {n_seeds} seeds", fontsize=9)
    result.figures["test_accuracy_hist"] = fig
    result.data = {"seconds": seconds, "seeds": seeds}
    return result
