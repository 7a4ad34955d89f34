"""Write a pure-Python wheel from a chosen set of files, without a build backend or an index.

A wheel is a zip with a ``.dist-info`` folder (METADATA, WHEEL, entry_points.txt, RECORD:
PEP 427 and the core metadata spec). ``grader release`` chooses its files file by file, which
a setuptools build of the repository cannot, and builds it offline. Entries carry a fixed date,
so the same files give the same wheel.
"""

from __future__ import annotations

import base64
import hashlib
import pathlib
import re
import zipfile
from dataclasses import dataclass

from grader.errors import UserError

try:
    import tomllib  # novermin - Python 3.10 has the same parser as the tomli backport, below
except ModuleNotFoundError:
    import tomli as tomllib

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    summary: str
    requires_python: str
    dependencies: tuple[str, ...]
    scripts: tuple[tuple[str, str], ...]  # (command, "module:function")

    @property
    def stem(self) -> str:
        """``name-version`` as wheel file names spell it (PEP 491: runs of -_. become _)."""
        return f"{re.sub(r'[-_.]+', '_', self.name).lower()}-{self.version}"


def read_project(root: pathlib.Path) -> Distribution:
    """The ``[project]`` table of ``root/pyproject.toml``; the installed metadata when there is no such file."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return _installed()
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return Distribution(project["name"], project["version"], project.get("description", ""),
                        project.get("requires-python", ""), tuple(project.get("dependencies", [])),
                        tuple(project.get("scripts", {}).items()))


def _installed() -> Distribution:
    from importlib import metadata

    from grader.assignments.version import PACKAGE

    try:
        meta = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise UserError(f"cannot tell this package's name and dependencies: no pyproject.toml and no installed "
                        f"{PACKAGE}") from None
    scripts = tuple((e.name, e.value) for e in meta.entry_points if e.group == "console_scripts")
    return Distribution(meta.metadata["Name"], meta.version, meta.metadata.get("Summary", ""),
                        meta.metadata.get("Requires-Python", ""), tuple(meta.requires or ()), scripts)


def _metadata(dist: Distribution) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}", f"Summary: {dist.summary}"]
    lines += [f"Requires-Python: {dist.requires_python}"] if dist.requires_python else []
    lines += [f"Requires-Dist: {requirement}" for requirement in dist.dependencies]
    return "\n".join(lines) + "\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: pathlib.Path, dist: Distribution, files: dict[str, bytes]) -> pathlib.Path:
    """``folder/<stem>-py3-none-any.whl`` holding ``files`` (path inside the wheel -> content) and its metadata."""
    info = f"{dist.stem}.dist-info"
    meta = {
        f"{info}/METADATA": _metadata(dist),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: grader release\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\n" + "".join(f"{n} = {t}\n" for n, t in dist.scripts),
    }
    entries = dict(sorted(files.items())) | {name: text.encode() for name, text in meta.items()}
    record = "".join(_record_line(name, data) + "\n" for name, data in entries.items()) + f"{info}/RECORD,,\n"
    entries[f"{info}/RECORD"] = record.encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist.stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            entry = zipfile.ZipInfo(name, FIXED_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return path
