"""A notebook that patches what the grader's export runs gets at most what its real model earns.

The real model is ``model`` as the notebook holds it after its last cell; every attack tries to have
``good`` (or nothing checkable) written instead. The fair outcome: whatever is exported is ``model``
itself, or nothing, and the score never exceeds the honest notebook's.
"""

from __future__ import annotations

import sys
import pathlib

import pytest
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from grading_support import kernel_factory  # noqa: E402
from hostile import BASE, EXPORT_ATTACKS, export_attack, write  # noqa: E402

from grader.assignments.catalog import load_exercise  # noqa: E402
from grader.grading.engine import run_notebook, score  # noqa: E402
from grader.kernel.notebook import read_submission  # noqa: E402


def real_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(2, 3)).state_dict()


def graded(path: pathlib.Path):
    """Run and scored as a batch runs it: the kernel forked from a warm factory (the sealed export is the same code
    in a fresh kernel)."""
    exercise = load_exercise("tiny-model")
    submission = read_submission(path)
    run = run_notebook(submission, exercise, factory=kernel_factory())
    return run, score(run, submission, exercise, path.stem)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    return graded(write(tmp_path_factory.mktemp("honest"), "honest", BASE))


def test_the_honest_weak_notebook_exports_its_own_model(honest):
    run, result = honest
    exported = run.exports.values["model"]
    assert all(torch.equal(exported.parameters[k], v) for k, v in real_weights().items())
    assert result.score < result.max_score


# Attacks the sealed exporter ignores: it writes the real model all the same. The others (a compile() that
# rewrites every later cell's source, including the export cell's; torch.fx's own classes rewritten) break the
# capture itself: nothing usable is written, and the notebook scores no more than its honest twin.
IGNORED = {"exec", "open", "json", "globals", "torch.export", "torch.save", "sys.modules", "racing thread",
           "daemon after death"}


@pytest.mark.parametrize("attack", list(EXPORT_ATTACKS))
def test_a_patched_export_writes_the_real_model_or_nothing(attack, honest, tmp_path):
    run, result = graded(export_attack(tmp_path, attack))
    exported = run.exports.values.get("model")
    if attack in IGNORED:
        assert hasattr(exported, "parameters"), f"{attack}: {exported!r}"
    if hasattr(exported, "parameters"):
        assert all(torch.equal(exported.parameters[k], v) for k, v in real_weights().items()), \
            f"{attack}: the export wrote another model than the notebook's"
    assert result.score <= honest[1].score, f"{attack}: {[(c.id, c.points, c.message) for c in result.checks]}"


THREADS = """
import threading, sys
namespace = {"__name__": "grader_export"}
exec(compile(open(sys.argv[1]).read(), "grader_export.py", "exec"), namespace)
namespace["seal"]({})  # the threads alive now are the kernel's own, never stopped
def busy():
    while True:
        sum(range(100))
def stubborn():  # catches the grader's SystemExit and computes on
    while True:
        try:
            while True:
                sum(range(100))
        except SystemExit:
            pass
timer = threading.Event()
threads = [threading.Thread(target=timer.wait, args=(600,), name="asleep", daemon=True),
           threading.Thread(target=busy, name="busy", daemon=True)]
for t in threads:
    t.start()
print(namespace["_stop_student_threads"](600), [t.name for t in threads if t.is_alive()], flush=True)
threading.Thread(target=stubborn, name="stubborn", daemon=True).start()
print(namespace["_stop_student_threads"](0.5), flush=True)
"""


def test_the_export_stops_computing_threads_and_does_not_wait_for_sleeping_ones(tmp_path):
    """A progress bar's monitor asleep on its timer is left to die when it wakes (its SystemExit comes first), so the
    export does not wait out its budget; a thread that computes is stopped; one that will not stop is named."""
    import subprocess

    from grader.kernel.cells import KERNEL_EXPORT

    script = tmp_path / "threads.py"
    script.write_text(THREADS)
    done = subprocess.run([sys.executable, str(script), str(KERNEL_EXPORT)], capture_output=True, text=True,
                          timeout=120)  # far below the 600 s the sleeping thread would cost if it were waited for
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "['asleep'] ['asleep']"  # the busy thread stopped; the sleeper is still blocked in its wait
    assert second == "['asleep', 'stubborn']"
