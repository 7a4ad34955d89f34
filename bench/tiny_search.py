"""Time the tiny-model search on one core. Goal: <= 21 parameters found within 2 minutes.

Run: ``make bench`` or ``.venv/bin/python bench/tiny_search.py``.
"""

from __future__ import annotations

import sys

from common import record, timed

from reference.extras.tiny_search import search_smallest_mlp

LIMIT_S = 120


def main() -> int:
    seconds, result = timed(lambda: search_smallest_mlp(log=lambda line: print(line, flush=True)))
    best = result.best
    met = best is not None and best.n_params <= 21 and seconds <= LIMIT_S
    print(f"smallest: {best.n_params if best else None} parameters, {seconds:.1f}s on 1 core "
          f"(goal <= 21 within {LIMIT_S}s): {'met' if met else 'NOT met'}")
    path = record("tiny_search", {"seconds": seconds, **result.to_json(), "goal_met": met})
    print(f"written {path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
