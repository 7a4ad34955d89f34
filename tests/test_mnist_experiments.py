"""The MNIST experiments on a small real-MNIST subset for one epoch; full runs belong to the CLI."""

import json

import pytest
import torch
from mnist_support import unpacked_root
from torch import nn
from torch.utils.data import DataLoader, Subset

from reference import cli
from reference.mnist import data as mnist
from reference.mnist.data import MnistSplits, load_mnist, load_mnist_tensors
from reference.mnist.experiments import (
    ADAM_ROWS,
    SGD_ROWS,
    Row,
    adam_report,
    lr_sweep_report,
    sgd_report,
)
from reference.mnist.models import MnistMLP
from reference.mnist.training import MnistRecipe, train_recipe
from reference.results import write_result

MNIST_NAMES = {"mnist-sgd", "mnist-adam", "lr-sweep"}


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    return unpacked_root(tmp_path_factory)


@pytest.fixture(scope="session")
def small(root) -> MnistSplits:
    train, val = load_mnist_tensors(root, train=True), load_mnist_tensors(root, train=False)
    return MnistSplits(train.subset(3000), val.subset(1000))


def _short(rows, epochs=1):
    return [Row(r.label, r.recipe.with_(epochs=epochs), r.chosen) for r in rows]


def test_recipes_change_only_what_each_exercise_allows():
    for row in SGD_ROWS:  # seed 000: LR value and scheduler only
        assert (row.recipe.optimizer, row.recipe.epochs, row.recipe.batch_size) == ("sgd", 15, 64)
    for row in ADAM_ROWS:  # seed 001: LR schedule and epochs only
        assert (row.recipe.optimizer, row.recipe.batch_size) == ("adam", 64)
    assert "ReduceLROnPlateau(patience=2)" in ADAM_ROWS[2].recipe.describe()
    assert SGD_ROWS[0].recipe.describe() == "SGD lr=0.05, StepLR(step_size=5, gamma=0.5), 15 epochs, batch 64"


def test_recipe_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected optimizer"):
        MnistRecipe("rmsprop", 0.1, 1)
    with pytest.raises(ValueError, match="torch.optim.lr_scheduler"):
        MnistRecipe("sgd", 0.1, 1, "NoSuchLR")


def test_fast_path_training_follows_the_seed_style_dataloader_loop(root, small):
    recipe = MnistRecipe("sgd", 0.05, 2, "StepLR", (("step_size", 1), ("gamma", 0.5)))
    data = MnistSplits(small.train.subset(640), small.val.subset(200))
    run = train_recipe(MnistMLP, data, recipe, eval_train_each_epoch=True)

    torch.manual_seed(recipe.seed)  # the seeds' order: loaders, model, optimizer, then epochs
    train_loader = DataLoader(Subset(load_mnist(root, True), range(640)), batch_size=64, shuffle=True)
    val_loader = DataLoader(Subset(load_mnist(root, False), range(200)), batch_size=1000)
    model = MnistMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(2):
        for x, y in train_loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        for _ in val_loader:
            pass
        scheduler.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(run.model.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_per_epoch_train_evaluation_does_not_change_the_run(small):
    recipe = MnistRecipe("adam", 1e-3, 2)
    plain, evaluated = (train_recipe(MnistMLP, small, recipe, eval_train_each_epoch=e) for e in (False, True))
    assert [s.val_acc for s in plain.epochs] == [s.val_acc for s in evaluated.epochs]
    assert plain.eval_train_acc == evaluated.eval_train_acc
    assert evaluated.final.eval_train_acc == evaluated.eval_train_acc


def test_sgd_report_tabulates_each_row_and_writes_its_figure(small, tmp_path):
    lines = []
    result = sgd_report(small, log=lines.append, rows=_short(SGD_ROWS), check_seeds=(1,))
    # three rows, plus one rerun of each chosen recipe with seed 1
    assert [(r["set-up"], r["seed"]) for r in result.table] == [
        ("seed 000's set-up", 0), ("chosen: StepLR(1, 0.5)", 0), ("chosen: StepLR(1, 0.5)", 1),
        ("bonus: cosine", 0), ("bonus: cosine", 1)]
    assert all(0 <= r["eval train acc (%)"] <= 100 and r["meets task"] in ("yes", "no") for r in result.table)
    assert result.comparisons[0].published == "train 93% / val 87%"
    assert any("Epoch  1/1 | LR 0.05" in line for line in lines)
    folder = write_result(result, tmp_path)
    assert (folder / "curves.png").stat().st_size > 10_000
    assert json.loads((folder / "results.json").read_text())["data"]["recipes"]["bonus: cosine"]["lr"] == 0.01


def test_adam_report_says_whether_the_plateau_scheduler_acted(small):
    # patience=2 needs three epochs without improvement, so two epochs never lower the LR
    result = adam_report(small, log=None, rows=_short(ADAM_ROWS, epochs=2), check_seeds=())
    assert len(result.table) == len(ADAM_ROWS)
    plateau_notes = [n for n in result.notes if "ReduceLROnPlateau" in n]
    assert len(plateau_notes) == 2 and all("never lowered the LR" in n for n in plateau_notes)
    assert "curves" in result.figures


def test_lr_sweep_report_has_per_epoch_curves_and_checks_the_seeds_claims(small):
    data = MnistSplits(small.train.subset(1000), small.val.subset(500))
    result = lr_sweep_report(data, log=None, lrs=(1e-4, 1e-3), epochs=2)
    assert [row["lr"] for row in result.table] == [1e-4, 1e-3]
    assert all(len(row["val acc by epoch (%)"].split(" / ")) == 2 for row in result.table)
    assert len(result.data["curves"]["0.001"]["train_loss"]) == 2
    assert result.comparisons[0].what == "LR 0.001 beats 0.0001 after the last epoch"
    assert len(result.figures["curves"].axes) == 2


def test_cli_registers_mnist_but_keeps_it_out_of_the_demo():
    assert MNIST_NAMES <= set(cli.EXPERIMENTS)
    assert set(cli.DEMO) == set(cli.EXPERIMENTS) - MNIST_NAMES


def test_cli_passes_data_root_only_to_experiments_that_take_it(tmp_path):
    seen = {}

    def with_root(log, device, data_root=None):
        seen["with"] = data_root

    def without_root(log, device):
        seen["without"] = device

    cli._call(with_root, "cpu", tmp_path)
    cli._call(without_root, "cpu", tmp_path)
    assert seen == {"with": tmp_path, "without": "cpu"}


def test_cli_without_mnist_exits_1_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_BUNDLE", str(tmp_path / "none"))
    monkeypatch.setattr(mnist, "DEFAULT_BUNDLE", tmp_path / "none-either")
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    code = cli.main(["mnist-sgd", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: MNIST not found") and "--data-root" in err
    assert str(tmp_path / "data" / "MNIST" / "raw") in err
