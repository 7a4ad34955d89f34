"""The model boundary: what the kernel exports is rebuilt from allowlisted ops only, loaded without pickle."""

import json
import pickle

import pytest
import torch
from torch import nn
from torchinfo import summary

from grading_support import round_trip
from grader.kernel.kernel_export import export_values
from grader.loading.exports import load_exports
from grader.loading.model_graph import ModelLoadError, load_model
from grader.loading.values import ExportProblem
from reference.models import SimpleMLP


class CNN(nn.Module):  # the seed-004 CNN layout
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.fc(self.conv(x))


class FixedBatch(nn.Module):  # reshapes to a fixed batch of 2, so export cannot keep the batch free
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.fc(x.view(2, 4)))


def export_and_load(tmp_path, **values):
    """Each value is (object, input shape)."""
    return round_trip(tmp_path, {k: v[0] for k, v in values.items()},
                      [{"name": k, "input_shape": v[1]} for k, v in values.items()])


@pytest.mark.parametrize("model, shape", [(SimpleMLP(), [2]), (CNN(), [1, 28, 28]), (FixedBatch(), [4])])
def test_round_trip_matches_the_original_model(tmp_path, model, shape):
    model.eval()
    loaded = export_and_load(tmp_path, m=(model, shape)).values["m"]
    x = torch.randn(5, *shape)
    if isinstance(model, FixedBatch):
        expected = torch.cat([model(x[:2]), model(x[2:4]), model(torch.cat([x[4:], torch.zeros(1, 4)]))[:1]])
    else:
        expected = model(x)
    assert torch.allclose(loaded(x), expected, atol=1e-5)
    assert loaded.n_params == sum(p.numel() for p in model.parameters())
    assert loaded.param_shapes() == {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert loaded.class_name == type(model).__name__


class Styled(nn.Module):
    """forward() written the ways students write it: casts, in-place ops, functional calls, constants."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 16), nn.Linear(16, 10)

    def forward(self, x):
        x = ((x.float() - 0.1307) / 0.3081).view(x.size(0), -1)
        h = nn.functional.leaky_relu(self.fc1(x), 0.1, inplace=True)
        h += torch.sin(h).square()
        return nn.functional.log_softmax(self.fc2(nn.functional.normalize(h, dim=1)), dim=1)


def test_common_forward_styles_round_trip(tmp_path):
    model = Styled().eval()
    loaded = export_and_load(tmp_path, m=(model, [1, 28, 28])).values["m"]
    x = torch.rand(5, 1, 28, 28)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_a_training_result_stored_instead_of_its_model_is_named(tmp_path):
    from grader.checks.base import not_a_model
    from reference.training import TrainingHistory

    stored = export_and_load(tmp_path, m=(TrainingHistory(SimpleMLP()), [2])).values["m"]
    assert not_a_model(stored) == ("it is a TrainingHistory object, not a model: store the model itself (the first "
                                   "item your training function returns)")


def test_parameter_count_agrees_with_torchinfo(tmp_path):
    loaded = export_and_load(tmp_path, m=(CNN(), [1, 28, 28])).values["m"]
    assert summary(loaded.module, input_size=(1, 1, 28, 28), verbose=0).trainable_params == loaded.n_params == 206922


def test_dicts_keep_their_key_types_and_a_broken_entry_stays_local(tmp_path):
    class Unexportable(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # control flow on data: torch.export cannot capture it
                return x
            return -x

    exports = export_and_load(tmp_path, models=({0: SimpleMLP(), 3: Unexportable()}, [2]))
    models = exports.values["models"]
    assert list(models) == [0, 3]
    assert models[0].n_params == 483
    assert isinstance(models[3], ExportProblem) and "could not be captured" in models[3].message


def _graph_folder(tmp_path, nodes, weights=None):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "graph.json").write_text(json.dumps({"format": 1, "class": "X", "input_shape": [2], "nodes": nodes}))
    torch.save(weights if weights is not None else {}, folder / "weights.pt")
    return folder


def test_ops_off_the_allowlist_are_refused_by_name(tmp_path):
    nodes = [{"op": "input", "name": "x", "kind": "USER_INPUT"},
             {"op": "call", "name": "y", "target": "aten._foobar.default", "args": [{"ref": "x"}], "kwargs": {}},
             {"op": "output", "args": [{"ref": "y"}]}]
    with pytest.raises(ModelLoadError, match="'aten._foobar.default', which the grader does not run"):
        load_model(_graph_folder(tmp_path, nodes))
    nodes[1]["target"] = "builtins.eval"
    with pytest.raises(ModelLoadError, match="builtins.eval"):
        load_model(_graph_folder(tmp_path / "b", nodes)) if (tmp_path / "b").mkdir() is None else None


def test_student_names_never_reach_generated_code(tmp_path):
    evil = "x; __import__('os').system('touch /tmp/grader-name-injection')"
    nodes = [{"op": "input", "name": evil, "kind": "USER_INPUT"},
             {"op": "call", "name": evil + "2", "target": "aten.relu.default", "args": [{"ref": evil}], "kwargs": {}},
             {"op": "output", "args": [{"ref": evil + "2"}]}]
    model = load_model(_graph_folder(tmp_path, nodes))
    assert "__import__" not in model.module.code
    assert torch.equal(model(torch.tensor([[-1.0, 2.0]])), torch.tensor([[0.0, 2.0]]))


def test_pickled_weights_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    folder = _graph_folder(tmp_path, [{"op": "input", "name": "x", "kind": "USER_INPUT"},
                                      {"op": "output", "args": [{"ref": "x"}]}])
    (folder / "weights.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelLoadError, match="could not be read safely"):
        load_model(folder)


def test_symlinks_in_the_export_folder_are_not_followed(tmp_path):
    export_values({"m": SimpleMLP()}, [{"name": "m", "input_shape": [2]}], str(tmp_path))
    (tmp_path / "models" / "1" / "weights.pt").unlink()
    (tmp_path / "models" / "1" / "weights.pt").symlink_to("/etc/passwd")
    exports = load_exports(tmp_path)
    assert not exports.found and "symbolic links" in exports.problems["*"]
