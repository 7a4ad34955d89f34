"""Shared by the MNIST tests: the bundled files, unpacked once per session into pytest's temp dir."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from reference.mnist.data import find_bundled_mnist, raw_folder, read_idx, unpack_mnist


def bundle_or_fail() -> pathlib.Path:
    bundle = find_bundled_mnist()
    if bundle is None:
        pytest.fail("The MNIST tests need the bundled raw files: set MNIST_BUNDLE to a folder holding the four "
                    "*-ubyte.gz files (the workplace ships them in ../shared/data/mnist).")
    return bundle


def unpacked_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One root per session; a second call finds the files in place and only checks their md5."""
    return unpack_mnist(bundle_or_fail(), tmp_path_factory.getbasetemp() / "mnist-root")


def _write_idx(path: pathlib.Path, data: np.ndarray) -> None:
    """An IDX file (big-endian header: magic, then one int32 per dimension) holding ``data`` (uint8)."""
    magic = 0x00000800 | data.ndim
    header = np.array([magic, *data.shape], dtype=">i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(data, dtype=np.uint8).tobytes())
    path.chmod(0o644)


def subset_root(full_root: pathlib.Path, folder: pathlib.Path, n_train: int, n_test: int) -> pathlib.Path:
    """A torchvision-layout MNIST root holding the first ``n_train``/``n_test`` real samples of each split."""
    raw, target = raw_folder(full_root), raw_folder(folder)
    target.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte"
            _write_idx(target / name, read_idx(raw / name)[:n])
    return folder


def exported(model, folder: pathlib.Path, input_shape=(1, 28, 28)):
    """``model`` captured as the kernel's export cell does, and rebuilt by the grader's safe loader."""
    from grader.kernel.kernel_export import export_model
    from grader.loading.model_graph import load_model

    export_model(model, list(input_shape), str(folder))
    return load_model(folder)


def evaluate(exercise_id: str, check_id: str, values: dict, data_root: pathlib.Path | None = None,
             code: tuple[tuple[int, str], ...] = ()):
    """One check of an exercise's spec, evaluated on ``values`` (and ``code``, its cells) as if a notebook had
    exported them."""
    from grader.assignments.catalog import load_exercise
    from grader.checks import CheckContext
    from grader.checks.data import DataFactory
    from grader.loading.values import Exports

    exercise = load_exercise(exercise_id)
    check = next(c for c in exercise.checks if c.spec.id == check_id)
    ctx = CheckContext(exercise.spec, Exports(values=values, found=True), code, DataFactory(None, data_root),
                       check_id=check_id)
    return check.evaluate(ctx)
