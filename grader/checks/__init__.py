"""The check library: every check kind, registered in ``REGISTRY`` when this package is imported.

Every module of this package is imported here, so a new kind is one ``@check_kind`` function
in any of them (or in a new one). Importing is cheap: check modules load torch only inside
the checks that need it, so ``grader exercises`` validates every spec without paying for torch.
"""

import importlib
import pkgutil

from grader.checks.base import CheckContext, CheckFailed, Outcome
from grader.checks.registry import REGISTRY, BoundCheck, Param, bind, check_kind, run_checks

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "BoundCheck", "CheckContext", "CheckFailed", "Outcome", "Param", "bind", "check_kind",
           "run_checks"]
