"""A warm kernel factory on every cluster worker, as a batch has one on the grading machine.

Registered by the client as a dask worker plugin: each worker starts its own factory (torch and
ipykernel imported once) and forks every kernel it runs from it; a worker that joins later gets one
too. Where a factory cannot start, the worker's kernels start fresh, with the reason recorded, as they
do locally. Imports distributed: only the cluster path loads this module.
"""

from __future__ import annotations

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from grader.kernel.factory import FactoryHandle, KernelFactory, launch_factory

NAME = "grader-kernel-factory"


class KernelFactoryPlugin(WorkerPlugin):
    """Starts a factory when the worker starts (it warms up in the background), closes it when the worker ends."""

    name = NAME
    idempotent = True  # a second batch on the same workers keeps their factories

    def __init__(self) -> None:
        self.factory: KernelFactory | None = None

    def setup(self, worker) -> None:
        self.factory = launch_factory()

    def teardown(self, worker) -> None:
        if self.factory is not None:
            self.factory.close()


def worker_factory() -> FactoryHandle | None:
    """The factory of the dask worker running this, if the client gave it one."""
    try:
        plugin = get_worker().plugins.get(NAME)
    except ValueError:  # not inside a worker
        return None
    return plugin.factory.handle if isinstance(plugin, KernelFactoryPlugin) and plugin.factory else None
