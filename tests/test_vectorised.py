import pytest
import torch
from torch.utils.data import DataLoader

from reference.data import course_loaders, course_splits
from reference.models import SimpleMLP
from reference.training import evaluate, train_model_extended
from reference.extras.vectorised import ShuffleStream, StackedMLP, train_stacked

SEEDS = (0, 3, 18, 7)


@pytest.mark.parametrize("val_loaders", [0, 1])
def test_shuffle_stream_yields_the_dataloader_order(val_loaders):
    splits = course_splits()
    torch.manual_seed(11)
    stream = ShuffleStream(180, other_loaders_per_epoch=val_loaders)
    train = DataLoader(range(180), batch_size=32, shuffle=True)
    val = DataLoader(range(180), batch_size=32)
    for _ in range(4):
        expected = torch.cat(list(train))
        for _ in range(val_loaders):
            list(val)
        assert torch.equal(stream.next_epoch(), expected)
    assert len(splits.train) == 180


@pytest.fixture(scope="module")
def both_runs():
    splits = course_splits()
    loaders = course_loaders(splits)
    sequential = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        sequential.append(train_model_extended(SimpleMLP(), loaders.train, loaders.val, lr=0.01, n_epochs=500,
                                               logging_interval=None, patience=20))
    models, streams = [], []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(SimpleMLP())
        streams.append(ShuffleStream(180, other_loaders_per_epoch=1))
    stacked = train_stacked(StackedMLP(models), splits.train, streams, splits.val, lr=0.01, n_epochs=500, patience=20)
    return loaders, sequential, stacked


def test_per_seed_results_equal_the_sequential_loop(both_runs):
    loaders, sequential, stacked = both_runs
    for k, (seq, vec) in enumerate(zip(sequential, stacked.histories)):
        assert vec.best_epoch == seq.best_epoch, f"seed {SEEDS[k]}"
        assert len(vec.train_loss) == seq.epochs_run
        assert vec.train_loss == pytest.approx(seq.train_loss, rel=1e-5)
        assert vec.val_loss == pytest.approx(seq.val_loss, rel=1e-5)
        assert vec.train_acc == seq.train_acc and vec.val_acc == seq.val_acc


def test_restored_replicas_match_the_restored_sequential_models(both_runs):
    loaders, sequential, stacked = both_runs
    for k, seq in enumerate(sequential):
        module = stacked.model.to_module(k)
        assert isinstance(module, SimpleMLP)
        for (name, a), b in zip(seq.model.state_dict().items(), module.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-5), name
        assert evaluate(module, loaders.test)[1] == evaluate(seq.model, loaders.test)[1]


def test_stacked_forward_equals_each_module():
    torch.manual_seed(0)
    models = [SimpleMLP() for _ in range(3)]
    x = torch.randn(5, 2)
    out = StackedMLP(models)(x)
    for k, m in enumerate(models):
        assert torch.allclose(out[k], m(x), atol=1e-6)


def test_rejects_non_mlp():
    with pytest.raises(ValueError, match="ReLU MLP"):
        StackedMLP([torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))])
