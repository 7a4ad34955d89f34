"""Crafted export folders: what a hostile notebook could leave in its export folder for the grader to read.

Each builder starts from a genuine export (``genuine``: a small model written by the kernel's own exporter)
and changes one thing, so every crafted folder is otherwise one the grader would grade.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import threading
import zipfile

import torch
from torch import nn

from grader.kernel.kernel_export import export_values
from grader.loading.exports import load_exports

MODEL = "models/1"  # where the exporter writes the first model


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3))

    def forward(self, x):
        return self.layers(x)


def genuine(folder: pathlib.Path, extra: dict | None = None) -> pathlib.Path:
    """The kernel's own export of ``model`` (a Tiny MLP) and ``lr`` (a number), plus ``extra`` plain values."""
    torch.manual_seed(0)
    values = {"model": Tiny().eval(), "lr": 0.1, **(extra or {})}
    export_values(values, [{"name": "model", "input_shape": [2]}, {"name": "lr"}]
                  + [{"name": k} for k in extra or {}], str(folder))
    return folder


def edit_json(path: pathlib.Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def append_raw(path: pathlib.Path, key: str, raw: str) -> None:
    """Add ``"key": raw`` to the JSON object in ``path``, as text: ``raw`` need not be something json.dumps writes."""
    text = path.read_text().rstrip()
    path.write_text(f"{text[:-1]}, {json.dumps(key)}: {raw}}}")


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def chain_graph(folder: pathlib.Path, calls: list[tuple[str, list]], input_shape=(2,)) -> None:
    """Replace the model's graph by the input followed by ``calls`` (target, args), each fed the previous node."""
    nodes = [{"op": "input", "name": "x", "kind": "USER_INPUT"}]
    previous = "x"
    for i, (target, args) in enumerate(calls):
        filled = [{"ref": previous} if a == "PREV" else a for a in args]
        nodes.append({"op": "call", "name": f"n{i}", "target": target, "args": filled, "kwargs": {}})
        previous = f"n{i}"
    nodes.append({"op": "output", "args": [{"ref": previous}]})
    graph = folder / MODEL / "graph.json"
    edit_json(graph, lambda g: g.update(nodes=nodes, input_shape=list(input_shape)))


def save_tensors(path: pathlib.Path, tensors: dict, compress: bool = False) -> None:
    """torch.save, or (``compress``) the same zip with its members deflated, which torch.save never writes."""
    torch.save(tensors, path)
    if compress:
        with zipfile.ZipFile(path) as plain:
            members = [(info.filename, plain.read(info)) for info in plain.infolist()]
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as packed:
            for name, data in members:
                packed.writestr(name, data)


def unix_socket(path: pathlib.Path) -> socket.socket:
    """A listening unix socket at ``path`` (bound from its folder: socket paths are limited to 108 bytes)."""
    server = socket.socket(socket.AF_UNIX)
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        server.bind(path.name)
    finally:
        os.chdir(here)
    return server


def load_within(folder: pathlib.Path, seconds: float = 60.0):
    """``load_exports(folder)`` in a daemon thread: (exports, None), or (None, why) when it raised or hung."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["exports"] = load_exports(folder)
        except BaseException as e:  # noqa: BLE001 - reported to the test, which fails on it
            outcome["error"] = f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return None, f"load_exports did not return within {seconds} s"
    return outcome.get("exports"), outcome.get("error")
