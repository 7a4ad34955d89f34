"""Watch mode: the model captures of earlier saves, reused while the model's code stays the same.

Capturing a model (torch.export) is most of what a re-check costs beyond the student's cells. In
watch mode the export cell takes a digest of each model's code and of everything that code reads
(``kernel_export._fingerprint``; where it cannot follow a value there is no digest, and the model
is captured). A model whose digest the grader already holds is not captured again: the kernel
writes its tensors, its outputs on a few inputs, and the aten ops (with their literals) its forward
runs on the first. Before the capture is reused, the grader rebuilds it with the new tensors and
runs those inputs through it: any output or op that differs, as it would if the code read something
no digest sees (an environment variable, a method of torch's tensors patched), and the save is run
again with every model captured. Grading (``grader grade``) never reuses a capture.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import torch

from grader.kernel.kernel_export import op_trace, tensors_in
from grader.loading.guard import ExportBudget, LoadRefused, read_json, read_tensors
from grader.loading.model_graph import LoadedModel, ModelLoadError, load_model

MAX_KEPT = 16  # captures kept: a student trying models in turn comes back to a recent one
# What the kernel writes anew for a reused capture.
FRESH_FIELDS = ("class", "input_shape", "trainable", "hooks", "steps", "optimizers", "idle_steps",
                "judged_steps", "carried_steps", "step_lrs", "step_settings", "input_range", "input_ranges",
                "input_rows", "stepped_rows", "loss_calls", "optimizer_restarts", "loaded", "restored_to_start")


@dataclass
class Filled:
    """The reused captures of one export, loaded and checked: what ``load_exports`` then takes as loaded."""

    miss: str = ""  # why a reused capture cannot stand; the save is run again
    models: dict[str, LoadedModel] = field(default_factory=dict)  # by model folder
    keys: dict[str, str] = field(default_factory=dict)  # the digest of each reused capture, by model folder
    budget: ExportBudget = field(default_factory=ExportBudget)  # what loading them took of the folder's limits


@dataclass
class CaptureCache:
    """The graphs of earlier saves' models and of the second kernel's captures, by the digest of their code; one per
    watched notebook."""

    graphs: dict[str, dict] = field(default_factory=dict)
    distrusted: set[str] = field(default_factory=set)  # a reuse of these once computed something else
    beside: bool = True  # a second kernel may capture a save's model while it trains (``grader.grading.speculation``)

    def offered(self) -> list[str]:
        """The digests the next export may reuse."""
        return sorted(self.graphs)

    def fill(self, folder: pathlib.Path) -> Filled:
        """Write the held graph into each model folder that reused one, and load it.

        A reused graph is checked first: rebuilt with the model's new tensors, it must give the outputs the
        model gave in the kernel; ``miss`` says why one does not.
        """
        filled = Filled()
        for path in sorted((folder / "models").glob("*/graph.json")):
            stub = _graph(path)
            if stub.get("reuse") is None:
                continue
            key = str(stub["reuse"])
            held = self.graphs.get(key)
            if held is None:
                return Filled("the export reused a capture the grader does not hold")
            try:  # both halves were read within the loader's limits: the stub now, the held graph when learned
                model = load_model(path.parent, filled.budget, held | {k: stub[k] for k in FRESH_FIELDS if k in stub})
            except ModelLoadError as e:
                return Filled(f"the reused capture could not be loaded ({e})")
            why = _differs(model, path.parent, stub.get("trace"))
            if why:
                self.graphs.pop(key, None)
                self.distrusted.add(key)
                return Filled(why)
            filled.models[path.parent.name] = model
            filled.keys[path.parent.name] = key
        return filled

    def learn(self, folder: pathlib.Path) -> None:
        """Keep each model captured in this export under its digest (not one that reads tensors as constants)."""
        for path in sorted((folder / "models").glob("*/graph.json")):
            graph = _graph(path)
            key = graph.get("key")
            if not isinstance(key, str) or key in self.distrusted or not isinstance(graph.get("nodes"), list):
                continue
            # A constant is a tensor forward() reads that is no parameter or buffer: the kernel writes no such tensor
            # for a reused capture.
            if any(isinstance(n, dict) and n.get("kind") == "CONSTANT_TENSOR" for n in graph["nodes"]):
                continue
            self.graphs.pop(key, None)
            self.graphs[key] = {k: v for k, v in graph.items() if k not in FRESH_FIELDS}
            while len(self.graphs) > MAX_KEPT:
                self.graphs.pop(next(iter(self.graphs)))


def _graph(path: pathlib.Path) -> dict:
    """The graph file as the loader would read it, within its limits; {} where it cannot be (the loader says why)."""
    budget = ExportBudget()
    try:
        graph = read_json(path, budget.limits.max_graph_bytes, "the exported graph (graph.json)", budget)
    except (LoadRefused, OSError):
        return {}
    return graph if isinstance(graph, dict) else {}


def _differs(model: LoadedModel, folder: pathlib.Path, trace: object) -> str:
    """Why the capture ``model`` does not compute what the model computed in the kernel; "" when it does.

    Its outputs on the kernel's inputs must agree, and so must every aten op it runs on the first of them, with its
    literals: a change no output shows (a clamp beyond the inputs' reach, relu written as clamp) shows there.
    """
    try:
        seen = read_tensors(folder / "probe.pt", "the model's outputs (probe.pt)", ExportBudget())
    except (LoadRefused, OSError) as e:
        return f"the reused capture could not be checked ({e})"
    try:
        ran = op_trace(model.module, seen["in.0"])
    except Exception:  # noqa: BLE001 - the held graph failed where the model ran: it is not the model's
        ran = None
    if not isinstance(trace, list) or ran != trace:
        return "the model's operations on 2 inputs differ from the reused capture's"
    for i in range(len([k for k in seen if k.startswith("in.")])):
        expected = [seen[k] for k in sorted((k for k in seen if k.startswith(f"out.{i}.")),
                                            key=lambda k: int(k.rsplit(".", 1)[1]))]
        x = seen.get(f"in.{i}")
        try:
            with torch.no_grad():
                got = tensors_in(model.module(x)) if x is not None else []
        except Exception:  # noqa: BLE001 - a graph that fixed its batch size refuses this one, as the model did
            got = []
        if len(got) != len(expected) or not all(_close(a, b) for a, b in zip(got, expected)):
            return f"the model's outputs on {len(x) if x is not None else 0} inputs differ from the reused capture's"
    return ""


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    # The rebuilt graph runs the same aten ops as the model did: only the order of float sums may differ.
    return a.shape == b.shape and a.dtype == b.dtype and torch.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
