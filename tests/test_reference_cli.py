import json
import subprocess
import sys

from reference.cli import EXPERIMENTS, experiment, main


def test_command_prints_the_course_lines_and_writes_results(tmp_path, capsys):
    assert main(["manual-steplr", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "After epoch 5: LR = 0.003125" in out
    assert str(tmp_path.resolve()) in out
    data = json.loads((tmp_path / "manual-steplr" / "results.json").read_text())
    assert all(c["reproduced"] for c in data["comparisons"]) and len(data["comparisons"]) == 6
    assert "| after epoch | lr |" in (tmp_path / "manual-steplr" / "results.md").read_text()


def test_figures_are_written(tmp_path):
    assert main(["schedulers", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "schedulers" / "scheduler_grid.png").stat().st_size > 10_000


def test_unknown_experiment_is_a_usage_error():
    """``python -m reference`` as typed: a name it does not know is a usage error, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "reference", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_every_experiment_name_leads_to_its_function():
    """The table names each experiment's module and function as text, resolved only when it runs."""
    for name in EXPERIMENTS:
        assert callable(experiment(name)), name
