"""Check kinds, registered by name; importing this package registers all of them."""

from . import mnist, models, schedulers, seeds, static, training  # noqa: F401  (registration)
from .base import REGISTRY, BoundCheck, CheckContext, CheckFailed, Outcome, bind, run_checks

__all__ = ["REGISTRY", "BoundCheck", "CheckContext", "CheckFailed", "Outcome", "bind", "run_checks"]
