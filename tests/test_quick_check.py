"""The in-notebook quick check: same exporter, loaders and checks; clearly not the grade.

It runs in a fresh interpreter, as in a notebook kernel: the check reads which reference
modules the process has imported, and this test process has imported all of them.
"""

import json
import subprocess
import sys
import textwrap

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


def _run(code: str, **env) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180,
                          env={**__import__("os").environ, **env})
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
