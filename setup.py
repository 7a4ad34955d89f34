"""The instructor's wheel carries the course files, inside the package where ``grader.specs.paths`` looks.

``exercises/`` and ``templates/`` sit beside the packages in the repository, where a checkout and an
editable install find them; a built wheel copies them to ``grader/course/``. Everything else is in
pyproject.toml.
"""

import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

COURSE_FOLDERS = ("exercises", "templates")


class BuildWithCourse(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads them from the checkout
            return
        for folder in COURSE_FOLDERS:
            if pathlib.Path(folder).is_dir():
                self.copy_tree(folder, str(pathlib.Path(self.build_lib) / "grader" / "course" / folder))


setup(cmdclass={"build_py": BuildWithCourse})
