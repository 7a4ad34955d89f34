import copy

import pytest
import torch
from torch import optim

from reference.data import course_loaders, course_splits
from reference.models import SimpleMLP, TinyMLP, count_parameters, mlp_parameter_count
from reference.training import evaluate, train_model_extended


@pytest.fixture(scope="module")
def loaders():
    return course_loaders(course_splits())


def _train(loaders, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("n_epochs", 25)
    return train_model_extended(SimpleMLP(), loaders.train, loaders.val, lr=0.01, logging_interval=None, **kwargs)


def test_best_state_restored_even_when_patience_never_runs_out(loaders):
    history = _train(loaders, patience=100)
    assert not history.stopped_early and history.restored_best
    assert history.best_epoch == min(range(1, 26), key=lambda e: history.val_loss[e - 1])
    assert history.best_epoch < 25  # so restoring changes the model
    val_loss, _ = evaluate(history.model, loaders.val)
    assert val_loss == pytest.approx(history.val_loss[history.best_epoch - 1], rel=1e-6)


def test_course_behaviour_keeps_the_last_weights(loaders):
    history = _train(loaders, patience=100, restore_best=False)
    assert not history.restored_best
    val_loss, _ = evaluate(history.model, loaders.val)
    assert val_loss == pytest.approx(history.val_loss[-1], rel=1e-6)


def test_early_stop_restores_and_reports(loaders):
    history = _train(loaders, n_epochs=500, patience=20)
    assert history.stopped_early and history.restored_best
    assert history.epochs_run == history.best_epoch + 20


def test_unpacks_like_the_course_tuple(loaders):
    model, train_loss, train_acc, val_loss, val_acc, best_epoch, lr_history = _train(loaders, n_epochs=3)
    assert isinstance(model, SimpleMLP)
    assert len(train_loss) == len(train_acc) == len(val_loss) == len(val_acc) == len(lr_history) == 3
    assert 1 <= best_epoch <= 3


def test_indexes_like_the_course_tuple(loaders):
    history = _train(loaders, n_epochs=3)
    assert len(history) == 7 and history[0] is history.model and history[5] == history.best_epoch
    assert history[-1] is history.lr_history and history[1:3] == (history.train_loss, history.train_acc)


def test_without_validation_best_epoch_is_zero(loaders):
    torch.manual_seed(0)
    history = train_model_extended(SimpleMLP(), loaders.train, n_epochs=3, logging_interval=None, patience=2)
    assert history.best_epoch == 0 and history.val_loss == [] and not history.restored_best


@pytest.mark.parametrize("with_val", [True, False])
def test_reduce_on_plateau_gets_the_val_loss_or_else_the_train_loss(loaders, with_val):
    torch.manual_seed(0)
    model = SimpleMLP()
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, factor=0.5, threshold=0)
    history = train_model_extended(model, loaders.train, loaders.val if with_val else None, optimizer=optimizer,
                                   scheduler=scheduler, n_epochs=30, logging_interval=None)
    watched = history.val_loss if with_val else history.train_loss
    assert scheduler.best == min(watched)
    assert history.lr_history[0] == 0.05 and min(history.lr_history) < 0.05


def test_scheduler_steps_once_per_epoch_and_lr_is_recorded_after_it(loaders):
    torch.manual_seed(0)
    model = SimpleMLP()
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    history = train_model_extended(model, loaders.train, optimizer=optimizer, scheduler=scheduler, n_epochs=5,
                                   logging_interval=None)
    assert history.lr_history == [0.1, 0.05, 0.05, 0.025, 0.025]


def test_log_format_and_interval(loaders):
    lines = []
    torch.manual_seed(0)
    train_model_extended(SimpleMLP(), loaders.train, loaders.val, n_epochs=20, logging_interval=10, log=lines.append)
    assert [line.split("|")[0].strip() for line in lines] == ["Ep   1/20", "Ep  10/20", "Ep  20/20"]
    assert lines[0].endswith("%") and "V-L:" in lines[0]


def test_device_argument_moves_model_and_batches(loaders):
    torch.manual_seed(0)
    history = train_model_extended(SimpleMLP(), loaders.train, loaders.val, n_epochs=2, logging_interval=None,
                                   device="cpu")
    assert next(history.model.parameters()).device.type == "cpu"


def test_evaluate_restores_training_mode(loaders):
    model = SimpleMLP().train()
    evaluate(model, loaders.val)
    assert model.training


def test_parameter_counts():
    assert count_parameters(SimpleMLP()) == 483
    assert [count_parameters(TinyMLP(h)) for h in [(5,), (3,), (2, 2)]] == [33, 21, 21]
    assert all(mlp_parameter_count(h) == count_parameters(TinyMLP(h)) for h in [(1,), (4, 3), (2, 5)])
    with pytest.raises(ValueError, match="positive hidden widths"):
        TinyMLP((3, 0))


def test_deepcopy_matters_for_the_saved_state(loaders):
    # The unit's point about state_dict(): without deepcopy the "snapshot" follows the live weights.
    model = SimpleMLP()
    shallow, deep = model.state_dict(), copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model.net[0].weight.add_(1.0)
    assert torch.equal(shallow["net.0.weight"], model.net[0].weight)
    assert not torch.equal(deep["net.0.weight"], model.net[0].weight)
