"""HTML feedback rendered from the Jinja2 templates in ``templates/``; pages are self-contained."""

from __future__ import annotations

import functools
import pathlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2
import markupsafe

from grader.render.terminal import shared_problems, status_label
from grader.results import SubmissionResult
from grader.specs.paths import templates_root
from grader.store.outputs import write_output

if TYPE_CHECKING:
    from grader.store.lateness import LateRecord
    from grader.store.overrides import FinalScore


@dataclass(frozen=True)
class Figure:
    src: str  # a data: URI, so the page works offline as one file
    caption: str


CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> markupsafe.Markup:
    """Escape a message and show its `backticked` names as code, as the terminal table cannot.

    >>> str(code_spans("define `model` <now>"))
    'define <code>model</code> &lt;now&gt;'
    """
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(CODE_SPAN.sub(r"<code>\1</code>", escaped))


def environment() -> jinja2.Environment:
    """The templates' environment; one per templates folder, so each template is compiled once per process
    (Jinja2 still reloads a template whose file changed)."""
    return _environment(templates_root())


@functools.lru_cache(maxsize=8)
def _environment(root: pathlib.Path) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.globals["fmt"] = lambda value: f"{round(value, 2):g}"
    env.filters["code_spans"] = code_spans
    return env


def render_submission(result: SubmissionResult, title: str, figures: list[Figure] = (), self_check: bool = False,
                      diagnoses: list = (), late: LateRecord | None = None, final: FinalScore | None = None) -> str:
    """One student's page: a problem that fails several checks is a banner above them, said once; ``late``: when it
    was handed in, and the late penalty applied (gradebook results only); ``final``: the instructor's overrides."""
    pending = sum(p.max_points for p in result.pending if not p.reason)
    banners, banner_of = shared_problems(result)
    status, look = status_label(result)
    error_in_banner = any(b.needs == "*" and b.text == result.error for b in banners)
    return environment().get_template("submission.html").render(
        result=result, title=title, figures=list(figures), self_check=self_check, pending_points=pending,
        diagnoses=list(diagnoses), banners=banners, banner_of=banner_of, status=status, look=look,
        error_in_banner=error_in_banner, late=late, final=final if final and final.applied else None,
        override_of={a.override.check_id: a for a in final.applied} if final else {})


def render_page(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def write_page(path: str | pathlib.Path, html: str) -> pathlib.Path:
    """Write a page whole, over a regular file only; a failure is an ``OutputError`` (a ``UserError``) naming it."""
    return write_output(path, html)
