import numpy as np
import pytest
import torch

from reference.data import course_loaders, course_splits, generate_checkerboard_dataset


def test_layout_follows_the_course_algorithm():
    ds = generate_checkerboard_dataset(n_per_cell=20, noise=0.1, seed=0)
    assert len(ds) == 180
    assert ds.X.dtype == torch.float32 and ds.X.shape == (180, 2)
    assert ds.Y.dtype == torch.int64
    # cells in loop order i (x) then j (y); label (i + j) % 3; no shuffling
    expected = [(i + j) % 3 for i in range(3) for j in range(3)]
    assert ds.Y.view(9, 20)[:, 0].tolist() == expected
    centres = ds.X.view(9, 20, 2).mean(dim=1)
    grid = torch.tensor([[i - 1.0, j - 1.0] for i in range(3) for j in range(3)])
    assert torch.allclose(centres, grid, atol=0.1)
    x, y = ds[25]
    assert torch.equal(x, ds.X[25]) and y.item() == ds.Y[25].item()


def test_draws_match_the_global_numpy_generator_and_leave_it_alone():
    np.random.seed(0)
    expected_first_x = -1.0 + 0.5 * np.random.randn(20)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ds = generate_checkerboard_dataset(20, 0.5, seed=0)
    assert np.allclose(ds.X[:20, 0].numpy(), expected_first_x.astype(np.float32))
    assert np.array_equal(np.random.get_state()[1], before)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (generate_checkerboard_dataset(10, 0.3, s) for s in (4, 4, 5))
    assert torch.equal(a.X, b.X) and not torch.equal(a.X, c.X)


@pytest.mark.parametrize("kwargs, message", [({"n_per_cell": 0}, "positive n_per_cell"), ({"noise": -1}, "non-negative noise")])
def test_bad_arguments_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_checkerboard_dataset(**kwargs)


def test_course_loaders_shuffle_only_train():
    loaders = course_loaders(course_splits())
    assert [len(loaders.train.dataset), len(loaders.val.dataset), len(loaders.test.dataset)] == [180, 180, 180]
    first = torch.cat([y for _, y in loaders.val])
    assert torch.equal(first, course_splits().val.Y)
