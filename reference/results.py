"""What a reference experiment returns, and how it is written to disk (PNG, JSON, Markdown)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from reference.plots import save_figure


@dataclass(frozen=True)
class Comparison:
    """One published figure next to what this machine printed for it."""

    what: str
    published: str
    measured: str

    @property
    def reproduced(self) -> bool:
        return self.published == self.measured


def tee(*sinks: Callable[[str], object]) -> Callable[[str], None]:
    """A logger that hands each line to every sink, e.g. ``tee(lines.append, print)``."""

    def log(line: str) -> None:
        for sink in sinks:
            sink(line)

    return log


def compare_lines(what: str, published: Sequence[str], measured: Sequence[str]) -> list[Comparison]:
    """Pair published and measured log lines in order; a missing line compares as empty."""
    pad = max(len(published), len(measured))
    published, measured = list(published) + [""] * (pad - len(published)), list(measured) + [""] * (pad - len(measured))
    return [Comparison(f"{what} line {i + 1}", p, m) for i, (p, m) in enumerate(zip(published, measured))]


@dataclass
class ExperimentResult:
    name: str
    title: str
    log: list[str] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def emitter(self, log: Callable[[str], None] | None) -> Callable[[str], None]:
        """A logger that records each line in ``self.log`` and forwards it to ``log``."""

        def emit(line: str) -> None:
            self.log.append(line)
            if log is not None:
                log(line)

        return emit

    @property
    def reproduced(self) -> tuple[int, int]:
        """(reproduced, compared) published figures."""
        return sum(c.reproduced for c in self.comparisons), len(self.comparisons)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "table": self.table,
            "comparisons": [
                {"what": c.what, "published": c.published, "measured": c.measured, "reproduced": c.reproduced}
                for c in self.comparisons
            ],
            "notes": self.notes,
            "figures": sorted(self.figures),
            "data": self.data,
        }


def markdown_table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def to_markdown(result: ExperimentResult) -> str:
    parts = [f"# {result.title}", ""]
    if result.table:
        parts += [markdown_table(result.table), ""]
    if result.comparisons:
        done, total = result.reproduced
        parts += [f"Published figures reproduced: {done}/{total}", ""]
        parts += [markdown_table([{"figure": c.what, "published": c.published, "measured": c.measured,
                                   "reproduced": "yes" if c.reproduced else "no"} for c in result.comparisons]), ""]
    parts += [f"- {note}" for note in result.notes]
    parts += ["", *(f"![{name}]({name}.png)" for name in result.figures)]
    return "\n".join(parts).rstrip() + "\n"


def write_result(result: ExperimentResult, out_dir: str | pathlib.Path) -> pathlib.Path:
    """Write figures, ``results.json``, ``results.md`` and ``log.txt`` into ``out_dir/<name>``."""
    folder = pathlib.Path(out_dir) / result.name
    folder.mkdir(parents=True, exist_ok=True)
    for name, fig in result.figures.items():
        save_figure(fig, folder / f"{name}.png")
    (folder / "results.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    (folder / "results.md").write_text(to_markdown(result))
    (folder / "log.txt").write_text("\n".join(result.log) + "\n")
    return folder
