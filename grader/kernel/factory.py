"""A pre-warmed kernel factory: one parent imports torch once, each submission gets a fresh forked child.

The parent (``zygote.py``) runs no student code; each child applies the whole sandbox before the
kernel starts (see ``zygote.py``), so isolation is the fresh launch's. Where forking is not
possible (not Linux, or the parent failed to warm up), ``start_factory`` returns a factory that is
not ``ready`` and says why; kernels then start fresh and ``SubmissionResult.sandbox`` records it.
Use: ``with start_factory() as factory: grade_submission(..., factory=factory.handle)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from grader.kernel import cgroups, factory_client, sandbox_files

ZYGOTE = pathlib.Path(__file__).with_name("zygote.py")
CLIENT = pathlib.Path(__file__).with_name("factory_client.py")
# What every kernel imports anyway: ipykernel's own start (its shell, debugger and event loop), torch and the
# export's torch.export for the prelude and the export cell, torch.save's settings (its first call imports them),
# pyplot with Agg for plots. None starts a thread.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
           "ipykernel.control", "tornado.platform.asyncio", "IPython.core.history", "sqlite3", "pdb",
           "numpy", "torch", "torch.export", "torch.fx.experimental.symbolic_shapes", "torch.utils.serialization",
           "matplotlib.pyplot")
WARM_TIMEOUT_S = 120
HEADROOM_MB = 512  # what a kernel must be able to allocate above the factory's own mappings
OFF_ENV = "GRADER_KERNEL_FACTORY"  # "0" turns the factory off (fresh launches), e.g. to measure it
# {"socket", "pid"} of a factory another process keeps warm (the warm server's): used instead of starting one.
SHARED_ENV = "GRADER_SHARED_KERNEL_FACTORY"


@dataclasses.dataclass(frozen=True)
class FactoryHandle:
    """What a worker needs to ask the factory for a kernel: picklable, so batch workers get it too.

    Without a ``socket`` there is no factory, and ``reason`` says why kernels start fresh.
    """

    socket: str | None
    reason: str = ""
    mapped_mb: int = 0  # the address space every forked kernel starts with (torch and friends already loaded)
    warming_pid: int = 0  # the factory's pid while it may still be warming up (see ``resolve``)

    def resolve(self, timeout_s: float = WARM_TIMEOUT_S) -> FactoryHandle:
        """A handle to a ready factory, waiting for one still warming up; or a fresh-launch one saying why.

        A batch hands its workers the handle before the factory is warm, so that the workers' own start-up
        and the factory's imports overlap.
        """
        if not self.warming_pid or not self.socket:
            return self
        status_file = pathlib.Path(self.socket).with_name("status")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                status = status_file.read_text().strip()
            except OSError:
                status = ""
            if status.startswith("ready "):
                return FactoryHandle(self.socket, mapped_mb=int(status.split()[1]) // 1024)
            if status or not _running(self.warming_pid):
                return FactoryHandle(None, f"the factory did not warm up: {status or 'it exited'}")
            time.sleep(0.02)
        return FactoryHandle(None, f"the factory did not warm up within {timeout_s:g} s")

    def answers(self, timeout_s: float = 2.0) -> bool:
        """Whether the factory still listens: a connection it accepts and drops (a request without a line)."""
        if not self.socket:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(timeout_s)
                probe.connect(self.socket)
        except OSError:
            return False
        return True

    def within(self, memory_mb: int) -> FactoryHandle:
        """This handle, or a fresh-launch one when a kernel limited to ``memory_mb`` would have no room to grow."""
        if self.socket and memory_mb < self.mapped_mb + HEADROOM_MB:
            return FactoryHandle(None, f"the memory limit ({memory_mb} MB) leaves no room above what a warm kernel "
                                       f"already maps ({self.mapped_mb} MB)")
        return self

    def wrap(self, fresh: list[str]) -> list[str]:
        """The kernel command that forks from the factory, falling back to ``fresh`` if it is gone."""
        return [sys.executable, "-I", "-S", str(CLIENT), self.socket, "--", *fresh] if self.socket else fresh


@dataclasses.dataclass
class KernelFactory:
    """A running factory (``ready``), or why there is none (``reason``)."""

    ready: bool
    reason: str = ""
    process: subprocess.Popen | None = None
    folder: pathlib.Path | None = None
    warm_seconds: float = 0.0
    mapped_mb: int = 0
    shared: FactoryHandle | None = None  # a factory another process owns and keeps (``SHARED_ENV``)

    @property
    def handle(self) -> FactoryHandle:
        """The handle to give kernels, usable while the factory still warms up (``FactoryHandle.resolve`` waits)."""
        if self.shared is not None:
            return self.shared
        if self.process is not None and self.folder is not None and (self.ready or self.process.poll() is None):
            return FactoryHandle(str(self.folder / "factory.sock"), mapped_mb=self.mapped_mb,
                                 warming_pid=0 if self.ready else self.process.pid)
        return FactoryHandle(None, self.reason if self.process is None else "the factory exited while warming up")

    def alive(self) -> bool:
        return self.ready and self.process is not None and self.process.poll() is None

    def shared_env(self) -> dict[str, str]:
        """What another process of this uid needs to fork its kernels from this factory (``SHARED_ENV``).

        Empty when this process does not own a running factory: that process then starts its own.
        """
        if self.process is None or self.folder is None or self.process.poll() is not None:
            return {}
        return {SHARED_ENV: json.dumps({"socket": str(self.folder / "factory.sock"), "pid": self.process.pid})}

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.ready = False

    def __enter__(self) -> KernelFactory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _refused(reason: str) -> KernelFactory:
    return KernelFactory(False, reason)


def launch_factory(preload: tuple[str, ...] = PRELOAD) -> KernelFactory:
    """Start the parent without waiting for it to warm up; ``wait_ready`` finishes the start.

    The socket sits in a folder only the grader's uid can enter, outside every sandbox's view (the
    sandbox's mount namespace shows none of the grader's temp files), and the parent also refuses
    any other uid.
    """
    if os.environ.get(OFF_ENV) == "0":
        return _refused(f"turned off ({OFF_ENV}=0)")
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return _refused(f"forking a warm kernel needs Linux (this is {sys.platform})")
    if os.environ.get(SHARED_ENV):
        return _shared(os.environ[SHARED_ENV])
    from grader.kernel.sandbox import scrubbed_env

    folder = pathlib.Path(tempfile.mkdtemp(prefix="grader-factory-"))
    os.chmod(folder, 0o700)
    (folder / "home").mkdir()
    env = scrubbed_env(folder / "home")
    env.pop("GRADER_SANDBOX", None)
    fonts = sandbox_files.font_cache()
    if fonts is not None:
        env["MPLCONFIGDIR"] = str(fonts)
    with open(folder / "factory.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(ZYGOTE), str(folder / "factory.sock"),
                                    json.dumps(list(preload)), str(os.getpid())], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL,
                                   stderr=log, env=env, cwd=folder / "home", start_new_session=True)
    return KernelFactory(False, "warming up", process, folder)


def _shared(description: str) -> KernelFactory:
    """Another process's factory: used like one's own, but left running on ``close``."""
    try:
        shared = json.loads(description)
        handle = FactoryHandle(str(shared["socket"]), warming_pid=int(shared["pid"])).resolve()
    except (ValueError, KeyError, TypeError):
        return _refused(f"{SHARED_ENV} is not a factory's description")
    if not handle.socket:
        return _refused(f"the shared factory is not usable: {handle.reason}")
    return KernelFactory(True, shared=handle)


def wait_ready(factory: KernelFactory, timeout_s: float = WARM_TIMEOUT_S) -> KernelFactory:
    """Block until the parent has imported everything and listens, or record why it never will."""
    if factory.process is None or factory.ready:
        return factory
    start = time.monotonic()
    resolved = factory.handle.resolve(timeout_s)
    factory.warm_seconds = time.monotonic() - start
    if resolved.socket:
        factory.ready, factory.reason, factory.mapped_mb = True, "", resolved.mapped_mb
        return factory
    err = _log_tail(factory.folder / "factory.log")
    factory.close()
    factory.reason = resolved.reason + (f" ({err})" if err else "")
    return factory


def preload_for(reads_mnist: bool) -> tuple[str, ...]:
    """What a factory for an exercise's kernels imports: torchvision too where the exercise reads MNIST, whose
    notebooks read it through torchvision's datasets, an import each kernel would otherwise pay (a tenth of a second of
    a small notebook's cells). The factory applies the workaround that import needs (torchvision_compat.py) first."""
    return (*PRELOAD, factory_client.TORCHVISION) if reads_mnist else PRELOAD


def factory_for(kernels: int, reads_mnist: bool = False) -> KernelFactory | None:
    """A factory (launched, not waited for) where one pays off: for two kernels or more, or where another process
    keeps one warm (``SHARED_ENV``). None for one kernel in a process of its own: a fresh kernel is up before a
    factory has warmed up."""
    return launch_factory(preload_for(reads_mnist)) if kernels >= 2 or kernels and os.environ.get(SHARED_ENV) else None


def start_factory(preload: tuple[str, ...] = PRELOAD, timeout_s: float = WARM_TIMEOUT_S) -> KernelFactory:
    """A warm factory, or one that says why there is none; use it as a context manager."""
    return wait_ready(launch_factory(preload), timeout_s)


def _running(pid: int) -> bool:
    return not cgroups.ended(pid)


def _log_tail(path: pathlib.Path) -> str:
    try:
        return path.read_text(errors="replace").strip().splitlines()[-1][:300]
    except (OSError, IndexError):
        return ""
