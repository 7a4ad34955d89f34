"""Heavy imports without the garbage collector: none of its full collections while torch imports, and then frozen."""

import json
import os
import subprocess
import sys

SCRIPT = """
import gc, json
from grader.collector import importing
started = []
gc.callbacks.append(lambda phase, info: phase == "start" and started.append(info["generation"]))
with importing():
    import torch  # without the pause, six full collections over what it had imported so far
during, frozen = list(started), gc.get_freeze_count()
made = [[i] for i in range(1000)]  # the caller's own objects
with importing():
    import torch  # imported already: nothing new to freeze
print(json.dumps({"during": during, "frozen": frozen, "frozen again": gc.get_freeze_count() - frozen,
                  "enabled": gc.isenabled()}))
"""


def test_torch_imports_without_a_collection_and_what_it_made_is_frozen_but_nothing_else():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["during"] == [] and seen["enabled"]
    assert seen["frozen"] > 100_000 and seen["frozen again"] == 0
