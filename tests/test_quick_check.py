"""The in-notebook quick check: same exporter, loaders and checks; clearly not the grade.

It runs in a fresh interpreter, as in a notebook kernel: the check reads which reference
modules the process has imported, and this test process has imported all of them.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

ROOT = pathlib.Path(__file__).resolve().parent.parent

QUICK = """
    import json, os
    os.environ.pop("GRADER_SANDBOX", None)
    from rich.console import Console
    from grader.quick import LABEL, quick_check
    from reference.models import SimpleMLP
    console = Console(record=True, width=200)
    result = quick_check("tiny-model", console=console, model=SimpleMLP())
    print(json.dumps({"label": LABEL, "text": console.export_text(),
                      "checks": {c.id: [c.passed, c.metrics] for c in result.checks}}))
"""


def _run(code: str, cwd: str | None = None, **env) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, **env}, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_quick_check_scores_live_values_and_says_it_is_not_the_grade():
    out = json.loads(_run(QUICK).splitlines()[-1])
    assert "NOT your grade" in out["label"] and "NOT your grade" in out["text"]
    checks = out["checks"]
    assert checks["own-model"][0]  # importing grader.quick itself is not using the reference solution
    assert checks["parameter-budget"][1]["n_params"] == 483
    assert not checks["fits-training-data"][0]  # an untrained network
    assert "fresh-data" not in checks  # hidden checks never run here


def test_quick_check_stands_aside_in_the_official_run():
    out = _run("""
        from rich.console import Console
        from grader.quick import quick_check
        from reference.models import TinyMLP
        console = Console(record=True)
        print(quick_check("tiny-model", console=console, model=TinyMLP((3,))), console.export_text())
    """, GRADER_SANDBOX="1")
    assert "\nNone " in out and "official run" in out


def test_in_the_official_run_it_stands_aside_without_importing_rich():
    """Every graded kernel of a notebook that keeps the starting notebook's self-check cell runs that cell: its one
    line costs no import of rich there."""
    out = _run("""
        import sys
        from grader.quick import quick_check
        print(quick_check("tiny-model", model=None), "rich" in sys.modules)
    """, GRADER_SANDBOX="1")
    assert out.splitlines() == ["(quick check skipped: this is the official run, which grades the whole notebook)",
                                "None False"]


# A student's session: the solution notebook's cells run in a real IPython shell (as in Jupyter), then the
# self-check cell. The shell's history is what the checks that read code see, as in a notebook.
EARLY_STOPPING = """
    import json, os
    os.environ.pop("GRADER_SANDBOX", None)
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    for cell in nbformat.read("reference/notebooks/early-stopping.ipynb", 4).cells[:-1]:
        if cell.cell_type == "code":
            assert shell.run_cell(cell.source, store_history=True).success
    check_cell = "\\n".join([
        "from rich.console import Console",
        "from grader.quick import quick_check",
        "console = Console(record=True, width=250)",
        "result = quick_check('early-stopping', console=console, train_model_extended=train_model_extended,",
        "                     model=model, best_epoch=best_epoch, history=history)"])
    assert shell.run_cell(check_cell, store_history=True).success
    result = shell.user_ns["result"]
    print(json.dumps({"text": shell.user_ns["console"].export_text(), "score": [result.score, result.max_score],
                      "checks": {c.id: c.passed for c in result.checks},
                      "pending": {p.id: p.reason for p in result.pending}}))
"""


def test_a_correct_early_stopping_solution_passes_all_it_can_and_leaves_the_probes_to_the_official_run():
    out = json.loads(_run(EARLY_STOPPING, cwd=str(ROOT)).splitlines()[-1])
    assert all(out["checks"].values()) and out["score"][0] == out["score"][1] == 6.5  # probes once counted as failed
    official = {k: v for k, v in out["pending"].items() if v}
    assert {"grader-run-best-epoch", "grader-run-patience", "grader-run-restored",
            "restored-without-trigger"} <= set(official)
    assert official["grader-run-patience"] == ("Checked in the official run: it needs `grader_run`, which the grader "
                                               "makes by running your train_model_extended on its own data (patience 5).")
    assert out["pending"]["hidden-test"] == ""  # hidden: graded later, as in `grader check`
    assert "FAIL" not in out["text"] and "more in checks only the official run can make" in out["text"]


def test_an_unknown_keyword_is_named_with_the_names_the_exercise_expects():
    from grader.quick import QuickCheckError, quick_check

    with pytest.raises(QuickCheckError) as error:
        quick_check("tiny-model", net=object())
    assert str(error.value).startswith("quick_check('tiny-model') got `net`, which tiny-model does not check. It "
                                       "checks: `model` (your trained network")
    assert "quick_check('tiny-model', model=model)" in str(error.value)


def test_a_value_not_passed_in_is_not_checked_rather_than_failed():
    from grader.quick import quick_check

    result = quick_check("early-stopping", console=Console(record=True, width=250), best_epoch=13)
    reasons = {p.id: p.reason for p in result.pending}
    assert reasons["stopped-after-patience"] == ("Not checked here: it needs `history`. Pass it as "
                                                 "quick_check(..., history=history).")
    assert reasons["own-function"].startswith("Not checked here: it needs `train_model_extended`")
    assert not any("must define" in c.message for c in result.checks)
