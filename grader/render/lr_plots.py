"""The feedback plot of Exercise 3: the student's LR curves drawn over torch's (dashed), one panel per family.

Input is the plain ``details`` the ``lr_family`` checks store, so the report can draw it from a
gradebook record without rerunning anything::

    {"family": "StepLR", "curves": {name: {"reference": [...], "student": [...], "diagnosis": kind}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from reference.plots import plot_lr_curves

COLORS = ("C0", "C1", "C2", "C3", "C4", "C5")


def _families(details: Mapping | Sequence[Mapping]) -> list[Mapping]:
    """One check's details, or several checks' (a list, or a mapping of check id -> details)."""
    if isinstance(details, Mapping) and "curves" in details:
        return [details]
    items = details.values() if isinstance(details, Mapping) else details
    return [d for d in items if isinstance(d, Mapping) and isinstance(d.get("curves"), Mapping)]


def lr_comparison_figure(details: Mapping | Sequence[Mapping], panel_size: float = 3.2) -> Figure:
    """Student curves (solid, with markers) over torch's reference curves (dashed, same colour) per family.

    A configuration whose list is missing or unusable shows its reference only; a curve that
    matches torch hides its reference exactly, which is the point.
    """
    families = _families(details)
    if not families:
        raise ValueError("no LR curves in these details (expected the details of an lr_family check)")
    ncols = 2 if len(families) > 1 else 1
    nrows = -(-len(families) // ncols)
    fig = Figure(figsize=(panel_size * 1.5 * ncols, panel_size * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax, family in zip(axes, families):
        name = str(family.get("family", ""))
        students = {}
        for i, (config, curve) in enumerate(family["curves"].items()):
            color = COLORS[i % len(COLORS)]
            reference = list(curve.get("reference") or [])
            # An explicit colour does not advance the axes' colour cycle, so plot_lr_curves's
            # student curves below get C0, C1, ... in the same order as these references.
            ax.plot(range(1, len(reference) + 1), reference, color=color, linestyle="--", linewidth=1, zorder=1)
            label = config[len(name):] if name and config.startswith(name) else config
            verdict = "" if curve.get("diagnosis") == "match" else f" ({curve.get('diagnosis', '?')})"
            students[f"{label}{verdict}"] = list(curve.get("student") or [])
        plot_lr_curves(ax, {k: v if v else [float("nan")] for k, v in students.items()},
                       title=f"{name}: yours solid, torch dashed")
    for ax in axes[len(families):]:
        ax.set_visible(False)
    return fig
