"""Run every benchmark in bench/ in turn; exit non-zero if any goal is missed.

The peers benchmark (bench/peers.py) needs its own venv: `make bench-peers` builds it and runs it.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
BENCHES = ["startup.py", "seed_variance.py", "tiny_search.py", "mnist_epoch.py", "check_wall.py", "export_cost.py",
           "batch_class.py", "cluster.py"]


def main() -> int:
    failed = []
    for bench in BENCHES:
        print(f"\n=== {bench} ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / bench)]).returncode != 0:
            failed.append(bench)
    print(f"\nbenchmarks done; goals missed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
