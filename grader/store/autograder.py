"""Build a Gradescope autograder zip for one exercise.

The zip holds ``setup.sh`` (installs the pinned CPU torch pair and this package with the image's
``python3``: Python 3.10 or later, so Gradescope's default Ubuntu 22.04 image will do),
``run_autograder`` (runs ``grader.grading.gradescope`` on /autograder/submission into
/autograder/results/results.json), this project's source, the exercise, and the instructor secret
for the hidden checks. The kernel sees none of /autograder/source: not the secret, not the
solution notebooks. ``$AUTOGRADER_ROOT`` stands for /autograder, so tests run both scripts on a
folder of their own.
"""

from __future__ import annotations

import pathlib
import stat
import zipfile

from grader.assignments.catalog import load_exercise
from grader.specs.paths import REPOSITORY as ROOT

SOURCE_DIRS = ("grader", "reference", "templates")
MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python; tests/test_gradescope_autograder.py checks the source
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$ROOT"
python3 -c 'import sys; sys.exit(None if sys.version_info >= {min_python} else "the grader needs Python \
{min_text} or later; this image has " + sys.version.split()[0])'
python3 -m pip install --upgrade pip
# The CPU build of the pinned pair: an unpinned torch pulls gigabytes of CUDA packages.
python3 -m pip install torch==2.13.0 torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install "$ROOT/source"
{data}"""
FETCH_MNIST = """# This exercise reads MNIST: fetch it once into the image (Gradescope's builder has internet).
python3 -c "import sys; from reference.mnist.data import prepare_mnist_root; prepare_mnist_root(sys.argv[1], \
download=True)" "$ROOT/data"
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
export GRADER_EXERCISES="$ROOT/source/exercises" GRADER_TEMPLATES="$ROOT/source/templates" MNIST_ROOT="$ROOT/data"
# Not from the source folder: the grader is then the installed package, the same files the kernel imports.
cd "$ROOT"
exec python3 -m grader.grading.gradescope --exercise {exercise} --submission "$ROOT/submission" \
    --secret-file "$ROOT/source/instructor.secret" --hide "$ROOT/source" --out "$ROOT/results/results.json"
"""


def _executable(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    return info


def build_zip(exercise_id: str, out: pathlib.Path, secret: bytes) -> pathlib.Path:
    """Write the autograder zip for one exercise, with the secret its hidden checks draw their data from."""
    spec = load_exercise(exercise_id).spec
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        setup = SETUP.format(min_python=MIN_PYTHON, min_text=".".join(map(str, MIN_PYTHON)),
                             data=FETCH_MNIST if spec.data_root else "")
        archive.writestr(_executable(zipfile.ZipInfo("setup.sh")), setup)
        archive.writestr(_executable(zipfile.ZipInfo("run_autograder")), RUN.format(exercise=exercise_id))
        archive.writestr("instructor.secret", secret)
        for name in ("pyproject.toml", "setup.py", "README.md"):
            archive.write(ROOT / name, name)
        for folder in SOURCE_DIRS:
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".html.tmp"):
                    archive.write(path, path.relative_to(ROOT).as_posix())
        for path in sorted(spec.folder.iterdir()):
            if path.is_file():
                archive.write(path, f"exercises/{exercise_id}/{path.name}")
    return out
