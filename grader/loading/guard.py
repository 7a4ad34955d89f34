"""The limits within which the grader's own process reads an export folder and runs a rebuilt model.

The kernel wrote the export folder, so a notebook decides everything in it. Reading it must end quickly,
in bounded memory, whatever it holds:

- the folder is listed with ``lstat`` before anything is opened: a symbolic link, a FIFO, a device or a
  socket anywhere in it refuses the whole export (a FIFO would block ``open``, a link could point the grader
  at its own files), as do more entries, more depth or more bytes than ``LoadLimits`` allows;
- files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with ``fstat``, so a file swapped
  for a link or a pipe after the listing is refused too, and never blocks;
- JSON is parsed within limits on values, nesting and integer digits (``grader.kernel.untrusted``);
- weights must be torch.save's uncompressed zip (a deflated member could expand far past the file's size),
  and hold plain, contiguous CPU tensors; all tensors of one export together are bounded in elements;
- a rebuilt model's forward pass is first run on fake tensors (shapes only, no data and no memory) at the
  largest batch the grader feeds a model at once: what it would hold in memory, the numbers it would
  compute and its multiplications are bounded before it ever runs on real data.

The limits are constants, not per exercise: they protect the machine that grades, whatever the exercise.
With them the grader's peak memory for one submission stays under ``LoadLimits.memory_mb`` on top of the
exercise's data (``tests/test_hostile_input.py`` measures it on crafted exports).
"""

from __future__ import annotations

import os
import pathlib
import stat
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from grader.kernel import untrusted
from grader.kernel.untrusted import JsonLimits
from grader.specs.paths import entry_kind

MB = 2**20


@dataclass(frozen=True)
class LoadLimits:
    """What one export folder may hold, and what a model rebuilt from it may cost to run."""

    memory_mb: int = 1024  # the grader's peak for one submission, on top of the exercise's data
    max_export_bytes: int = 256 * MB  # all files of the folder together
    max_entries: int = 10_000  # files and folders in it
    max_folder_depth: int = 6  # the exporter writes models/<n>/<file>: depth 3
    max_manifest_bytes: int = 16 * MB
    max_graph_bytes: int = 4 * MB
    json: JsonLimits = field(default_factory=JsonLimits)  # each JSON file
    max_json_values: int = 2_000_000  # all JSON files together (a parsed value takes 30-250 bytes)
    max_models: int = 64  # the course's exercises export at most a few
    max_nodes: int = 5_000  # operations in one model's graph; a course model has a few dozen
    max_total_nodes: int = 20_000  # in all the models together
    max_tensor_elements: int = 2**25  # all tensors of one export (weights, initial weights): 33.5 million
    forward_batch: int = 4096  # the largest batch the grader feeds a model at once (LoadedModel.predict)
    max_forward_mb: int = 512  # tensors alive at once in one forward pass of ``forward_batch`` samples
    max_forward_elements: int = 2**33  # numbers computed in that pass (a time bound for element-wise ops)
    max_forward_flops: int = 2**38  # floating-point operations in that pass (torch's FlopCounterMode)


LOAD_LIMITS = LoadLimits()


class LoadRefused(ValueError):
    """A file of the export breaks a limit or is not a regular file; the message is meant for the student."""


def scan_export(folder: pathlib.Path, limits: LoadLimits = LOAD_LIMITS) -> int:
    """Total bytes of the regular files under ``folder``, listed without following or opening anything.

    Raises LoadRefused naming the first entry that is not a plain file or folder, or the limit broken.
    """
    total, entries, stack = 0, 0, [(folder, 0)]
    while stack:
        path, depth = stack.pop()
        if depth > limits.max_folder_depth:
            raise LoadRefused(f"the export folder is nested more than {limits.max_folder_depth} folders deep")
        with os.scandir(path) as listing:
            for entry in listing:
                entries += 1
                if entries > limits.max_entries:
                    raise LoadRefused(f"the export folder holds more than {limits.max_entries:,} files")
                info = entry.stat(follow_symlinks=False)
                kind = entry_kind(info.st_mode)
                if kind == "a symbolic link":
                    # A link could point the grader at its own files (secret, gradebook); read nothing.
                    raise LoadRefused("the export folder contains symbolic links, which the grader does not follow")
                if kind:
                    raise LoadRefused(f"the export folder holds {_shown(folder, entry.path)}, which is {kind}: the "
                                      "grader reads only regular files there")
                if entry.is_dir(follow_symlinks=False):
                    stack.append((pathlib.Path(entry.path), depth + 1))
                else:
                    total += info.st_size
    if total > limits.max_export_bytes:
        raise LoadRefused(f"the exported files hold {total / MB:.0f} MB together; the grader reads at most "
                          f"{limits.max_export_bytes // MB} MB")
    return total


def _shown(folder: pathlib.Path, path: str) -> str:
    name = os.path.relpath(path, folder)
    return repr(name.encode("utf-8", "backslashreplace").decode("utf-8"))[:200]


def open_regular(path: pathlib.Path, max_bytes: int, what: str):
    """``path`` opened for reading in binary mode: never through a link, never blocking, only a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as e:  # ELOOP: a link
        raise LoadRefused(f"{what} could not be opened as a regular file ({e.strerror})") from None
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        f.close()
        raise LoadRefused(f"{what} is {entry_kind(info.st_mode) or 'a folder'}, not a regular file")
    if info.st_size > max_bytes:
        f.close()
        raise LoadRefused(f"{what} is larger than {max_bytes // MB} MB")
    return f


def read_json(path: pathlib.Path, max_bytes: int, what: str, budget: ExportBudget) -> Any:
    """The JSON in ``path``; LoadRefused when it breaks a limit or is not JSON (FileNotFoundError passes)."""
    with open_regular(path, max_bytes, what) as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise LoadRefused(f"{what} is larger than {max_bytes // MB} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LoadRefused(f"{what} is not valid JSON (not UTF-8 text)") from None
    count = untrusted.count_upper_bound(text)
    budget.take("json_values", count, f"{what}, with up to {count:,} JSON values,")
    try:
        return untrusted.loads(text, budget.limits.json)
    except untrusted.JsonLimitError as e:
        raise LoadRefused(f"{what} {e}") from None


# What ExportBudget counts: (the LoadLimits field that bounds it, how a message names it).
BUDGETED = {"json_values": ("max_json_values", "JSON values"), "models": ("max_models", "models"),
            "nodes": ("max_total_nodes", "graph operations"), "elements": ("max_tensor_elements", "tensor elements")}


@dataclass
class ExportBudget:
    """What one export folder has loaded so far, shared by all its files and models, against ``limits``."""

    limits: LoadLimits = LOAD_LIMITS
    used: dict[str, int] = field(default_factory=dict)

    def take(self, kind: str, count: int, what: str) -> None:
        field_name, noun = BUDGETED[kind]
        limit = getattr(self.limits, field_name)
        total = self.used.get(kind, 0) + count
        if total > limit:
            raise LoadRefused(f"{what} would take the export past {limit:,} {noun} in all; the grader loads no more")
        self.used[kind] = total


ALLOWED_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                            torch.int16, torch.int32, torch.int64, torch.bool})


def _check_zip(f, max_bytes: int, what: str) -> None:
    """torch.save's format: an uncompressed zip whose members fit in ``max_bytes`` once read."""
    try:
        members = zipfile.ZipFile(f).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise LoadRefused(f"{what} could not be read safely: it is not in torch.save's format") from None
    if any(m.compress_type != zipfile.ZIP_STORED for m in members):
        raise LoadRefused(f"{what} could not be read safely: it is compressed, which torch.save never does, so "
                          "the grader does not expand it")
    if sum(m.file_size for m in members) > max_bytes:
        raise LoadRefused(f"{what} is larger than {max_bytes // MB} MB")
    f.seek(0)


def read_tensors(path: pathlib.Path, what: str, budget: ExportBudget) -> dict[str, torch.Tensor]:
    """A dict of plain tensors saved with torch.save, loaded with ``weights_only=True`` and checked one by one."""
    max_bytes = budget.limits.max_export_bytes
    with open_regular(path, max_bytes, what) as f:
        _check_zip(f, max_bytes, what)
        try:
            weights = torch.load(f, weights_only=True, map_location="cpu")
        except Exception as e:  # noqa: BLE001 - any unpickling refusal is a malformed export
            raise LoadRefused(f"{what} could not be read safely: {type(e).__name__}") from None
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise LoadRefused(f"{what} does not hold a plain dict of tensors")
    for name, tensor in weights.items():
        if (tensor.layout != torch.strided or tensor.device.type != "cpu" or tensor.dtype not in ALLOWED_DTYPES
                or not tensor.is_contiguous()):
            # The exporter writes contiguous CPU tensors; a strided view could claim far more elements than it stores.
            raise LoadRefused(f"{what} holds {name[:100]!r}, which is not a plain contiguous tensor")
        budget.take("elements", tensor.numel(), f"{what} ({name[:100]!r}: {tensor.numel():,} elements)")
    return weights


def model_input(graph: dict, limits: LoadLimits = LOAD_LIMITS) -> tuple[tuple[int, ...], int | None]:
    """A graph's (input shape, fixed batch size or None), each small positive ints: they size what the grader makes."""
    shape, batch = graph.get("input_shape", []), graph.get("batch")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(n) is int and 0 < n <= 2**20 for n in shape):
        raise LoadRefused("the exported graph's input shape is not a list of a few positive whole numbers")
    if batch is not None and not (type(batch) is int and 0 < batch <= limits.forward_batch):
        raise LoadRefused(f"the exported graph's batch size must be a whole number from 1 to {limits.forward_batch}")
    return tuple(shape), batch


# --- the cost of one forward pass, measured on fake tensors -------------------------------------------------


class _Meter(fx.Interpreter):
    """Runs a graph on fake tensors, counting what each operation would allocate and compute."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.sizes: dict[fx.Node, int] = {}
        self.live = self.peak = self.elements = 0

    def run_node(self, node: fx.Node) -> Any:
        out = super().run_node(node)
        if node.op == "call_function":
            tensors = [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor)]
            self.elements += sum(t.numel() for t in tensors) + sum(
                n.meta.get("_numel", 0) for n in node.all_input_nodes)
            node.meta["_numel"] = sum(t.numel() for t in tensors)
            view = getattr(node.target, "is_view", False)  # a view allocates nothing
            self.sizes[node] = 0 if view else sum(t.numel() * t.element_size() for t in tensors)
            self.live += self.sizes[node]
            self.peak = max(self.peak, self.live)
        for done in self.user_to_last_uses.get(node, []):
            self.live -= self.sizes.pop(done, 0)
        return out


@dataclass(frozen=True)
class ForwardCost:
    batch: int
    peak_bytes: int  # tensors alive at once
    elements: int  # numbers read and written by all operations
    flops: int


class _Costs:
    """Forward costs already measured, by what a fake run can see: the graph's code and its tensors' shapes.

    A fake run reads no values, so two models with the same key cost the same: a watched notebook's next
    save, or the next student of a class with the course's architecture, skips the measurement (15 ms).
    """

    def __init__(self, size: int = 256) -> None:
        self.size, self.known, self.lock = size, {}, threading.Lock()

    @staticmethod
    def key(module: fx.GraphModule, input_shape: tuple[int, ...], batch: int) -> tuple:
        tensors = [*module.named_parameters(), *module.named_buffers()]
        return (module.code, tuple((name, tuple(t.shape), t.stride(), t.dtype) for name, t in tensors),
                tuple(input_shape), batch)

    def measured(self, key: tuple, measure: Callable[[], ForwardCost]) -> ForwardCost:
        """The cost kept under ``key``, or ``measure()``'s, kept (the oldest goes past ``size``)."""
        with self.lock:
            if key in self.known:
                return self.known[key]
        cost = measure()
        with self.lock:
            if len(self.known) >= self.size:
                self.known.pop(next(iter(self.known)))
            self.known[key] = cost
        return cost


_COSTS = _Costs()


def forward_cost(module: fx.GraphModule, input_shape: tuple[int, ...], batch: int) -> ForwardCost:
    """What one forward pass of ``batch`` samples would cost, measured without running it on data."""
    return _COSTS.measured(_COSTS.key(module, input_shape, batch), lambda: _measure(module, input_shape, batch))


def float_type(module: torch.nn.Module) -> torch.dtype | None:
    """The one float type of a module's tensors, which its input gets: a model kept in float64 (trained so, say)
    runs on the grader's float32 data in its own type; None where it has none or several."""
    kinds = {t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()}
    return kinds.pop() if len(kinds) == 1 else None


def _measure(module: fx.GraphModule, input_shape: tuple[int, ...], batch: int) -> ForwardCost:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    meter = _Meter(module)
    with FakeTensorMode(allow_non_fake_inputs=True), FlopCounterMode(display=False) as flops:
        # A fake tensor: shapes only, nothing allocated; in the model's own float type, as the grader runs it.
        meter.run(torch.empty(batch, *input_shape, dtype=float_type(module) or torch.float32))
    for node in module.graph.nodes:
        node.meta.pop("_numel", None)
    return ForwardCost(batch, meter.peak, meter.elements, int(flops.get_total_flops()))


def eval_batch(module: torch.nn.Module, limits: LoadLimits = LOAD_LIMITS) -> int:
    """The most samples the grader feeds ``module`` at once: ``forward_batch``, fewer for a model kept in a wider
    float type than float32 (it runs in its own), so a pass holds no more than a float32 model's would."""
    kind = float_type(module)
    width = torch.finfo(kind).bits // 8 if kind is not None else 4
    return max(1, limits.forward_batch * 4 // max(4, width))


def check_forward(module: fx.GraphModule, input_shape: tuple[int, ...], static_batch: int | None,
                  limits: LoadLimits = LOAD_LIMITS) -> None:
    """Raise LoadRefused when a forward pass would cost more than ``limits`` allow, or cannot be measured.

    A model with a free batch size is measured at 2 samples and at the batch it is fed (``eval_batch``); one that
    fixed its batch at that batch; each scaled to the calls that ``forward_batch`` samples take.
    """
    batches = (static_batch,) if static_batch else (2, eval_batch(module, limits))
    for batch in batches:
        try:
            cost = forward_cost(module, input_shape, batch)
        except Exception as e:  # noqa: BLE001 - whatever fails on shapes alone would fail, or be unbounded, on data
            raise LoadRefused(f"the grader could not work out in advance what the model's forward pass computes "
                              f"on a batch of {batch} ({type(e).__name__}: {str(e)[:200]}); a forward pass whose "
                              "tensor sizes depend on the data (`.item()`, `int(tensor)`) cannot be graded") from None
        calls = max(1, limits.forward_batch // batch) if static_batch or batch > 2 else 1
        _compare(cost, calls, limits)


def _compare(cost: ForwardCost, calls: int, limits: LoadLimits) -> None:
    samples = f"a batch of {cost.batch} samples"
    if cost.peak_bytes > limits.max_forward_mb * MB:
        raise LoadRefused(f"the model's forward pass would hold {cost.peak_bytes / MB:,.0f} MB of tensors at once on "
                          f"{samples}; the grader allows {limits.max_forward_mb:,} MB")
    if cost.elements * calls > limits.max_forward_elements:
        raise LoadRefused(f"the model's forward pass would compute {cost.elements * calls:,} numbers for "
                          f"{limits.forward_batch} samples; the grader allows {limits.max_forward_elements:,}")
    if cost.flops * calls > limits.max_forward_flops:
        raise LoadRefused(f"the model's forward pass would take {cost.flops * calls:,} floating-point operations for "
                          f"{limits.forward_batch} samples; the grader allows {limits.max_forward_flops:,}")
