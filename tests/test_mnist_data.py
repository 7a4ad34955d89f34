import gzip
import shutil

import pytest
import torch
from mnist_support import bundle_or_fail, unpacked_root
from torch.utils.data import DataLoader, Subset

from reference.mnist import data as mnist
from reference.mnist.data import (
    MNIST_FILES,
    MnistChecksumError,
    MnistNotFound,
    MnistTensors,
    default_device,
    find_bundled_mnist,
    load_mnist,
    load_mnist_tensors,
    prepare_mnist_root,
    raw_folder,
    read_idx,
    unpack_mnist,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    return unpacked_root(tmp_path_factory)


@pytest.fixture(scope="session")
def train(root):
    return load_mnist_tensors(root, train=True)


def test_full_splits_have_mnists_counts_and_pixel_statistics(root, train):
    test = load_mnist_tensors(root, train=False)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert torch.bincount(train.y).tolist() == TRAIN_COUNTS
    assert torch.bincount(test.y).tolist() == TEST_COUNTS
    assert train.x.min().item() == 0.0 and train.x.max().item() == 1.0
    assert train.x.mean().item() == pytest.approx(0.1307, abs=5e-5)
    assert train.x.std().item() == pytest.approx(0.3081, abs=5e-5)


@pytest.mark.parametrize("is_train, indices", [(True, [0, 1, 7777, 59999]), (False, [0, 4321, 9999])])
def test_fast_path_equals_totensor_bit_for_bit(root, train, is_train, indices):
    tensors = train if is_train else load_mnist_tensors(root, train=False)
    dataset = load_mnist(root, train=is_train)
    for i in indices:
        image, label = dataset[i]
        assert torch.equal(image, tensors.x[i]), i
        assert label == tensors.y[i].item()


def _numbered(n: int) -> MnistTensors:
    """Labels are the sample indices, so batches show which samples they hold."""
    return MnistTensors(torch.zeros(n, 1, 28, 28), torch.arange(n))


def test_batches_cover_every_sample_once_with_a_smaller_last_batch():
    data = _numbered(1000)
    batches = list(data.batches(64, shuffle=True))
    assert [len(y) for _, y in batches] == [64] * 15 + [40]
    seen = torch.cat([y for _, y in batches])
    assert torch.equal(seen.sort().values, torch.arange(1000))
    assert not torch.equal(seen, torch.arange(1000))
    in_order = torch.cat([y for _, y in data.batches(64, shuffle=False)])
    assert torch.equal(in_order, torch.arange(1000))


def test_shuffle_differs_between_epochs_and_a_generator_makes_it_repeatable():
    data = _numbered(500)
    first, second = (torch.cat([y for _, y in data.batches(100, shuffle=True)]) for _ in range(2))
    assert not torch.equal(first, second)
    again = [torch.cat([y for _, y in data.batches(100, True, torch.Generator().manual_seed(5))]) for _ in range(2)]
    assert torch.equal(*again)


def test_batches_are_the_dataloaders_under_the_same_seed(root, train):
    # One epoch shuffled, one unshuffled pass, another shuffled epoch: RNG use must match throughout.
    dataset = Subset(load_mnist(root, train=True), range(300))
    torch.manual_seed(7)
    expected = [*DataLoader(dataset, batch_size=64, shuffle=True), *DataLoader(dataset, batch_size=100),
                *DataLoader(dataset, batch_size=64, shuffle=True)]
    torch.manual_seed(7)
    small = train.subset(300)
    got = [*small.batches(64, True), *small.batches(100, False), *small.batches(64, True)]
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)


def test_device_argument(root):
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    test = load_mnist_tensors(root, train=False, device="cpu")
    assert test.device.type == "cpu"
    x, y = next(test.subset(100).to("meta").batches(32, shuffle=True))
    assert x.device.type == "meta" and y.device.type == "meta" and x.shape == (32, 1, 28, 28)


def test_unpack_is_idempotent_and_repairs_a_damaged_file(tmp_path):
    bundle = bundle_or_fail()
    unpack_mnist(bundle, tmp_path)
    raw = raw_folder(tmp_path)
    before = {name: (raw / name).stat() for name in MNIST_FILES}
    unpack_mnist(bundle, tmp_path)
    for name in MNIST_FILES:  # untouched: same inode and mtime
        after = (raw / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns)
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])  # as if truncated
    unpack_mnist(bundle, tmp_path)
    assert len(read_idx(labels)) == 10000
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)  # no temp files left


def test_a_corrupt_bundle_raises_a_clear_error_and_leaves_no_partial_file(tmp_path):
    bundle, bad = bundle_or_fail(), tmp_path / "bundle"
    bad.mkdir()
    for name in [*(f"{n}.gz" for n in MNIST_FILES), "MD5SUMS.raw"]:
        shutil.copy(bundle / name, bad / name)
    labels = bytearray(gzip.decompress((bundle / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one wrong label
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(MnistChecksumError, match=r"train-labels-idx1-ubyte\.gz decompresses to data with md5 "
                                                 r"\w+, expected a25bea736e30d166cdddb491f175f624"):
        unpack_mnist(bad, tmp_path / "root")
    assert sorted(p.name for p in raw_folder(tmp_path / "root").iterdir()) == ["train-images-idx3-ubyte"]


def test_read_idx_rejects_a_truncated_file(tmp_path, root):
    path = tmp_path / "short"
    path.write_bytes((raw_folder(root) / "t10k-labels-idx1-ubyte").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


@pytest.fixture
def no_bundle(tmp_path, monkeypatch):
    """Neither $MNIST_BUNDLE nor the default location holds the files."""
    monkeypatch.setenv("MNIST_BUNDLE", str(tmp_path / "no-bundle"))
    monkeypatch.setattr(mnist, "DEFAULT_BUNDLE", tmp_path / "no-default-bundle")
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    return tmp_path


def test_the_bundle_is_looked_for_in_mnist_bundle_then_next_to_the_repo(tmp_path, monkeypatch):
    bundle = bundle_or_fail()
    monkeypatch.setattr(mnist, "DEFAULT_BUNDLE", bundle)
    monkeypatch.setenv("MNIST_BUNDLE", str(tmp_path))  # no files there: falls back to the default
    assert find_bundled_mnist() == bundle
    monkeypatch.setattr(mnist, "DEFAULT_BUNDLE", tmp_path / "elsewhere")
    assert find_bundled_mnist() is None
    monkeypatch.setenv("MNIST_BUNDLE", str(bundle))
    assert find_bundled_mnist() == bundle


def test_prepare_reuses_a_root_that_has_the_files(root, no_bundle):
    assert prepare_mnist_root(root) == root


def test_prepare_unpacks_the_bundle_into_mnist_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_BUNDLE", str(bundle_or_fail()))
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path / "data"))
    assert prepare_mnist_root() == tmp_path / "data"
    assert len(load_mnist(tmp_path / "data", train=False)) == 10000


def test_prepare_without_files_says_where_it_looked_and_how_to_fix_it(no_bundle):
    tmp_path = no_bundle
    with pytest.raises(MnistNotFound) as caught:
        prepare_mnist_root(tmp_path / "empty")
    message = str(caught.value)
    for part in [str(tmp_path / "empty" / "MNIST" / "raw"), str(tmp_path / "no-bundle"),
                 str(tmp_path / "no-default-bundle"), "--data-root", "MNIST_ROOT", "MNIST_BUNDLE", "download=True"]:
        assert part in message
    assert not (tmp_path / "empty").exists()  # nothing created on failure
