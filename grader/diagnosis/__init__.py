"""Explain curves in a student's terms: convergence trends of loss curves, LR lists fitted to torch's schedulers,
a scheduler's cadence in a probe run, and why a model is not its best state (with facts read from the code)."""
