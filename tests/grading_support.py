"""Shared helpers for tests that grade real notebooks in real kernels, or export values as a kernel does."""

import atexit
import contextlib
import json
import os
import pathlib
import shutil
import sys

from grader.assignments.catalog import Exercise, load_exercise
from grader.cli import main
from grader.grading.engine import grade_submission
from grader.grading.secrets import hidden_seeds
from grader.kernel.factory import PRELOAD, FactoryHandle, KernelFactory, preload_for, start_factory
from grader.kernel.kernel_export import export_values
from grader.kernel.notebook import read_submission
from grader.kernel.sandbox import LAUNCHER, needed_paths, reveal_plan
from grader.loading.exports import load_exports
from grader.loading.values import Exports

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = pathlib.Path(__file__).parent / "files"
SECRET = b"test-secret"
# The per-cell limit of the fast tiny-model exercise (conftest.fast_exercises): what a hanging notebook costs.
FAST_CELL_TIMEOUT_S = 8


def solution(exercise_id: str) -> pathlib.Path:
    return ROOT / "reference" / "notebooks" / f"{exercise_id}.ipynb"


def student(exercise_id: str) -> pathlib.Path:
    return load_exercise(exercise_id).spec.notebook_path


_STARTED: dict[tuple[str, ...], KernelFactory] = {}  # this test process's factories, by what they preload


def _own_factory(preload: tuple[str, ...] = PRELOAD) -> KernelFactory:
    """This process's factory, started again if it has ended since (killed by a test or by the machine): a test that
    asks for a warm factory gets one, not a fresh launch it does not measure. One that was refused stays refused."""
    factory = _STARTED.get(preload)
    if factory is not None and (factory.process is None or factory.shared_env()):
        return factory
    factory = start_factory(preload)
    atexit.register(factory.close)
    _STARTED[preload] = factory
    return factory


def kernel_factory(reads_mnist: bool = False) -> FactoryHandle:
    """One warm factory per test process, as a batch has one for its exercise (torchvision preloaded for an exercise
    on MNIST, ``preload_for``): started on first use, closed at exit."""
    return _own_factory(preload_for(reads_mnist)).handle


def shared_factory_env() -> dict[str, str]:
    """The environment that has a command (in this process or another) fork its kernels from ``kernel_factory``.

    As the warm server's commands fork theirs from its factory: a batch whose subject is not the factory's own
    start need not warm one of its own (about 4 s of a core each).
    """
    return _own_factory().shared_env()


@contextlib.contextmanager
def commands_fork_from_this_factory():
    """While inside, the commands and worker processes started (here or in processes that start them) fork their
    kernels from ``kernel_factory``, as the warm server's commands do: for tests whose subject is not a factory's start.
    """
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for name, value in shared_factory_env().items():
            patch.setenv(name, value)
        yield


def as_from_a_shell() -> None:
    """``preexec_fn`` for a command a test sends Ctrl-C: SIGINT and SIGQUIT as a shell starts it. While another
    thread of the test process is inside system(), both are ignored process-wide, and a child started then keeps
    them ignored (caught live once in a full run: the client ignored the test's Ctrl-C)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def grade(path, exercise: Exercise | str, hidden: bool = True, data_root: pathlib.Path | None = None):
    """The notebook at ``path`` graded in a real sandboxed kernel, hidden checks included unless ``hidden=False``."""
    exercise = load_exercise(exercise) if isinstance(exercise, str) else exercise
    seeds = hidden_seeds(SECRET, exercise.id) if hidden else None
    return grade_submission(read_submission(path), exercise, pathlib.Path(path).stem, seeds, include_hidden=hidden,
                            data_root=data_root, factory=kernel_factory(exercise.spec.data_root))


def one_value_spec(exercise_id: str, export: str = "probe", kind: str = "dict", **limits) -> str:
    """A throwaway exercise's spec.toml: it exports one value and checks only that it is defined.

    For tests about the kernel rather than the checks: what a notebook sees, leaves behind or is limited to.
    """
    lines = [f'id = "{exercise_id}"', f'title = "{exercise_id}"', "[limits]"]
    lines += [f"{name} = {value}" for name, value in limits.items()]
    lines += ["[[exports]]", f'name = "{export}"', f'kind = "{kind}"', "[[checks]]", f'id = "{export}-defined"',
              'kind = "defined"', "points = 1", "[checks.params]", f'value = "{export}"']
    return "\n".join(lines) + "\n"


def round_trip(folder: pathlib.Path, values: dict, requests: list[dict]) -> Exports:
    """``values`` exported as the kernel's export cell does, and loaded back with the grader's safe loaders."""
    export_values(values, requests, str(folder))
    return load_exports(pathlib.Path(folder))


def by_id(result) -> dict:
    return {c.id: c for c in result.checks}


# The fixed --json contract of design.md.
CONTRACT = {"exercise", "student", "status", "score", "max_score", "checks", "error"}
CHECK_CONTRACT = {"id", "passed", "points", "max_points", "visibility", "message"}


def run_cli(capsys, *args):
    """The real ``grader`` command in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


NOBODY = 65534
# Who a grader "not root" runs as in these tests: nobody, when the tests run as root; else the tests' own user.
UNPRIVILEGED_UID = NOBODY if os.geteuid() == 0 else os.geteuid()


def as_nobody(command: list[str]) -> list[str]:
    """``command`` run as an unprivileged user (``UNPRIVILEGED_UID``).

    As root: as nobody, in a mount namespace that shows nobody the interpreter and this checkout even where
    they sit under a folder private to root (a pyenv in /root): the sandbox's own reveal, applied by its own
    launcher. As any other user: as that user, who is unprivileged already.
    """
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    assert setpriv, "becoming nobody needs setpriv (util-linux)"
    plan = {"rlimits": {}, "namespaces": True, "reveal": reveal_plan(needed_paths())}
    return [sys.executable, str(LAUNCHER), json.dumps(plan), "--", setpriv, f"--reuid={NOBODY}",
            f"--regid={NOBODY}", "--clear-groups", *command]


def run_as_nobody(script: str, spec: str, *args: str, files: dict[str, list[str]] | None = None) -> str:
    """The last line ``python -c script FOLDER *args`` prints, run unprivileged (``as_nobody``) with FOLDER a fresh
    world-writable folder holding ``probe/spec.toml`` (``spec``) and the notebooks ``files`` ({name: cells})."""
    import subprocess
    import tempfile

    import nbformat

    folder = pathlib.Path(tempfile.mkdtemp(prefix="grader-nobody-"))
    try:
        folder.chmod(0o777)
        (folder / "probe").mkdir()
        (folder / "probe" / "spec.toml").write_text(spec)
        for name, cells in (files or {}).items():
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                           folder / name)
        # Its own temp folder: in its PID namespace this grader is pid 1, so graders outside (other test workers)
        # would read its sandboxes' owner tags as a dead process's and clean them up.
        (folder / "tmp").mkdir(mode=0o777)
        (folder / "tmp").chmod(0o777)
        done = subprocess.run(as_nobody([sys.executable, "-c", script, str(folder), *args]), capture_output=True,
                              text=True, timeout=600, cwd=ROOT,
                              env={"PATH": os.environ["PATH"], "HOME": str(folder), "TMPDIR": str(folder / "tmp")})
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def gradebook_rows(book: pathlib.Path) -> list:
    """Each current result as two batches that grade alike must store it: verdicts, messages, hashes, versions."""
    from grader.store.gradebook import Gradebook

    with Gradebook.open(book) as gradebook:
        return sorted((run.result.student, run.result.status.value, run.result.score, run.result.max_score,
                       run.result.error, run.result.note, run.result.notebook_sha256, run.grader_version,
                       run.secret_fingerprint,
                       tuple((c.id, c.passed, c.points, c.message) for c in run.result.checks))
                      for run in gradebook.current_runs())


def process_children() -> dict[int, list[int]]:
    """Parent pid -> its living (not zombie) children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def command_line(pid: int) -> str:
    """The command line of process ``pid``, words joined by spaces; "" once it has ended."""
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``."""
    children, found, todo = process_children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def ended(process) -> None:
    """A test's ``subprocess.Popen`` with piped output: killed if still running, its pipes closed."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
