"""The grader's folders are layers along a submission's way: a module imports only its own layer or lower ones.

Imports are read from the source (function-level ones included), so a lazy import cannot
hide an upward dependency. The fast commands are checked to stay free of torch, nbclient
and matplotlib by running them in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = ROOT / "tests" / "files"

# Lowest first. The README's layout section shows the same order.
LAYERS = [
    ("grader.errors", "grader.results", "grader.source_trees", "grader.collector"),
    ("grader.kernel",),
    ("grader.specs",),
    ("grader.loading",),
    ("grader.diagnosis",),
    ("grader.checks",),
    ("grader.quizzes",),
    ("grader.assignments",),
    ("grader.store",),
    ("grader.grading",),
    ("grader.render",),
    ("grader.commands",),
    ("grader.cli", "grader.warm_server", "grader.quick", "grader.demo", "grader.__main__"),
]
# Run as scripts or as source inside a kernel: nothing of ours may be imported there.
STANDALONE = {"grader.kernel.sandbox_launch": set(), "grader.kernel.kernel_export": {"torch"}}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path, module: str = "") -> set[str]:
    """Absolute names of everything ``path`` (the module ``module``) imports, anywhere in the file."""
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def layer(name: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    return None


def sources(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_grader_module_belongs_to_a_layer():
    assert [module_name(p) for p in sources("grader") if layer(module_name(p)) is None] == ["grader"]


def test_the_grader_parses_python_through_one_lock():
    """CPython 3.11's ast.parse can fail when two threads parse at once (gh-106905): a cluster worker's version check
    and its first kernel's prelude once did, and a correct notebook was stored as the grader's "error"."""
    direct = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in sources("grader") if p.name != "source_trees.py"
              for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and node.func.attr == "parse"
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "ast"]
    assert direct == [], "parse with grader.source_trees.parse, which holds the process's parse lock"


def test_imports_point_only_down_the_layers():
    upward = []
    for path in sources("grader"):
        own = layer(module_name(path))
        for name in imports(path):
            target = layer(name)
            if own is not None and target is not None and target > own:
                upward.append(f"{module_name(path)} imports {name} ({LAYERS[own][0]} -> {LAYERS[target][0]})")
    assert upward == []


def test_the_import_check_sees_a_lazy_relative_upward_import(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f():\n    from ...render.html import write_page\n")
    found = imports(bad, "grader.kernel.sub.probe")
    assert "grader.render.html" in found and layer("grader.render.html") > layer("grader.kernel.sub.probe")


def test_reference_never_imports_the_grader():
    assert [str(p) for p in sources("reference") if any(n.split(".")[0] == "grader" for n in imports(p))] == []


@pytest.mark.parametrize("module, allowed", STANDALONE.items())
def test_standalone_files_import_the_standard_library_only(module, allowed):
    path = ROOT / (module.replace(".", "/") + ".py")
    outside = {n.split(".")[0] for n in imports(path)} - set(sys.stdlib_module_names) - allowed - {"__future__"}
    assert outside == set()


FAST_COMMANDS = {
    "help": ["--help"],
    "exercises": ["exercises"],
    "quiz check": ["quiz", "check", str(FILES / "quizzes" / "perfect.toml"), "--quiz", "convergence", "--html", "{tmp}"],
}


# dask and its cluster libraries are optional extras (grader[cluster], [slurm], [kubernetes]) as well as slow to load.
HEAVY = ("torch", "nbclient", "matplotlib", "dask", "distributed", "dask_jobqueue", "dask_kubernetes")


@pytest.mark.parametrize("name", FAST_COMMANDS)
def test_fast_commands_do_not_import_torch_nbclient_matplotlib_or_dask(name, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path / "page.html")) for a in FAST_COMMANDS[name]]
    probe = ("import contextlib, io, json, sys\nfrom grader.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n        code = main(json.loads(sys.argv[1]))\n"
             "    except SystemExit as e:\n        code = e.code\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in json.loads(sys.argv[2]))\n"
             "print(json.dumps([code, heavy]))\n")
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(args), json.dumps(HEAVY)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    code, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0, done.stderr
    assert heavy == []


def test_the_cluster_modules_import_dask_only_when_a_cluster_starts():
    probe = ("import json, sys, grader.grading.cluster_start, grader.specs.config\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(HEAVY)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_importing_reference_loads_neither_torch_nor_pyplot():
    probe = "import sys, reference; print(sorted(m for m in sys.modules if m in ('torch', 'matplotlib.pyplot')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
