"""The grader's own cells around the student's: the prelude before them, the export cell after.

Both run inside the student's kernel, so they carry their code as source text: nothing of
the grader is importable there, and nothing they produce is trusted (see ``kernel_export``).
"""

from __future__ import annotations

import ast
import base64
import functools
import importlib.util
import json
import pathlib
import zlib

from grader.kernel.limits import Limits
from grader.source_trees import parse as parse_source

KERNEL_EXPORT = pathlib.Path(__file__).with_name("kernel_export.py")
KERNEL_PROBE = pathlib.Path(__file__).with_name("kernel_probe.py")
KERNEL_WARM = pathlib.Path(__file__).with_name("kernel_warm.py")


def _torchvision_compat() -> pathlib.Path:
    # Found through the import system, not the repository layout, so an installed package works too.
    return pathlib.Path(importlib.util.find_spec("reference.torchvision_compat").origin)


def _packed(path: pathlib.Path) -> str:
    """An expression for ``path``'s source, without its comments and docstrings, compressed: the prelude stays small.

    The kernel echoes every cell it runs as a message; pyzmq sends one of 64 KB or more without copying it, from a
    thread of its own, which a kernel under a tight memory limit cannot start, and its replies then break.
    """
    return _compressed(path.read_bytes())


def _without_docs(source: bytes) -> bytes:
    """The same code, as ``ast.unparse`` writes it: no comments, and no docstrings (a ``pass`` where one was all)."""
    tree = parse_source(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree).encode()


@functools.lru_cache(maxsize=4)
def _compressed(source: bytes) -> str:
    # Keyed by the bytes themselves: an edited file is packed again, an unchanged one costs a read (4 ms saved a run).
    packed = base64.b85encode(zlib.compress(_without_docs(source), 9)).decode()
    return f"_grader_decompress(_grader_b85({packed!r})).decode()"


def prelude_source(models: bool = True, names: tuple[str, ...] = (), speculate: tuple | None = None) -> str:
    """The first cell: the run's record (``kernel_probe``), the sealed exporter, the torchvision workaround.

    It runs before any student cell. The exporter (``kernel_export``) is executed here, with a copy
    of the builtins, and sealed: it keeps its own references to what it needs, so later patches
    do not reach it (``models``: also torch.export's, taken when the notebook imports torch). An
    import hook runs the workaround (reference/torchvision_compat.py) right before the first
    ``import torchvision``; the probe and the exporter likewise wait for the notebook's own
    ``import torch``, so a notebook without torch pays nothing. ``names`` are the values the export
    writes: the exporter records what they hold after every cell. ``speculate``: (input shapes, folder, digests
    held) for a kernel that only captures the first model fed one of those shapes (``kernel_export.speculate``).
    """
    source = _torchvision_compat().read_text()
    # The namespaces must stay referenced: the torch.library object inside the compat one keeps the op schemas
    # alive, and the export cell calls the sealed exporter in ``_grader_export``.
    return ("# Added by the grader.\n"
            "import builtins as _grader_builtins\n"
            # A module of its own: torch.compile traces the probe's global hooks, and looks their globals up by the
            # module's name.
            "import sys as _grader_sys, types as _grader_types\n"
            "from zlib import decompress as _grader_decompress\n"
            "from base64 import b85decode as _grader_b85\n"
            "_grader_sys.modules['grader_probe'] = _grader_types.ModuleType('grader_probe')\n"
            "_grader_probe = vars(_grader_sys.modules['grader_probe'])\n"
            "del _grader_types\n"
            f"exec(compile({_packed(KERNEL_PROBE)}, 'grader_probe.py', 'exec'), _grader_probe)\n"
            "_grader_export = {'__name__': 'grader_export', '__builtins__': dict(vars(_grader_builtins))}\n"
            f"exec(compile({_packed(KERNEL_EXPORT)}, 'grader_export.py', 'exec'), _grader_export)\n"
            "del _grader_decompress, _grader_b85\n"
            f"_grader_export['seal'](globals(), _grader_probe, models={models!r}, names={tuple(names)!r})\n"
            "_grader_probe['after_import']('torch', _grader_export['seal_torch'])\n"
            + (f"_grader_probe['after_import']('torch', lambda _: _grader_export['speculate']{speculate!r})\n"
               if speculate else "") +
            "del _grader_builtins\n"
            "import sys as _grader_sys\n"
            "_grader_compat = {'__name__': 'torchvision_compat'}\n"
            "class _GraderTorchvisionHook:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torchvision':\n"
            "            _grader_sys.meta_path.remove(self)\n"
            f"            exec(compile({source!r}, 'torchvision_compat.py', 'exec'), _grader_compat)\n"
            "        return None\n"
            "_grader_sys.meta_path.insert(0, _GraderTorchvisionHook())\n")


def export_source(requests: list[dict], export_dir: pathlib.Path, reuse: list[str] | None = None,
                  limits: Limits | None = None) -> str:
    """The last cell: the sealed exporter writes every requested value into ``export_dir``.

    A request is ``{"name", "kind", "input_shape", "code"}``, as ``kernel_export.export_values`` reads it.
    ``reuse`` (watch mode): digests of the model captures the grader holds, which the export need not redo.
    ``limits``: each probe's time (``probe_timeout_s``), within the cell's (``export_timeout_s``).
    """
    times = (limits.probe_timeout_s, limits.export_timeout_s) if limits else None
    return ("# Added by the grader.\n"
            f"_grader_export['export_values'](None, {json.dumps(requests)}, {str(export_dir)!r}, {reuse!r}, "
            f"{times!r})\n")


def warm_source(models: bool) -> str:
    """Code a waiting kernel runs silently after the prelude (``kernel_warm``): a throwaway training step and capture.

    One statement in a namespace of its own, so it leaves no name behind; it reads the prelude's probe and exporter.
    """
    source = KERNEL_WARM.read_text() + "\nwarm(probe, export, models)\n"
    return (f"exec(compile({source!r}, 'grader_warm.py', 'exec'), {{'__name__': 'grader_warm', "
            f"'probe': _grader_probe, 'export': _grader_export, 'models': {models!r}}})\n")
