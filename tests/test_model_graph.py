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
    import torch.fx.config

    model.eval()
    loaded = export_and_load(tmp_path, m=(model, shape)).values["m"]
    # The capture turns off torch.fx's stack traces for itself only: a quick check exports in the student's process.
    assert torch.fx.config.do_not_emit_stack_traces is False
    x = torch.randn(5, *shape)
    if isinstance(model, FixedBatch):
        expected = torch.cat([model(x[:2]), model(x[2:4]), model(torch.cat([x[4:], torch.zeros(1, 4)]))[:1]])
    else:
        expected = model(x)
    assert torch.allclose(loaded(x), expected, atol=1e-5)
    assert loaded.n_params == sum(p.numel() for p in model.parameters())
    assert loaded.param_shapes() == {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert loaded.class_name == type(model).__name__


def test_a_model_kept_in_float64_is_captured_and_run_on_the_graders_float32_data(tmp_path):
    torch.manual_seed(0)
    model = SimpleMLP().double().eval()
    loaded = export_and_load(tmp_path, m=(model, [2])).values["m"]
    x = torch.randn(7, 2)
    assert torch.allclose(loaded(x), model(x.double()), atol=1e-12)
    assert loaded.predict(x).tolist() == model(x.double()).argmax(dim=1).tolist()


def test_a_convolutional_model_kept_in_float64_passes_the_cost_guard_too(tmp_path):
    """The guard measured every forward pass on a float32 fake input: conv2d refuses another type than its weights'
    (Linear does not), so a CNN trained in float64 was refused as "tensor sizes depend on the data" (lr-sweep 1/11).
    In its own type, at the grader's batch of 4096, its 16 feature maps then held more than the 512 MB allowed: a
    model in a wider type is fed half the samples at once, so a pass holds what the float32 model's would."""
    from grader.loading.guard import eval_batch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 14 * 14, 10))
    model = model.double().eval()
    exports = export_and_load(tmp_path, m=(model, [1, 28, 28]))
    loaded = exports.values["m"]
    assert not isinstance(loaded, ExportProblem), loaded
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(loaded(x), model(x.double()), atol=1e-12), exports.problems
    assert eval_batch(loaded.module) == 2048 and eval_batch(nn.Linear(2, 3)) == 4096


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


@pytest.mark.parametrize("wrap", ["weight_norm", "spectral_norm", "orthogonal"])
def test_torch_s_own_parametrizations_round_trip(tmp_path, wrap):
    """A layer reparametrized by torch.nn.utils.parametrizations: its ops (_weight_norm, vdot, matrix_exp, mH) were
    off the allowlist, and a correct tiny model got 0/8, told to "build it from standard torch layers"."""
    from torch.nn.utils import parametrizations

    torch.manual_seed(0)
    model = nn.Sequential(getattr(parametrizations, wrap)(nn.Linear(3, 3)), nn.ReLU(), nn.Linear(3, 2)).eval()
    loaded = export_and_load(tmp_path, m=(model, [3])).values["m"]
    x = torch.randn(5, 3)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


class Aliased(nn.Module):
    """torch's aliases and plain math kept by torch.export as ops of their own (aten.clip, aten.special_expit, ...)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 4), nn.Linear(8, 3)

    def forward(self, x):
        h = torch.clip(self.fc1(x), min=0)
        h = torch.hstack([torch.special.expit(h), torch.arctan(torch.subtract(h, 1)) * torch.sinc(h)])
        return torch.divide(self.fc2(torch.absolute(h)), 2)


def test_torch_s_aliases_round_trip(tmp_path):
    """`torch.clip(self.fc1(x), min=0)` for a ReLU: a correct 27-parameter tiny model got 0/10, told to "build it from
    standard torch layers and functions"."""
    torch.manual_seed(0)
    model = Aliased().eval()
    loaded = export_and_load(tmp_path, m=(model, [2])).values["m"]
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_a_torchscript_model_is_captured_through_torch_s_converter(tmp_path):
    """`model = torch.jit.script(net)`: torch.export refuses a ScriptModule, and a correct tiny model got 0/8 with
    torch's advice to call TS2EPConverter, which the grader now does itself; the batch stays free."""
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():  # torch.jit is deprecated, and says so: a student may still use it
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)).eval())
        loaded = export_and_load(tmp_path, m=(scripted, [2])).values["m"]
    x = torch.randn(7, 2)
    assert torch.allclose(loaded(x), scripted(x), atol=1e-6) and loaded.static_batch is None
    assert loaded.n_params == 51


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


# --- what a model stores: the size budget's count (rule in grader/loading/model_graph.py) ---------------------------

POINTS = torch.tensor([[0.1, 0.2], [1.1, 0.9], [2.05, 1.95]])


class NearestInBuffers(nn.Module):
    """No parameters: answers by the nearest stored point, written with ordinary ops."""

    def __init__(self):
        super().__init__()
        self.register_buffer("points", POINTS.clone())
        self.register_buffer("onehot", torch.eye(3))

    def forward(self, x):
        d = ((x[:, None, :] - self.points[None]) ** 2).sum(-1)
        return torch.softmax(-d, dim=1) @ self.onehot


def stored(tmp_path, model, shape=(2,)):
    loaded = export_and_load(tmp_path, m=(model, list(shape))).values["m"]
    return loaded, loaded.stored_numbers()


def test_buffers_count_element_by_element(tmp_path):
    loaded, count = stored(tmp_path, NearestInBuffers())
    assert (count.parameters, count.buffers, count.constants) == (0, {"points": 6, "onehot": 9}, {})
    assert count.literals == ()  # the exponent of ** 2 is h * h: it counts nothing
    assert count.total == 15 and loaded.torchinfo_params() == 0
    assert torch.equal(loaded(POINTS).argmax(1), torch.arange(3))


def test_batchnorm_running_stats_count_but_its_batch_counter_does_not(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 3))
    loaded, count = stored(tmp_path, model)
    assert count.buffers == {"1.running_mean": 3, "1.running_var": 3}
    assert loaded.unread == {"1.num_batches_tracked"}
    assert (count.parameters, count.stored, count.total, loaded.torchinfo_params()) == (27, 6, 33, 27)


class ConstantsInForward(nn.Module):
    """The points as a plain tensor attribute and as a list turned into a tensor inside forward()."""

    def __init__(self):
        super().__init__()
        self.points = POINTS.clone()  # not a buffer: torch.export lifts it to a constant
        self.labels = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]

    def forward(self, x):
        d = (x[:, None, :] - self.points[None]).abs().sum(-1)
        return torch.softmax(-d, dim=1) @ torch.tensor(self.labels)


def test_tensors_made_in_forward_or_kept_as_attributes_count(tmp_path):
    loaded, count = stored(tmp_path, ConstantsInForward())
    assert count.buffers == {} and sorted(count.constants.items()) == [("lifted_tensor_0", 9), ("points", 6)]
    assert count.literals == () and count.total == 15
    assert torch.equal(loaded(POINTS).argmax(1), torch.arange(3))


class Structural(nn.Module):
    """Literals that are layout or a layer's own settings: none of them counts."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.act = nn.Sequential(nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Softsign(), nn.ReLU6(), nn.Softplus(beta=2))

    def forward(self, x):
        x = nn.functional.normalize(x.reshape(-1, 2, 1).flatten(1), dim=1)
        h = torch.cat([x, x[:, :1] * -1, torch.where(x[:, 1:] > 0, x[:, 1:], 0.0)], 1).view(x.size(0), 4)
        h = nn.functional.layer_norm(h, [4], eps=1e-3).masked_fill(h.isnan(), float("-inf"))
        return torch.log_softmax(self.act(self.fc(h + 1)), dim=-1)


def test_structural_literals_do_not_count(tmp_path):
    model = Structural().eval()
    loaded, count = stored(tmp_path, model)
    assert count.literals == () and count.stored == 0 and count.total == 15
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


class FoldedFloats(nn.Module):
    """Numbers written into forward() as values: each one counts."""

    def __init__(self):
        super().__init__()
        self.centre = [0.4321, 1.5]  # Python floats: torch.export folds them into the ops

    def forward(self, x):
        d = (x[:, 0] - self.centre[0]) ** 2 + (self.centre[1] - x[:, 1]) * 3
        extra = x.clamp(-0.3, 0.3).sum(1) + (x[:, 0] > 0.55).float() + torch.full_like(d, 0.9)
        padded = nn.functional.pad(x, (0, 1), value=0.4321).sum(1)
        return torch.stack([d, extra, d * 0 + torch.ones(7).sum(), padded], 1)


def test_numbers_written_into_forward_as_values_count(tmp_path):
    model = FoldedFloats().eval()
    loaded, count = stored(tmp_path, model)
    # 7 is the size of ones(7): a tensor made from nothing carries its size into its values.
    # Not counted: ** 2 (a whole-number exponent) and clamp's bounds (hardtanh's settings, by another name).
    assert sorted(count.literals) == sorted([0.4321, 1.5, 3, 0.55, 0.9, 7, 0.4321])
    assert count.total == 7 and count.buffers == count.constants == {}
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_forward_hooks_are_captured_and_what_they_keep_counts(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3))
    kept = POINTS.clone()

    def nearest(module, inputs, output):  # replaces the layer's output with nearest-point scores
        return output * 0 - ((inputs[0][:, None, :] - kept[None]) ** 2).sum(-1)

    model[0].register_forward_hook(nearest)
    model.register_forward_pre_hook(lambda module, args: (args[0] + 0.25,))
    loaded, count = stored(tmp_path, model)
    assert loaded.hooks == ("a forward pre-hook on the model (<lambda>)", "a forward hook on `0` (nearest)")
    assert count.constants == {"0.lifted_tensor_0": 6} and sorted(count.literals) == [0.25]  # ** 2 counts nothing
    assert count.total == 9 + 6 + 1
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_a_hook_that_cannot_be_captured_is_named_with_what_to_do(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3))
    recorded = []
    model[1].register_forward_hook(lambda module, inputs, output: recorded.append(output.detach().numpy()))
    problem = export_and_load(tmp_path, m=(model, [2])).values["m"]
    assert isinstance(problem, ExportProblem)
    assert problem.message.startswith("the model could not be captured for grading: RuntimeError: .numpy() is not "
                                      "supported for tensor subclasses. The grader captures your model with its "
                                      "forward hooks, which run too: a forward hook on `1` (<lambda>). ")
    assert problem.message.endswith("if it only records values, remove it (handle.remove()) before the notebook ends")


def test_a_forward_cost_is_measured_once_per_architecture_and_never_shared_across_shapes(tmp_path):
    """Costs are kept by what a fake run sees (code and tensor shapes): new weights reuse them, new shapes do not."""
    from grader.loading.guard import forward_cost

    def loaded(model, name):
        return export_and_load(tmp_path / name, m=(model, [2])).values["m"].module

    first, again = loaded(SimpleMLP(), "a"), loaded(SimpleMLP(), "b")  # the same layers, other weights
    wider = loaded(nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)), "c")
    assert forward_cost(first, (2,), 4096) is forward_cost(again, (2,), 4096)
    assert forward_cost(first, (2,), 2) != forward_cost(first, (2,), 4096)
    assert forward_cost(wider, (2,), 4096).flops > forward_cost(first, (2,), 4096).flops
    doubled = loaded(nn.Sequential(SimpleMLP(), nn.ReLU(), nn.Linear(3, 3)), "d")  # one op more, the rest alike
    assert forward_cost(doubled, (2,), 4096).elements > forward_cost(first, (2,), 4096).elements


class Saturated(nn.Module):
    """A softmax on logits 60 apart, after a hand-written ReLU (a comparison): each point's own-class probability is
    1.0 even in float64, whose gradient is exactly zero; the others' are not, so training could still move it."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(2, 4), nn.Linear(4, 3)
        with torch.no_grad():
            self.out.weight.mul_(0).add_(torch.tensor([[60.0, 0, 0, 0], [0, 60.0, 0, 0], [0, 0, 60.0, 0]]))

    def forward(self, x):
        h = self.hidden(x)
        return torch.softmax(self.out(h * (h > 0)) * 10, dim=1)


class Rounded(nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.ones(2))

    def forward(self, x):
        return (torch.round(x + self.shift).sum(1, keepdim=True) == torch.arange(3)).float()


def test_parameter_gradients_see_what_training_could_move(tmp_path):
    x = torch.randn(50, 2) * 2
    frozen = SimpleMLP().requires_grad_(False)
    nets = export_and_load(tmp_path, saturated=(Saturated(), [2]), frozen=(frozen, [2]), rounded=(Rounded(), [2]),
                           fixed=(FixedBatch(), [4])).values
    saturated = nets["saturated"].parameter_gradients(x)
    assert set(saturated) == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"} and all(saturated.values())
    assert all(nets["frozen"].parameter_gradients(x).values())  # frozen after training: still a network
    assert nets["rounded"].parameter_gradients(x) == {"shift": 0.0}  # read, but only through round and eq
    assert all(nets["fixed"].parameter_gradients(torch.randn(5, 4)).values())  # fed in padded batches of 2


class LayerHandles(nn.Module):
    """Each layer kept under two names: as an attribute of its own and inside the Sequential that runs it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 4), nn.Linear(4, 3)
        self.net = nn.Sequential(self.fc1, nn.ReLU(), self.fc2)

    def forward(self, x):
        return self.net(x)


def test_a_layer_kept_under_two_names_is_one_set_of_parameters(tmp_path):
    model = LayerHandles().eval()
    loaded, count = stored(tmp_path, model)
    assert loaded.n_params == count.parameters == loaded.torchinfo_params() == 27  # was 54: each name counted
    assert set(loaded.parameters) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_a_torch_compiled_model_is_captured_as_the_module_it_compiles(tmp_path):
    model = SimpleMLP().eval()
    loaded = export_and_load(tmp_path, m=(torch.compile(model, backend="eager"), [2])).values["m"]
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model(x), atol=1e-6) and loaded.class_name == "SimpleMLP"


class Standardised(nn.Module):  # normalises each feature by the batch's own mean and spread
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc((x - x.mean(0)) / x.std(0))


class AlwaysDropping(nn.Module):  # F.dropout without training=self.training: on in eval mode too
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(nn.functional.dropout(torch.relu(self.fc1(x)), p=0.2))


@pytest.mark.parametrize("model, says", [
    (Standardised(), "Your model's score for a point depends on the other points in its batch"),
    (AlwaysDropping(), "Your model gives the same points different scores each time it runs in eval mode"),
    (nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 3)), "")])
def test_a_score_that_is_not_the_point_s_own_fails_every_accuracy_measurement(tmp_path, model, says):
    from grader.checks.base import CheckFailed
    from grader.checks.models import measured_accuracy

    loaded = export_and_load(tmp_path, m=(model.eval(), [2])).values["m"]
    X, Y = torch.randn(64, 2), torch.arange(64) % 3
    if not says:  # batch norm in eval mode uses its running statistics: each point on its own
        assert measured_accuracy(loaded, X, Y)[1] >= 0
        return
    with pytest.raises(CheckFailed) as failed:
        measured_accuracy(loaded, X, Y)
    assert failed.value.message.startswith(says)
    if isinstance(model, AlwaysDropping):
        assert "pass training=self.training" in failed.value.message


class ReshapedToTheDataset(nn.Module):  # x.view(180, 2): runs only on batches of exactly 180 points
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(x.view(180, 2))


def test_a_reshape_to_a_fixed_size_is_refused_with_what_to_write_instead(tmp_path):
    problem = export_and_load(tmp_path, m=(ReshapedToTheDataset(), [2])).values["m"]
    assert isinstance(problem, ExportProblem)
    assert "shape '[180, 2]' is invalid" in problem.message
    assert "reshapes its input to a fixed size" in problem.message and "x.view(x.size(0), -1)" in problem.message


class Logging(nn.Module):  # keeps the batch sizes it saw in a list the notebook also exports
    def __init__(self, log: list):
        super().__init__()
        self.fc, self.log = nn.Linear(2, 3), log

    def forward(self, x):
        self.log.append(x.shape[0])
        return self.fc(x)


def test_values_are_written_before_any_model_is_captured_so_the_capture_changes_none(tmp_path):
    log = [7]  # what the notebook's own cells left in it
    exports = round_trip(tmp_path, {"net": Logging(log), "log": log},
                         [{"name": "net", "input_shape": [2]}, {"name": "log"}])
    assert exports.values["log"] == [7] and exports.values["net"].class_name == "Logging"
