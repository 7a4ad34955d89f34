"""What students get: their notebooks, the quizzes, and a wheel of the self-check tool without the solutions.

``grader release --out DIR`` writes::

    DIR/README.md                       how to install the tool and check a notebook
    DIR/notebooks/<id>.ipynb            the student notebooks
    DIR/quizzes/<id>.md, <id>-answers.toml
    DIR/dist/<name>-<version>-py3-none-any.whl

The wheel holds the ``grader`` package, the ``reference`` modules that the self-check or a released
notebook imports, and the course files under ``grader/course/`` (``grader.specs.paths`` finds them
there). It never holds a solution notebook, the tests, the examples or the instructor secret, nor a
module that an own-work check forbids (``forbidden_modules``), unless the grader's own code or a
released notebook imports it: those are named in ``Release.kept``, with what imports them.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from grader.assignments.catalog import Exercise, load_assignment
from grader.assignments.catalog import assignment_ids as all_assignments
from grader.assignments.version import scoring_modules
from grader.errors import UserError
from grader.kernel.notebook import without_magics
from grader.quizzes.model import Quiz
from grader.source_trees import parse as parse_source
from grader.specs.paths import PACKAGED, RELEASE_MARKER, REPOSITORY, exercises_root, templates_root
from grader.store.wheel import Distribution, read_project, write_wheel

PACKAGES = ("grader", "reference")
COURSE_HELPER_MODULES = ("reference", "reference.torchvision_compat")
STUDENT_COMMANDS = ("check", "quiz", "exercises")  # what `grader --help` shows in the student package


@dataclass(frozen=True)
class Kept:
    """A module an own-work check forbids that the package still holds, and why it has to."""

    module: str
    forbidden_by: tuple[str, ...]
    needed_by: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Which modules of ours go into the student wheel, and which solutions stay out."""

    modules: tuple[str, ...]
    withheld: tuple[str, ...]  # forbidden by an own-work check and imported by nothing the student runs
    kept: tuple[Kept, ...]
    left_out: tuple[str, ...]  # reference modules nothing the student runs imports (experiments, their CLI)
    unavailable: tuple[str, ...]  # "X imports Y": code of the instructor's that cannot run in the student package


@dataclass(frozen=True)
class Release:
    out: pathlib.Path
    wheel: pathlib.Path
    notebooks: tuple[pathlib.Path, ...]
    quizzes: tuple[pathlib.Path, ...]
    plan: Plan


# --- what the code imports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    module: str
    lazy: bool  # inside a function: needed only when that function runs


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def source_imports(source: str, package: str = "") -> set[Import]:
    """Absolute names of what ``source`` imports (``from X import y`` also as ``X.y``); ``if TYPE_CHECKING`` skipped."""
    found: set[Import] = set()

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other, lazy)
            elif isinstance(child, ast.Import):
                found.update(Import(alias.name, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                found.add(Import(base, lazy))
                found.update(Import(f"{base}.{alias.name}", lazy) for alias in child.names)
            else:
                visit(child, lazy)

    visit(parse_source(source), False)
    return found


def student_code_imports(source: str) -> set[str]:
    """What a notebook cell or a spec's kernel code imports, all of it run; IPython magics are blanked."""
    plain = without_magics(source)
    try:
        return {i.module for i in source_imports(plain)}
    except SyntaxError:  # a cell a student left broken still shows what it means to import
        return set(re.findall(r"^\s*(?:from|import)\s+([\w.]+)", plain, re.MULTILINE))


class Tree:
    """The modules of our packages in a source tree, and what each imports."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.files: dict[str, pathlib.Path] = {}
        for package in PACKAGES:
            for path in sorted((root / package).rglob("*.py")):
                if "__pycache__" not in path.parts:
                    parts = path.relative_to(root).with_suffix("").parts
                    self.files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
        self._imports: dict[str, set[Import]] = {}

    def is_package(self, module: str) -> bool:
        return self.files[module].name == "__init__.py"

    def resolve(self, name: str) -> str | None:
        """Our module that importing ``name`` loads; ``from reference import X`` loads X's module (PEP 562)."""
        if name in self.files:
            return name
        parent, _, leaf = name.rpartition(".")
        if parent == "reference" and leaf in course_exports():
            return f"reference.{course_exports()[leaf]}"
        return None

    def imports(self, module: str) -> set[Import]:
        if module not in self._imports:
            package = module if self.is_package(module) else module.rpartition(".")[0]
            self._imports[module] = source_imports(self.files[module].read_text(encoding="utf-8"), package)
        return self._imports[module]

    def parents(self, module: str) -> list[str]:
        """The packages whose ``__init__`` runs before ``module``."""
        parts = module.split(".")
        return [p for i in range(1, len(parts)) if (p := ".".join(parts[:i])) in self.files]

    def closure(self, roots: Iterable[tuple[str, str]], follow: Callable[[str, str], bool]) -> dict[str, set[str]]:
        """Each module the (root, reason) pairs load, with what loads it; a lazy import is followed when
        ``follow(importer, it)``."""
        needed: dict[str, set[str]] = {}
        todo = []
        for module, reason in roots:
            for loaded in (*self.parents(module), module):
                needed.setdefault(loaded, set()).add(reason)
                todo.append(loaded)
        while todo:
            module = todo.pop()
            for imp in self.imports(module):
                target = self.resolve(imp.module)
                if target is None or target == module or (imp.lazy and not follow(module, target)):
                    continue
                for loaded in (*self.parents(target), target):
                    if loaded not in needed:
                        todo.append(loaded)
                    needed.setdefault(loaded, set()).add(module)
        return needed


def course_exports() -> dict[str, str]:
    """The names ``from reference import ...`` offers, with the module each lives in."""
    import reference

    return reference._EXPORTS  # the table PEP 562 loads from, read without importing torch


# --- the plan ----------------------------------------------------------------------------------------------


def forbidden_modules(tree: Tree, exercises: Iterable[Exercise]) -> dict[str, set[str]]:
    """Each module of ours that an own-work check forbids (a package: with its modules), with the exercises."""
    found: dict[str, set[str]] = {}
    for exercise in exercises:
        for check in exercise.checks:
            for name in check.params.get("forbidden_modules", []) if check.kind.name == "own_work" else []:
                for module in tree.files:
                    if module == name or module.startswith(name + "."):
                        found.setdefault(module, set()).add(exercise.id)
    return found


def _student_code(assignment) -> list[tuple[str, str]]:
    """(where, source) for the code that runs in a student's kernel: the notebook's cells, the spec's exports."""
    if not isinstance(assignment, Exercise):
        return []
    spec = assignment.spec
    cells = json.loads(spec.notebook_path.read_text(encoding="utf-8")).get("cells", [])
    code = [(f"the {spec.id} notebook", "".join(c.get("source", ""))) for c in cells if c.get("cell_type") == "code"]
    return code + [(f"the {spec.id} spec's `{e.name}` export", e.code) for e in spec.exports if e.code]


def plan_modules(tree: Tree, released: list, every_exercise: list[Exercise]) -> Plan:
    """The student wheel's modules: what the grader, the course helpers and the released notebooks need."""
    forbidden = forbidden_modules(tree, every_exercise)
    roots = [(m, "the grader") for m in tree.files if m.split(".")[0] == "grader"]
    roots += [(m, "a course helper (`from reference import ...`)") for m in (
        *COURSE_HELPER_MODULES, *(f"reference.{m}" for m in course_exports().values()))]
    roots += [(m, "a course model (reference.MODELS)") for m in _course_models()]
    for assignment in released:
        for where, source in _student_code(assignment):
            roots += [(m, where) for name in student_code_imports(source) if (m := tree.resolve(name))]
    # Scoring code must run whole; elsewhere a solution imported inside a function only makes that function
    # unavailable (the instructor's calibration), so it is left out rather than shipped.
    scoring = tree.closure([(m, f"scores {a.id}") for a in released if isinstance(a, Exercise)
                            for m in scoring_modules(a)], lambda importer, target: True)
    needed = tree.closure(roots, lambda importer, target: target not in forbidden or importer in scoring)
    for module, reasons in scoring.items():
        needed.setdefault(module, set()).update(reasons)
    kept = tuple(Kept(m, tuple(sorted(forbidden[m])), tuple(sorted(needed[m]))) for m in sorted(forbidden)
                 if m in needed)
    withheld = tuple(sorted(set(forbidden) - set(needed)))
    unavailable = tuple(sorted(f"{m} imports {i.module}" for m in needed for i in tree.imports(m)
                               if i.lazy and tree.resolve(i.module) in withheld))
    left_out = tuple(sorted(m for m in tree.files if m not in needed and m not in forbidden))
    return Plan(tuple(sorted(needed)), withheld, kept, left_out, unavailable)


def _course_models() -> list[str]:
    import reference

    return sorted(set(reference.MODELS.values()))


# --- the files ---------------------------------------------------------------------------------------------


def selected(assignments: list[str] | None) -> list:
    """The released exercises and quizzes, validated: every one when ``assignments`` is empty."""
    known = all_assignments()
    chosen = list(dict.fromkeys(assignments or known))
    return [load_assignment(a) for a in chosen]


def course_files(released: list) -> dict[str, bytes]:
    """The course's files for the wheel, by path inside it: specs, student notebooks, quizzes, templates."""
    files: dict[str, bytes] = {}
    base = PACKAGED.relative_to(PACKAGED.parents[1]).as_posix()  # grader/course
    for assignment in released:
        if isinstance(assignment, Exercise):
            for path in (assignment.spec.path, assignment.spec.notebook_path):
                files[f"{base}/exercises/{assignment.id}/{path.name}"] = path.read_bytes()
        else:
            files[f"{base}/exercises/quizzes/{assignment.path.name}"] = assignment.path.read_bytes()
    calibration = exercises_root() / "calibration.json"
    if calibration.is_file():
        files[f"{base}/exercises/calibration.json"] = calibration.read_bytes()
    for path in sorted(templates_root().glob("*.html")):
        files[f"{base}/templates/{path.name}"] = path.read_bytes()
    files[f"{base}/{RELEASE_MARKER}"] = (json.dumps(
        {"assignments": [a.id for a in released], "commands": list(STUDENT_COMMANDS)}, indent=2) + "\n").encode()
    return files


def module_files(tree: Tree, modules: Iterable[str]) -> dict[str, bytes]:
    return {tree.files[m].relative_to(tree.root).as_posix(): tree.files[m].read_bytes() for m in modules}


def build_release(out: pathlib.Path, assignments: list[str] | None = None, course_name: str = "") -> Release:
    """Write the student package into ``out``, a new or empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: not an empty folder; a release never overwrites files, so remove it or "
                        "choose a new one")
    released = selected(assignments)
    every_exercise = [a for a in (load_assignment(i) for i in all_assignments()) if isinstance(a, Exercise)]
    tree = Tree(REPOSITORY)
    plan = plan_modules(tree, released, every_exercise)
    project = read_project(REPOSITORY)
    dist = Distribution(project.name, project.version, f"{project.summary} (student package: the self-check, "
                        "without solutions)", project.requires_python, project.dependencies, project.scripts)
    files = module_files(tree, plan.modules) | course_files(released)
    out.mkdir(parents=True, exist_ok=True)
    wheel = write_wheel(out / "dist", dist, files)
    notebooks = _write_notebooks(out / "notebooks", [a for a in released if isinstance(a, Exercise)])
    quizzes = _write_quizzes(out / "quizzes", [a for a in released if isinstance(a, Quiz)])
    (out / "README.md").write_text(student_readme(course_name, wheel.name, notebooks, quizzes, released),
                                   encoding="utf-8")
    return Release(out, wheel, tuple(notebooks), tuple(quizzes), plan)


def _write_notebooks(folder: pathlib.Path, exercises: list[Exercise]) -> list[pathlib.Path]:
    written = []
    for exercise in exercises:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{exercise.id}.ipynb"
        shutil.copyfile(exercise.spec.notebook_path, target)
        written.append(target)
    return written


def _write_quizzes(folder: pathlib.Path, quizzes: list[Quiz]) -> list[pathlib.Path]:
    written = []
    for quiz in quizzes:
        folder.mkdir(parents=True, exist_ok=True)
        sheet, answers = folder / f"{quiz.id}.md", folder / f"{quiz.id}-answers.toml"
        sheet.write_text(quiz_sheet(quiz), encoding="utf-8")
        answers.write_text(answers_template(quiz), encoding="utf-8")
        written += [sheet, answers]
    return written


def quiz_sheet(quiz: Quiz) -> str:
    """The questions and their options, without keys or explanations."""
    advice = (f"Write your answers in `{quiz.id}-answers.toml`, then check them with "
              f"`grader quiz check {quiz.id}-answers.toml`.")
    lines = [f"# {quiz.title}", "", advice, ""]
    for number, question in enumerate(quiz.questions, 1):
        lines += [f"## {number}. {question.prompt.strip()}", ""]
        if question.code:
            lines += ["```python", question.code.rstrip(), "```", ""]
        lines += [f"- **{label}.** {text.strip()}" for label, text in question.options] + [""]
    return "\n".join(lines)


def answers_template(quiz: Quiz) -> str:
    """A TOML file the student fills in: one option letter per question."""
    lines = [f"# {quiz.title}: write one option letter per question (see {quiz.id}.md).",
             f"# Check your answers with: grader quiz check {quiz.id}-answers.toml", f'quiz = "{quiz.id}"', "",
             "[answers]"]
    for number, question in enumerate(quiz.questions, 1):
        prompt = " ".join(question.prompt.split())
        lines.append(f'"{question.id}" = ""  # {number}. {prompt[:90]}{"..." if len(prompt) > 90 else ""}')
    return "\n".join(lines) + "\n"


README = """# {title}: your exercises

## Install the self-check, once

With Python 3.10 or later:

```sh
python -m pip install dist/{wheel}
```

On Linux, add `--extra-index-url https://download.pytorch.org/whl/cpu` to get torch's CPU build instead of
several GB of CUDA packages.

## Work, then check

{notebooks}

Check a notebook the way the official run does, before you hand it in:

```sh
grader check notebooks/{first}
```

It runs the notebook in a fresh kernel and scores the public checks; hidden checks are listed as "graded
later". Exit code 0: every public check passes. `grader exercises` lists every check and its points.
{mnist}{quizzes}"""
MNIST_NOTE = """
The MNIST exercises read the data from `$MNIST_ROOT`; give `grader check` the same folder with `--data-root DIR`.
"""
QUIZ_NOTE = """
## Quizzes

Each quiz has its questions (`quizzes/<id>.md`) and a file for your answers (`quizzes/<id>-answers.toml`).
Check your answers with `grader quiz check quizzes/<id>-answers.toml`.
"""


def student_readme(course_name: str, wheel: str, notebooks: list[pathlib.Path], quizzes: list[pathlib.Path],
                   released: list) -> str:
    exercises = [a for a in released if isinstance(a, Exercise)]
    listed = "\n".join(f"- `notebooks/{p.name}`: {e.title}" for p, e in zip(notebooks, exercises))
    return README.format(title=course_name or "Training dynamics", wheel=wheel, notebooks=listed,
                         first=notebooks[0].name if notebooks else "NOTEBOOK.ipynb",
                         mnist=MNIST_NOTE if any(e.spec.data_root for e in exercises) else "",
                         quizzes=QUIZ_NOTE if quizzes else "")
