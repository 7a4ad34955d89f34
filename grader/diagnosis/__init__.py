"""Explain curves in a student's terms: convergence trends of loss curves, LR lists fitted to torch's schedulers."""
