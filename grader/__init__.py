"""The grader: a notebook's way from the kernel to the gradebook, one layer per folder (see the README's layout)."""
