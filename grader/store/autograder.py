"""Build a Gradescope autograder zip for one exercise.

The zip holds ``setup.sh`` (installs the pinned CPU torch pair and this package),
``run_autograder`` (runs ``grader.grading.gradescope`` on /autograder/submission into
/autograder/results/results.json), this project's source, the exercise, and an instructor
secret for the hidden checks. The secret stays in /autograder/source, which the sandbox
hides from the kernel.
"""

from __future__ import annotations

import pathlib
import secrets as token
import stat
import zipfile

from grader.assignments.catalog import load_exercise
from grader.specs.paths import REPOSITORY as ROOT

SOURCE_DIRS = ("grader", "reference", "templates")
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
cd /autograder/source
python3 -m pip install --upgrade pip
# The CPU build of the pinned pair: an unpinned torch pulls gigabytes of CUDA packages.
python3 -m pip install torch==2.13.0 torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install /autograder/source
{data}"""
FETCH_MNIST = """# This exercise reads MNIST: fetch it once into the image (Gradescope's builder has internet).
python3 -c "from reference.mnist.data import prepare_mnist_root; prepare_mnist_root('/autograder/source/data', download=True)"
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
cd /autograder/source
export GRADER_EXERCISES=/autograder/source/exercises GRADER_TEMPLATES=/autograder/source/templates
export MNIST_ROOT=/autograder/source/data
exec python3 -m grader.grading.gradescope --exercise {exercise} --submission /autograder/submission \\
    --secret-file /autograder/source/instructor.secret --out /autograder/results/results.json
"""


def _executable(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    return info


def build_zip(exercise_id: str, out: pathlib.Path, secret: bytes | None = None) -> pathlib.Path:
    """Write the autograder zip for one exercise."""
    spec = load_exercise(exercise_id).spec
    secret = secret or token.token_hex(32).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_executable(zipfile.ZipInfo("setup.sh")), SETUP.format(data=FETCH_MNIST if spec.data_root else ""))
        archive.writestr(_executable(zipfile.ZipInfo("run_autograder")), RUN.format(exercise=exercise_id))
        archive.writestr("instructor.secret", secret)
        for name in ("pyproject.toml", "README.md"):
            archive.write(ROOT / name, name)
        for folder in SOURCE_DIRS:
            for path in sorted((ROOT / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".html.tmp"):
                    archive.write(path, path.relative_to(ROOT).as_posix())
        for path in sorted(spec.folder.iterdir()):
            if path.is_file():
                archive.write(path, f"exercises/{exercise_id}/{path.name}")
    return out
