"""Grade: one submission (``engine``), a class (``batch``), hidden seeds, discovery of submissions, Gradescope."""
