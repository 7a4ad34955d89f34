"""MNIST for the seeds' experiments: find or unpack the raw IDX files, and load them two ways.

``load_mnist`` is the seeds' torchvision dataset with ``ToTensor()`` (no Normalize: the
exercises forbid changing the preprocessing). ``MnistTensors`` holds a whole split as one
float32 tensor with exactly ToTensor's values and yields shuffled batches from it, which is
what the reference trains on: the same data and batch semantics, several times faster.

Where the files come from, in order: a root that already has ``MNIST/raw``; the gzipped
bundle shipped with the workplace (``$MNIST_BUNDLE`` or ``<repo>/../shared/data/mnist``),
unpacked into that root; torchvision's download where a network is available.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from reference.torchvision_compat import ensure_torchvision_importable

# torchvision's raw names; the bundle holds each with ``.gz`` appended.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# md5 of the uncompressed originals; MD5SUMS.raw in the bundle, when present, takes precedence.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO_ROOT.parent / "shared" / "data" / "mnist"
DEFAULT_ROOT = REPO_ROOT / "out" / "data"
_CHUNK = 1 << 20


class MnistNotFound(FileNotFoundError):
    """No MNIST files in the root, no bundle to unpack, and downloading was not allowed."""

    @classmethod
    def from_tried(cls, root: pathlib.Path, bundles: list[pathlib.Path]) -> MnistNotFound:
        tried = "\n".join(f"  - {p}" for p in [root / "MNIST" / "raw", *bundles])
        return cls(
            f"MNIST not found. Looked for the raw IDX files in:\n{tried}\n"
            "Fix one of: pass --data-root (data_root=) pointing at a folder that holds MNIST/raw/; "
            "set MNIST_ROOT to such a folder, or MNIST_BUNDLE to a folder of the four *-ubyte.gz files; "
            "or, on a machine with internet, fetch it once with prepare_mnist_root(root, download=True)."
        )


class MnistChecksumError(ValueError):
    """An unpacked file does not have the md5 it should."""


def default_device() -> str:
    """``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def find_bundled_mnist() -> pathlib.Path | None:
    """The folder of the four gzipped IDX files: ``$MNIST_BUNDLE``, else ``shared/data/mnist`` beside the
    checkout or beside any folder above it (the workplace keeps ``shared/`` next to its checkouts)."""
    for folder in _bundle_candidates():
        if all((folder / f"{name}.gz").is_file() for name in MNIST_FILES):
            return folder
    return None


def _bundle_candidates() -> list[pathlib.Path]:
    env = os.environ.get("MNIST_BUNDLE")
    beside = [folder / "shared" / "data" / "mnist" for folder in REPO_ROOT.parents]
    return ([pathlib.Path(env)] if env else []) + [DEFAULT_BUNDLE, *beside[1:]]


def _expected_md5(src_dir: pathlib.Path) -> dict[str, str]:
    sums = src_dir / "MD5SUMS.raw"
    if not sums.is_file():
        return dict(RAW_MD5)
    table = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            table[name.lstrip("*")] = digest
    return table


def _md5(path: pathlib.Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def raw_folder(root: str | pathlib.Path) -> pathlib.Path:
    """Where torchvision's ``datasets.MNIST(root)`` looks for the raw files."""
    return pathlib.Path(root) / "MNIST" / "raw"


def has_raw_files(root: str | pathlib.Path) -> bool:
    return all((raw_folder(root) / name).is_file() for name in MNIST_FILES)


def _decompress_verified(src: pathlib.Path, dest: pathlib.Path, md5: str | None) -> None:
    """Gunzip ``src`` to ``dest`` through a temp file in the same folder, renamed only once verified."""
    digest = hashlib.md5()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as gz:
            while chunk := gz.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise MnistChecksumError(
                f"{src} decompresses to data with md5 {digest.hexdigest()}, expected {md5} "
                f"(from MD5SUMS.raw): the bundle is corrupt; replace it or download MNIST afresh."
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; data is meant to be read by others (e.g. grading kernels)
        os.replace(tmp, dest)  # atomic: a killed unpack never leaves a truncated dest
    finally:
        tmp.unlink(missing_ok=True)


def unpack_mnist(src_dir: str | pathlib.Path, root: str | pathlib.Path) -> pathlib.Path:
    """Decompress the four ``.gz`` files into ``<root>/MNIST/raw/``; files with the right md5 are kept.

    Returns ``root``. Raises ``MnistChecksumError`` when a decompressed file has the wrong md5.
    """
    src_dir, root = pathlib.Path(src_dir), pathlib.Path(root)
    expected = _expected_md5(src_dir)
    raw = raw_folder(root)
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        dest, md5 = raw / name, expected.get(name)
        if dest.is_file() and md5 is not None and _md5(dest) == md5:
            os.chmod(dest, dest.stat().st_mode | 0o444)  # earlier versions left the files owner-only
            continue
        _decompress_verified(src_dir / f"{name}.gz", dest, md5)
    return root


def prepare_mnist_root(data_root: str | pathlib.Path | None = None, download: bool = False) -> pathlib.Path:
    """A root that ``datasets.MNIST(root)`` loads: reuse it, else unpack the bundle there, else download.

    ``data_root`` defaults to ``$MNIST_ROOT`` or ``<repo>/out/data``. Raises ``MnistNotFound``
    with the paths tried and the ways to fix it.
    """
    root = pathlib.Path(data_root or os.environ.get("MNIST_ROOT") or DEFAULT_ROOT)
    if has_raw_files(root):
        return root
    bundle = find_bundled_mnist()
    if bundle is not None:
        return unpack_mnist(bundle, root)
    if download:
        ensure_torchvision_importable()
        from torchvision import datasets

        for train in (True, False):
            datasets.MNIST(str(root), train=train, download=True)
        return root
    raise MnistNotFound.from_tried(root, _bundle_candidates())


def load_mnist(root: str | pathlib.Path, train: bool):
    """The seeds' dataset: ``datasets.MNIST(root, train, transform=ToTensor())``, never downloading."""
    ensure_torchvision_importable()
    from torchvision import datasets, transforms

    return datasets.MNIST(str(root), train=train, download=False, transform=transforms.ToTensor())


def read_idx(path: str | pathlib.Path) -> np.ndarray:
    """An unsigned-byte IDX file (MNIST's format) as a uint8 array of the shape its header gives."""
    data = pathlib.Path(path).read_bytes()
    # Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dims, then
    # one big-endian int32 per dim.
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), "
                         f"file holds {len(data) - offset}: truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


@dataclass
class MnistTensors:
    """One split in memory: ``x`` float32 (N, 1, 28, 28) in [0, 1] as ToTensor gives it, ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"expected as many labels as images, got {self.y.shape[0]} and {self.x.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> MnistTensors:
        return MnistTensors(self.x.to(device), self.y.to(device))

    def subset(self, n: int, start: int = 0) -> MnistTensors:
        """The ``n`` samples from ``start``, sharing memory with this split."""
        return MnistTensors(self.x[start:start + n], self.y[start:start + n])

    def chunks(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """In-order slices for evaluation; unlike ``batches`` this never touches the RNG."""
        for start in range(0, len(self), batch_size):
            yield self.x[start:start + batch_size], self.y[start:start + batch_size]

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every sample once, in batches of ``batch_size`` (the last one smaller), like a DataLoader.

        With ``generator=None`` the global RNG is consumed exactly as one pass over
        ``DataLoader(..., shuffle=shuffle)`` consumes it, so after the same ``torch.manual_seed``
        the batches are the DataLoader's, and a seed-style notebook reproduces these runs.
        """
        if batch_size < 1:
            raise ValueError(f"expected a positive batch_size, got {batch_size}")
        order = _epoch_order(len(self), shuffle, generator)
        if order is None:
            yield from self.chunks(batch_size)
            return
        order = order.to(self.device)
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            # index_select: the same rows as x[idx], at about half the cost of advanced indexing.
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)


def _epoch_order(n: int, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor | None:
    if generator is not None:
        return torch.randperm(n, generator=generator) if shuffle else None
    # A DataLoader iterator first draws a base seed for its workers (even with none),
    # then RandomSampler draws the seed of a fresh generator and permutes with it.
    torch.empty((), dtype=torch.int64).random_()
    if not shuffle:
        return None
    seeded = torch.Generator()
    seeded.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
    return torch.randperm(n, generator=seeded)


def load_mnist_tensors(root: str | pathlib.Path, train: bool, device: torch.device | str = "cpu") -> MnistTensors:
    """A split straight from its IDX files: pixels ``uint8 / 255`` in float32, bit for bit ToTensor's."""
    prefix = "train" if train else "t10k"
    raw = raw_folder(root)
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte")  # (N, 28, 28) uint8
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte")  # (N,) uint8
    # ToTensor divides a float32 copy by 255; doing the same gives identical bits.
    x = torch.from_numpy(images.copy()).to(torch.float32).div_(255).unsqueeze(1)  # (N, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return MnistTensors(x, y).to(device)


@dataclass(frozen=True)
class MnistSplits:
    """The seeds' two sets: train (60k) and val, which is the 10k test split as in the seeds."""

    train: MnistTensors
    val: MnistTensors


def load_mnist_splits(data_root: str | pathlib.Path | None = None, device: torch.device | str | None = None,
                      download: bool = False) -> MnistSplits:
    """Resolve the root (see ``prepare_mnist_root``) and load both splits onto ``device``."""
    root = prepare_mnist_root(data_root, download=download)
    device = device or default_device()
    return MnistSplits(load_mnist_tensors(root, True, device), load_mnist_tensors(root, False, device))
