"""Run one notebook in a sandboxed kernel: limits, notebook validation, the sandbox, nbclient, the grader's own cells."""
