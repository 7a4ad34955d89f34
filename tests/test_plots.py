import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from reference import plots
from reference.data import generate_checkerboard_dataset
from reference.models import SimpleMLP
from reference.schedules import course_lr_histories


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", fail)


def test_every_plot_returns_a_figure_and_saves_headless(tmp_path):
    data = generate_checkerboard_dataset(10, 0.2, 0)
    model = SimpleMLP()
    figures = {
        "scatter": plots.plot_decision_boundary(data),
        "boundary": plots.plot_decision_boundary(data, model, title="t"),
        "row": plots.plot_boundary_row([(data, model, "a"), (data, None, "b")]),
        "curves": plots.plot_loss_and_accuracy([3, 2, 1], [3, 2.5, 2.6], [40, 50, 60], [40, 45, 44], best_epoch=2),
        "lr": plots.plot_boundary_and_loss_lr(data, model, [3, 2, 1], [0.1, 0.05, 0.025]),
        "grid": plots.plot_scheduler_grid(course_lr_histories()),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure)
        path = plots.save_figure(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(figures["grid"].axes) == 4
    assert plt.get_fignums() == []  # save_figure closed them all


def test_boundary_plot_reports_eval_accuracy_and_keeps_training_mode():
    data = generate_checkerboard_dataset(10, 0.2, 0)
    model = SimpleMLP().train()
    fig = plots.plot_decision_boundary(data, model)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("Acc: ") and t.endswith("%") for t in texts)
    assert model.training


def test_log_twin_axis_for_the_lr():
    data = generate_checkerboard_dataset(5, 0.2, 0)
    fig = plots.plot_boundary_and_loss_lr(data, SimpleMLP(), [3, 2], [0.1, 0.07])
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "linear", "log"]


def test_curves_take_numpy_arrays_and_an_empty_validation():
    import numpy as np

    fig = plots.plot_loss_and_accuracy(np.array([3.0, 2.0]), np.array([3.1, 2.4]), np.array([40.0, 50.0]),
                                       np.array([41.0, 45.0]), best_epoch=np.int64(2))
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]  # train, val, the best epoch's line
    fig = plots.plot_loss_and_accuracy([3.0, 2.0], [], [40.0, 50.0], [])
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    plt.close("all")
