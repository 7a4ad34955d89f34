"""Make ``import torchvision`` work when its compiled extension cannot load.

The registry's torchvision 0.28.0 wheel is a CUDA build. Next to a CPU torch its
``_C`` extension fails to load, and ``torchvision/_meta_registrations.py`` then
raises ``RuntimeError: operator torchvision::nms does not exist`` at import.
Defining the two op schemas it registers fakes for is enough for ``datasets``,
``transforms`` and ``models`` to import; compiled ops (nms, decode_jpeg, ...)
still raise torchvision's own clear error when called.

Where the extension loads, nothing is defined. This file imports only the
standard library and torch, so the grader can run its source in a kernel.

Example::

    from reference.torchvision_compat import ensure_torchvision_importable
    ensure_torchvision_importable()
    from torchvision import datasets, transforms
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import torch

# The schemas torchvision's meta registrations expect unconditionally.
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
# A torch.library.Library unregisters its definitions when collected, so the
# one we create must live as long as the process.
_KEEPALIVE: list[torch.library.Library] = []


def _op_exists(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in sorted(pathlib.Path(folder).glob("_C*.so")) + sorted(pathlib.Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(lib))
                return True
            except (OSError, ImportError, RuntimeError):
                continue
    return False


def ensure_torchvision_importable() -> bool:
    """Define the missing op schemas if needed; return True when it did so."""
    if "torchvision" in sys.modules or _KEEPALIVE:
        return False
    if importlib.util.find_spec("torchvision") is None:
        return False
    if _op_exists("nms") or _extension_loads():
        return False
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    _KEEPALIVE.append(lib)
    return True


ensure_torchvision_importable()
