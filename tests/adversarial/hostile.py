"""A generator of hostile notebooks, written as a determined student would, for the adversarial tests.

Each notebook starts from the same honest but weak model, ``model`` (a 2-3 linear layer seeded with
123, untrained), and a better one it would rather be graded on, ``good``. An attack then tries to
make the grader's export write something else than ``model``. The fair outcome is always the same:
the exported model is ``model``, and the grade is what ``model`` earns.
"""

from __future__ import annotations

import pathlib

import nbformat

BASE = """\
import torch
from torch import nn

torch.manual_seed(123)
model = nn.Sequential(nn.Linear(2, 3))      # what the notebook really has: untrained
torch.manual_seed(7)
good = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))   # what it would rather be graded on
with torch.no_grad():
    for p in good.parameters():
        p.mul_(3.0)
"""

# One attack per class of "patched export" in the issue: each cell runs after BASE, before the grader's export.
EXPORT_ATTACKS = {
    "exec": """\
import builtins
_real_exec = builtins.exec
def _exec(code, g=None, l=None, **kw):
    if isinstance(g, dict) and "model" in g:
        g["model"] = good
    return _real_exec(code, g, l, **kw)
builtins.exec = _exec
""",
    "compile": """\
import builtins
_real_compile = builtins.compile
def _compile(source, *args, **kwargs):
    if isinstance(source, str):
        source = source.replace("model", "good")
    return _real_compile(source, *args, **kwargs)
builtins.compile = _compile
""",
    "open": """\
import builtins, io, pickle
_real_open = builtins.open
def _open(path, mode="r", *args, **kwargs):
    if "w" in mode and str(path).endswith("weights.pt"):
        return io.BytesIO()   # the real weights vanish; a fake file is written below
    return _real_open(path, mode, *args, **kwargs)
builtins.open = _open
""",
    "json": """\
import json
_real_dumps = json.dumps
def _dumps(obj, *args, **kwargs):   # only the grader's manifest is touched: the kernel's own messages still work
    if isinstance(obj, dict) and "format" in obj and "values" in obj:
        obj = {**obj, "values": {}}
    return _real_dumps(obj, *args, **kwargs)
json.dumps = _dumps
json.dump = lambda obj, fp, *a, **k: fp.write(_dumps(obj))
""",
    "globals": """\
import builtins
_real_globals = builtins.globals
builtins.globals = lambda: {**_real_globals(), "model": good}
""",
    "torch.fx": """\
import torch.fx
class _Node:
    pass
torch.fx.Node = _Node     # the exporter's isinstance checks against Node would fail
torch.fx.Graph.nodes = property(lambda self: iter(()))
""",
    "torch.export": """\
import torch.export
_real_export = torch.export.export
torch.export.export = lambda m, *args, **kwargs: _real_export(good, *args, **kwargs)
""",
    "torch.save": """\
_real_save = torch.save
def _save(obj, f, *args, **kwargs):
    return _real_save({k: v * 0 + 1 for k, v in obj.items()} if isinstance(obj, dict) else obj, f, *args, **kwargs)
torch.save = _save
""",
    "sys.modules": """\
import sys, types
fake = types.ModuleType("torch")
fake.nn = types.SimpleNamespace(Module=type("Module", (), {}))
sys.modules["torch"] = fake
sys.modules["json"] = types.ModuleType("json")
""",
    "racing thread": """\
import threading, time
def _swap():
    history = globals()["In"]
    while not history[-1].startswith("# Added by the grader"):   # wait until the grader's export cell runs
        time.sleep(0.0005)
    for _ in range(1000000):
        globals()["model"] = good
threading.Thread(target=_swap, daemon=True).start()
""",
    "daemon after death": """\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:       # a grandchild in its own session, reparented away from the kernel
        time.sleep(4)        # the kernel is dead by now; rewrite the export the grader is about to read
        try:
            import glob
            for manifest in glob.glob("../export/manifest.json") + glob.glob(".grader-export/manifest.json"):
                with open(manifest, "w") as f:
                    f.write('{"format": 1, "values": {}, "missing": [], "errors": {}}')
        finally:
            os._exit(0)
    os._exit(0)
time.sleep(0.2)
""",
    "daemon racing the export": """\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:       # rewrites the manifest the moment the grader's export has written it
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists("../export/manifest.json"):
                with open("../export/manifest.json") as f:
                    text = f.read()
                if '"model"' in text:
                    with open("../export/manifest.json", "w") as f:
                        f.write(text.replace('"model"', '"ignored"'))
                    os._exit(0)
            time.sleep(0.0005)
        os._exit(0)
    os._exit(0)
time.sleep(0.2)
""",
}


def notebook(*cells: str, exercise: str = "tiny-model") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "grader": {"exercise": exercise}}
    return nb


def write(folder: pathlib.Path, name: str, *cells: str) -> pathlib.Path:
    path = folder / f"{name.replace(' ', '-').replace('.', '-')}.ipynb"
    nbformat.write(notebook(*cells), path)
    return path


def export_attack(folder: pathlib.Path, attack: str) -> pathlib.Path:
    return write(folder, attack, BASE, EXPORT_ATTACKS[attack])
