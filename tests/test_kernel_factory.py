"""The pre-warmed kernel factory: forked kernels are as isolated from each other as fresh ones.

Two submissions forked one after the other from the same factory: the second sees nothing the
first did (globals, patched modules, files, environment, thread settings), every random generator
starts from fresh entropy, the parent forks only while single-threaded, and a lost factory means a
fresh launch (with the reason recorded), never a lost grade.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import nbformat
import pytest
from grading_support import kernel_factory, one_value_spec, process_children, run_as_nobody, student

from grader.assignments.catalog import load_spec_file
from grader.grading.engine import run_notebook
from grader.kernel import sandbox_files
from grader.kernel.factory import ZYGOTE, FactoryHandle, start_factory
from grader.kernel.notebook import read_submission

SPEC = one_value_spec("probe", cell_timeout_s=60, total_timeout_s=120)

# Everything one submission could leave behind for the next, then what the next one sees.
MEDDLE = """
import json, os, random, sys, pathlib, types
import numpy, torch
left_behind = "first"
sys.modules["json"].dumps_original = json.dumps
sys.modules["evil_module"] = types.ModuleType("evil_module")
pathlib.Path("left.txt").write_text("x")
pathlib.Path(os.environ["TMPDIR"], "left.txt").write_text("x")
os.environ["LEFT_BEHIND"] = "1"
torch.set_num_threads(2)
"""
LOOK = """
import json, os, random, sys, pathlib, tempfile, threading
import numpy, torch
from torch._inductor import codecache
with tempfile.NamedTemporaryFile() as f:  # where a fresh kernel's tempfile writes: the sandbox's own TMPDIR
    temp = f.name.startswith(os.environ["TMPDIR"] + os.sep)
probe = {
    "temp folder": temp and tempfile.gettempdir() == os.environ["TMPDIR"],
    # where torch.compile precompiles its C++ headers: a folder named when the factory imported inductor
    "compile headers": getattr(codecache, "_HEADER_DIR", os.environ["TMPDIR"]).startswith(os.environ["TMPDIR"]),
    "global": "left_behind" in globals(),
    "patched json": hasattr(sys.modules["json"], "dumps_original"),
    "evil module": "evil_module" in sys.modules,
    "files": sorted(p.name for p in pathlib.Path(".").iterdir() if p.name.startswith("left")),
    "tmp files": sorted(os.listdir(os.environ["TMPDIR"])),
    "env": "LEFT_BEHIND" in os.environ,
    "torch threads": torch.get_num_threads(),
    "random": random.random(),
    "numpy": float(numpy.random.random()),
    "torch": float(torch.rand(1)),
    "torch seed": torch.initial_seed(),
    "pid": os.getpid(),
}
"""


def _notebook(folder: pathlib.Path, name: str, *cells: str) -> pathlib.Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    return path


@pytest.fixture(scope="module")
def factory():
    with start_factory() as warm:
        assert warm.ready, warm.reason
        yield warm


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe-spec") / "probe"
    folder.mkdir()
    (folder / "spec.toml").write_text(SPEC)
    return load_spec_file(folder / "spec.toml")


def _probe(path: pathlib.Path, spec, handle: FactoryHandle | None):
    run = run_notebook(read_submission(path), spec, factory=handle)
    assert run.exports.found, run.execution.reason
    return run, run.exports.values["probe"]


def test_a_forked_kernel_sees_nothing_of_the_one_before_it(factory, spec, tmp_path):
    first, _ = _probe(_notebook(tmp_path, "first", MEDDLE, LOOK), spec, factory.handle)
    second, seen = _probe(_notebook(tmp_path, "second", LOOK), spec, factory.handle)
    assert first.sandbox["kernel_start"] == second.sandbox["kernel_start"] == "forked from the pre-warmed factory"
    assert seen == seen | {"global": False, "patched json": False, "evil module": False, "files": [],
                           "tmp files": [], "env": False, "torch threads": 1, "temp folder": True,
                           "compile headers": True}


def test_every_forked_kernel_draws_fresh_random_numbers(factory, spec, tmp_path):
    draws = [_probe(_notebook(tmp_path, f"n{i}", LOOK), spec, factory.handle)[1] for i in range(2)]
    for generator in ("random", "numpy", "torch", "torch seed"):
        assert draws[0][generator] != draws[1][generator], generator


def test_a_forked_kernel_s_collections_leave_the_objects_it_shares_with_the_factory_alone(factory, spec, tmp_path):
    """The factory freezes what its imports made before its first fork: a kernel's garbage collections never walk those
    objects, which would copy every page it shares with the factory, and walk only what the kernel made itself."""
    cell = "import gc, torch\ngc.collect()\nprobe = {'frozen': gc.get_freeze_count(), 'walked': len(gc.get_objects())}"
    _, seen = _probe(_notebook(tmp_path, "collects", cell), spec, factory.handle)
    assert seen["frozen"] > 100_000 and seen["walked"] < seen["frozen"] / 10, seen


def test_no_kernel_can_change_the_font_list_the_factory_keeps_between_batches(factory, spec, tmp_path):
    fonts = sandbox_files.font_cache()
    assert fonts is not None and any(fonts.glob("fontlist-*.json")), "the factory built its font list there"
    before = {p.name: p.read_bytes() for p in fonts.iterdir()}
    cell = f"""
import io, pathlib
import matplotlib.pyplot as plt
folder = pathlib.Path({str(fonts)!r})
try:
    (folder / "fontlist-v3.11.0.json").write_text("{{}}")
    (folder / "planted.json").write_text("{{}}")
    wrote = True
except OSError:
    wrote = False
plt.figure(); plt.title("fonts still load"); plt.savefig(io.BytesIO(), format="png")
probe = {{"wrote": wrote}}
"""
    run, seen = _probe(_notebook(tmp_path, "fonts", cell), spec, factory.handle)
    assert seen == {"wrote": False}
    assert {p.name: p.read_bytes() for p in fonts.iterdir()} == before


def test_an_mnist_exercise_s_kernels_find_torchvision_imported_and_nothing_of_the_reference(spec, tmp_path):
    """The exercises on MNIST read it through torchvision's datasets: their factory imports torchvision, after the
    workaround that import needs on this machine, so that no kernel pays the import; it still loads no module of the
    reference or of the grader, and torchvision's compiled ops still fail with torchvision's own message."""
    cell = """
import sys
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"torchvision", "reference", "grader"})
import numpy, torch
from torchvision import datasets, transforms, ops
try:
    ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
    nms = "ran"  # a torchvision whose compiled ops load
except RuntimeError as e:
    nms = str(e)
probe = {"loaded": loaded, "image": list(transforms.ToTensor()(numpy.zeros((28, 28), numpy.uint8)).shape),
         "dataset": datasets.MNIST.__name__, "nms": nms[:80]}
"""
    assert kernel_factory(reads_mnist=False) != kernel_factory(reads_mnist=True)
    run, seen = _probe(_notebook(tmp_path, "mnist", cell), spec, kernel_factory(reads_mnist=True))
    assert run.sandbox["kernel_start"] == "forked from the pre-warmed factory"
    assert seen["loaded"] == ["torchvision"]
    assert seen["image"] == [1, 28, 28] and seen["dataset"] == "MNIST"
    assert seen["nms"] == "ran" or seen["nms"].startswith("Couldn't load custom C++ ops"), seen["nms"]


def test_only_an_exercise_on_mnist_has_its_factory_import_torchvision(tmp_path):
    import argparse

    from grader.commands.check import _on_mnist
    from grader.kernel.factory import PRELOAD, preload_for
    from grader.specs.paths import SPEC_FILE, exercises_root
    from grader.specs.spec import exercise_reads_mnist, reads_mnist

    on_mnist = {spec.parent.name for spec in exercises_root().glob(f"*/{SPEC_FILE}") if reads_mnist(spec)}
    assert on_mnist == {"mnist-sgd", "mnist-adam", "lr-sweep"}
    assert preload_for(True) == (*PRELOAD, "torchvision") and preload_for(False) == PRELOAD
    assert not reads_mnist(tmp_path / "no-such-spec.toml")
    assert exercise_reads_mnist("lr-sweep") and not exercise_reads_mnist("tiny-model")
    assert not any(map(exercise_reads_mnist, (None, "", "..", "../exercises/mnist-sgd", "no-such-exercise")))
    # `grader check --watch` tells from the notebook's own metadata, before it has loaded the exercise
    watched = [_on_mnist(argparse.Namespace(exercise=None, notebook=student(name)))
               for name in ("mnist-adam", "early-stopping")]
    assert watched == [True, False]
    assert not _on_mnist(argparse.Namespace(exercise=None, notebook=tmp_path / "missing.ipynb"))


def test_without_the_factory_the_kernel_starts_fresh_and_says_why(factory, spec, tmp_path):
    run, seen = _probe(_notebook(tmp_path, "alone", LOOK), spec, FactoryHandle(None, "turned off (--no-factory)"))
    assert run.sandbox["kernel_start"] == "fresh launch: turned off (--no-factory)"
    assert seen["torch threads"] == 1


def test_a_lost_factory_means_a_fresh_launch_not_a_lost_grade(spec, tmp_path):
    with start_factory() as doomed:
        handle = doomed.handle
        doomed.process.kill()
        doomed.process.wait()
        run, _ = _probe(_notebook(tmp_path, "orphan", LOOK), spec, handle)
    assert run.sandbox["kernel_start"].startswith("fresh launch: the factory could not be used")


def test_a_notebook_that_exits_as_a_lost_factory_would_is_still_its_own_error(factory, spec, tmp_path):
    """Exit code 70 is also what the client gives when the factory is lost: from a notebook, with the factory alive
    and the kernel's end reported, it stays the notebook's outcome (``execute._machinery_lost``)."""
    from grader.kernel.factory_client import FACTORY_LOST

    path = _notebook(tmp_path, "exits", f"import os\nos.write(2, b'{FACTORY_LOST} forged\\n')\nos._exit(70)")
    run = run_notebook(read_submission(path), spec, factory=factory.handle)
    assert run.execution.machinery_lost == ""
    assert "the kernel died (exit code 70)" in run.execution.reason


def test_the_factory_refuses_to_fork_once_a_thread_is_running(tmp_path):
    (tmp_path / "starts_a_thread.py").write_text("import threading, time\n"
                                                 "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    done = subprocess.run([sys.executable, str(ZYGOTE), str(tmp_path / "s.sock"), json.dumps(["starts_a_thread"])],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    status = (tmp_path / "status").read_text()
    assert done.returncode == 3 and status.startswith("refused: 2 threads"), status + done.stderr
    assert not (tmp_path / "s.sock").exists()


def test_the_warm_parent_itself_is_single_threaded(factory):
    assert len(os.listdir(f"/proc/{factory.process.pid}/task")) == 1
    time.sleep(0.2)  # and stays so while it serves
    assert len(os.listdir(f"/proc/{factory.process.pid}/task")) == 1


AS_NOBODY = r"""
import json, pathlib, sys
import nbformat
from grader.assignments.catalog import load_spec_file
from grader.grading.engine import run_notebook
from grader.kernel.factory import start_factory
from grader.kernel.notebook import read_submission

folder = pathlib.Path(sys.argv[1])
meddle, look = json.loads(sys.argv[2])
spec = load_spec_file(folder / "probe" / "spec.toml")
seen = []
with start_factory() as factory:
    assert factory.ready, factory.reason
    for name, cells in (("first", [meddle, look]), ("second", [look])):
        path = folder / f"{name}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
        run = run_notebook(read_submission(path), spec, factory=factory.handle)
        seen.append({"start": run.sandbox["kernel_start"], "pid_namespace": run.sandbox["pid_namespace"],
                     "probe": run.exports.values.get("probe"), "reason": run.execution.reason})
print(json.dumps(seen))
"""


def test_forked_kernels_are_isolated_when_the_grader_is_not_root():
    first, second = json.loads(run_as_nobody(AS_NOBODY, SPEC, json.dumps([MEDDLE, LOOK])))
    assert first["start"] == second["start"] == "forked from the pre-warmed factory", (first, second)
    seen = second["probe"]
    assert seen == seen | {"global": False, "patched json": False, "evil module": False, "files": [],
                           "tmp files": [], "env": False, "torch threads": 1, "temp folder": True,
                           "compile headers": True}
    assert first["probe"]["random"] != seen["random"] and first["probe"]["torch seed"] != seen["torch seed"]


def _children(pid: int) -> list[int]:
    return process_children().get(pid, [])


def test_a_kernel_started_before_its_notebook_is_as_fresh_as_any(factory, spec, tmp_path):
    """Watch mode starts the next kernel while the student edits: it still runs one notebook, and sees nothing."""
    from grader.grading.engine import run_next

    def later(path: pathlib.Path):
        def wait():
            time.sleep(0.5)  # the student is still typing: the kernel is up and waits
            return read_submission(path)
        return wait

    first = run_next(later(_notebook(tmp_path, "first", MEDDLE, LOOK)), spec, factory=factory.handle)
    second = run_next(later(_notebook(tmp_path, "second", LOOK)), spec, factory=factory.handle)
    assert second.sandbox["kernel_start"] == "forked from the pre-warmed factory, before the save"
    assert second.execution.timings["waited"] >= 0.5  # it did wait, started, for its notebook
    assert first.exports.values["probe"]["torch seed"] != second.exports.values["probe"]["torch seed"]
    seen = second.exports.values["probe"]
    assert seen == seen | {"global": False, "patched json": False, "evil module": False, "files": [],
                           "tmp files": [], "env": False, "torch threads": 1, "temp folder": True,
                           "compile headers": True}


SEEN_BY_THE_NOTEBOOK = """
import gc
gc.collect()
probe = {"names": sorted(n for n in globals() if not n.startswith("_") or n.startswith("_grader")),
         "execution count": get_ipython().execution_count, "history": len(In),
         "first forwards recorded": len(_grader_probe["INITIAL"]._items),
         "optimizer steps recorded": len(_grader_probe["STEPS"]._items)}
"""


def test_the_head_start_a_waiting_kernel_takes_leaves_the_notebook_nothing_to_see(factory, spec, tmp_path):
    """While it waits, the kernel runs a throwaway training step (``kernel_warm``): no name, history or record stays."""
    from grader.grading.engine import run_next

    path = _notebook(tmp_path, "seen", SEEN_BY_THE_NOTEBOOK)
    waited = run_next(lambda: time.sleep(0.3) or read_submission(path), spec, factory=factory.handle)
    plain = run_notebook(read_submission(path), spec, factory=factory.handle)
    assert waited.sandbox["kernel_start"].endswith("before the save")
    assert waited.exports.values["probe"] == plain.exports.values["probe"]
    assert waited.exports.values["probe"]["optimizer steps recorded"] == 0


def test_a_kernel_that_dies_while_it_waits_is_replaced_and_the_notebook_still_runs(factory, spec, tmp_path):
    from grader.grading.engine import run_next

    path = _notebook(tmp_path, "late", LOOK)

    def wait():
        forked = _children(factory.process.pid)
        assert forked  # the kernel is up before the notebook comes
        for pid in [*(k for f in forked for k in _children(f)), *forked]:  # the kernel, then its launcher
            os.kill(pid, 9)  # the machine's OOM killer, say
        return read_submission(path)

    run = run_next(wait, spec, factory=factory.handle)
    assert run.exports.found, run.execution.reason
    assert run.sandbox["kernel_start"] == "forked from the pre-warmed factory"  # a new one, after the save


def test_no_notebook_coming_leaves_no_kernel(factory, spec):
    from grader.grading.engine import run_next

    assert run_next(lambda: None, spec, factory=factory.handle) is None
    deadline = time.monotonic() + 10
    while _children(factory.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children(factory.process.pid) == []


KILLED_MIDWAY = """
import pathlib, sys, threading, time
from grader.assignments.catalog import load_spec_file
from grader.grading.engine import run_next
from grader.kernel.factory import start_factory
spec = load_spec_file(pathlib.Path(sys.argv[1]))
factory = start_factory().__enter__()
threading.Thread(target=run_next, args=(lambda: time.sleep(600), spec), kwargs={"factory": factory.handle},
                 daemon=True).start()
print(factory.process.pid, factory.folder, flush=True)
time.sleep(600)
"""


def test_a_grader_killed_while_its_kernel_waits_leaves_no_kernel_behind(spec, tmp_path):
    """The grader dies (SIGKILL, so nothing of it cleans up) while a kernel forked for it waits for its notebook: the
    factory, told by the kernel of the grader's death, kills the kernels it forked and removes its folder before it
    goes."""
    import signal

    spec_file = tmp_path / "probe"
    spec_file.mkdir()
    (spec_file / "spec.toml").write_text(SPEC)
    grader = subprocess.Popen([sys.executable, "-c", KILLED_MIDWAY, str(spec_file / "spec.toml")],
                              stdout=subprocess.PIPE, text=True, cwd=pathlib.Path(__file__).resolve().parent.parent)
    try:
        pid, folder = grader.stdout.readline().split()
        factory = int(pid)
        deadline = time.monotonic() + 60
        while not _children(factory) and time.monotonic() < deadline:  # the kernel's launcher, forked for it
            time.sleep(0.1)
        forked = _children(factory)
        assert forked
        kernels = forked + [k for f in forked for k in _children(f)]
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
        grader.stdout.close()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in [factory, *kernels]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in [factory, *kernels] if _alive(pid)] == []
    assert not pathlib.Path(folder).exists()


def _alive(pid: int) -> bool:
    from grader.kernel.cgroups import ended

    return not ended(pid)
