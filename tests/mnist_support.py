"""Shared by the MNIST tests: the bundled files, unpacked once per session into pytest's temp dir."""

from __future__ import annotations

import pathlib

import pytest

from reference.mnist import find_bundled_mnist, unpack_mnist


def bundle_or_fail() -> pathlib.Path:
    bundle = find_bundled_mnist()
    if bundle is None:
        pytest.fail("The MNIST tests need the bundled raw files: set MNIST_BUNDLE to a folder holding the four "
                    "*-ubyte.gz files (the workplace ships them in ../shared/data/mnist).")
    return bundle


def unpacked_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One root per session; a second call finds the files in place and only checks their md5."""
    return unpack_mnist(bundle_or_fail(), tmp_path_factory.getbasetemp() / "mnist-root")
