"""A fresh virtual environment for install tests, which reuses this one's third-party packages.

Installing torch and the rest anew takes a minute and 1.2 GB, so the fresh venv gets a ``.pth`` file
naming a folder of links to this venv's site-packages entries: every third-party package (pip and
setuptools too), but not this project (its editable finder and its metadata). Whatever the test then
installs is the only ``grader`` the fresh venv can import, and pip finds every dependency installed,
so it needs no index.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import sysconfig

OWN = ("__editable__", "training_dynamics_grader", "grader", "reference")


def fresh_venv(folder: pathlib.Path) -> pathlib.Path:
    """A venv at ``folder`` that sees this venv's third-party packages; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    shared = folder / "shared-site-packages"
    shared.mkdir()
    for entry in sorted(pathlib.Path(sysconfig.get_paths()["purelib"]).iterdir()):
        if not entry.name.startswith(OWN) and entry.suffix != ".pth":
            (shared / entry.name).symlink_to(entry)
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(folder / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip()
    (pathlib.Path(site) / "shared-site-packages.pth").write_text(f"{shared}\n")
    return folder / "bin"


def offline_env(bin_folder: pathlib.Path, **extra: str) -> dict[str, str]:
    """The environment for commands run in the fresh venv: its bin first on PATH, pip without an index."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GRADER_EXERCISES",
                                                          "GRADER_TEMPLATES", "GRADER_SECRET")}
    env.update(PATH=f"{bin_folder}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env
