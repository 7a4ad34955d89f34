"""The in-notebook quick check: same exporter, loaders and checks; clearly not the grade."""

from rich.console import Console

from grader.quick import LABEL, quick_check
from reference.models import SimpleMLP, TinyMLP


def test_quick_check_scores_live_values_and_says_it_is_not_the_grade(monkeypatch):
    monkeypatch.delenv("GRADER_SANDBOX", raising=False)
    console = Console(record=True, width=200)
    result = quick_check("tiny-model", console=console, model=SimpleMLP())
    text = console.export_text()
    assert "NOT your grade" in LABEL and "NOT your grade" in text
    by_id = {c.id: c for c in result.checks}
    assert by_id["own-model"].passed
    assert by_id["parameter-budget"].metrics["n_params"] == 483
    assert not by_id["fits-training-data"].passed  # an untrained network
    assert "fresh-data" not in by_id  # hidden checks never run here


def test_quick_check_stands_aside_in_the_official_run(monkeypatch):
    monkeypatch.setenv("GRADER_SANDBOX", "1")
    console = Console(record=True)
    assert quick_check("tiny-model", console=console, model=TinyMLP((3,))) is None
    assert "official run" in console.export_text()
