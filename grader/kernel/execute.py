"""Run a prepared notebook in a fresh sandboxed kernel with nbclient, and report what happened.

Execution returns data only; scoring happens elsewhere. Student cells run one at a
time under a per-cell timeout capped by what is left of the notebook's total. A cell
that raises is recorded and the next cell runs, so later exports can still earn
credit. A cell that times out is interrupted, the remaining student cells are
skipped, and the export cell still runs with its own budget. A dead kernel ends the
run. Outputs beyond the cap are dropped as they arrive.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets import Type

from grader.kernel.factory_client import FACTORY_LOST, FELL_BACK, KERNEL_ENDED, LOST_EXIT
from grader.kernel.kernel_export import DIGEST_LINE
from grader.kernel.notebook import PreparedNotebook
from grader.kernel.sandbox import INTERPRETER, Sandbox
from grader.results import Status

TIMEOUT_ENAME = "GraderCellTimeout"
STARTUP_TIMEOUT_S = 60
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TRACEBACK_TAIL_LINES = 25


@dataclass(frozen=True)
class CellError:
    cell: int  # the student's code-cell number, 1-based; 0 for the grader's own cells
    ename: str
    evalue: str
    traceback: str


@dataclass
class Execution:
    status: Status = Status.OK
    reason: str | None = None
    errors: list[CellError] = field(default_factory=list)
    exported: bool = False
    timings: dict = field(default_factory=dict)
    outputs_truncated: bool = False
    export_digest: str | None = None  # what the export cell said it wrote (kernel_export.folder_digest)
    kernel_start: str = "fresh launch"  # or "forked from the pre-warmed factory"; a fallback says why
    kernel_lost: bool = False  # a ``Deferred`` kernel died while it waited: nothing of the notebook ran
    machinery_lost: str = ""  # why the kernel died with the grader's own machinery (its factory, its launcher)
    student_began: bool = False  # the first student cell was sent: what fails before that is the grader's machinery

    @property
    def traceback(self) -> str:
        return self.errors[0].traceback if self.errors else ""


class SandboxKernelClient(AsyncKernelClient):
    """jupyter_client's client, less the 0.2 s of IOPub silence it waits for after every kernel start.

    That wait drains the status messages of the kernel_info request; nbclient matches each message to its
    own request and ignores the rest, so they need no draining. A third of a forked kernel's start went there.
    """

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            with contextlib.suppress(Empty):
                reply = await self.shell_channel.get_msg(timeout=1)
                if reply["msg_type"] == "kernel_info_reply" and await self._iopub_joined():
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    wait_for_ready = _async_wait_for_ready  # the async client binds the public name to the base class's method

    async def answers(self, timeout_s: float = 2.0) -> bool:
        """Whether the kernel replies now: one that waited for its notebook may have died meanwhile."""
        asked = self.kernel_info()
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = await self.shell_channel.get_msg(timeout=left)
            except Empty:
                return False
            if reply.get("parent_header", {}).get("msg_id") == asked:
                return True
        return False

    async def _iopub_joined(self, tries: int = 20) -> bool:
        """Whether IOPub delivers: a subscriber that joined late missed the first status, so ask for another."""
        for _ in range(tries):
            with contextlib.suppress(Empty):
                await self.iopub_channel.get_msg(timeout=0.01)
                return True
            self.kernel_info()
        return False


def _pending(method: Callable) -> Callable:
    """jupyter_client's ``in_pending_state`` (the ``ready`` future set when ``method`` ends) without the 10 ms sleep it
    adds after each start and shutdown, there for its own tests: 10 ms on every kernel's start, and on its stop."""
    @functools.wraps(method)
    async def pending(self, *args, **kwargs):
        if self._attempted_start or not self._ready:
            self._ready = asyncio.get_running_loop().create_future()
        try:
            out = await method(self, *args, **kwargs)
        except Exception as e:
            self._ready.set_exception(e)
            self._ready.exception()  # marked as seen, where jupyter_client logs it: the caller gets the error itself
            raise
        if self.owns_kernel:
            self._ready.set_result(None)
        return out

    return pending


class SandboxKernelManager(AsyncKernelManager):
    """Starts the grader's own interpreter's ipykernel through the sandbox launcher."""

    client_factory = Type(SandboxKernelClient, klass=AsyncKernelClient)
    start_kernel = _async_start_kernel = _pending(AsyncKernelManager._async_start_kernel.__wrapped__)
    shutdown_kernel = _async_shutdown_kernel = _pending(AsyncKernelManager._async_shutdown_kernel.__wrapped__)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = [INTERPRETER, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]
        fresh = self.grader_sandbox.wrap(command)
        factory = self.grader_sandbox.factory
        return factory.wrap(fresh) if factory else fresh  # the factory's client falls back to ``fresh`` itself

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # After the kill that ends every run, jupyter_client polls for the exit every 0.1 s: a tenth of a
        # second per notebook, most of a watch-mode re-check's own overhead.
        await super()._async_wait(min(pollinterval, 0.001))

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        import os

        if self.grader_sandbox.user:  # written 0600 by us; the sandbox user must read it
            os.chown(self.connection_file, *self.grader_sandbox.user)
        await super()._async_launch_kernel(kernel_cmd, **kw)
        self.grader_sandbox.launcher_pid = self.provisioner.pid if self.provisioner else None


class CappedClient(NotebookClient):
    """NotebookClient that stops storing outputs past a byte budget for the whole notebook.

    The export cell's output is not stored at all: only the digest line its exporter prints is kept,
    whatever the student's code printed before (the grader's probes call the student's functions).
    """

    output_budget = 256 * 1024
    truncated = False
    export_index = -1
    export_digest: str | None = None

    async def async_execute_cell(self, *args, **kwargs):
        iopub_timeout = self.iopub_timeout
        try:
            return await super().async_execute_cell(*args, **kwargs)
        finally:
            self.iopub_timeout = iopub_timeout  # lowered for this cell only, where it timed out

    async def _async_handle_timeout(self, timeout: int, cell=None):
        # Interrupted, a cell's last output and idle status follow at once, or never (it ignores the interrupt):
        # nbclient would wait its whole iopub_timeout for them, and the caller then gives it interrupt_grace_s more.
        self.iopub_timeout = min(self.iopub_timeout, 1)
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        if cell_index == self.export_index:
            text = msg.get("content", {}).get("text", "") if msg.get("msg_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(DIGEST_LINE):
                    self.export_digest = line[len(DIGEST_LINE):].strip()
            return None
        size = len(json.dumps(msg.get("content", {}), default=str))
        if self.truncated or size > self.output_budget:
            if not self.truncated:
                self.truncated = True
                outs.append({"output_type": "stream", "name": "stderr",
                             "text": "[further output dropped by the grader: output limit reached]\n"})
            return None
        self.output_budget -= size
        return super().output(outs, msg, display_id, cell_index)


@dataclass(frozen=True)
class Deferred:
    """A notebook that comes after its kernel has started: watch mode starts the next kernel while the student edits.

    The kernel starts and runs ``prelude``'s prelude cell (the grader's own, the same for every notebook of the
    exercise), then ``wait`` blocks until the notebook is there; it returns None when none will come.
    """

    prelude: PreparedNotebook
    wait: Callable[[], PreparedNotebook | None]
    warm: str = ""  # the grader's code run silently while it waits (``cells.warm_source``)
    # The export cell's source as it stands once the student's cells ended (what the grader learned meanwhile).
    export_then: Callable[[], str] | None = None


def _clean_traceback(message: str) -> str:
    """The traceback's tail, without nbclient's echo of the cell source and without ANSI colours."""
    lines = ANSI.sub("", message).splitlines()
    separators = [i for i, line in enumerate(lines) if line == "-" * 18]  # nbclient: header / source / traceback
    body = lines[separators[1] + 1:] if len(separators) >= 2 else lines
    return "\n".join("\n".join(body).strip("\n").splitlines()[-TRACEBACK_TAIL_LINES:])


def _error_from(exc: CellExecutionError, cell: int) -> CellError:
    return CellError(cell, exc.ename or "Error", str(exc.evalue or "")[:2000], _clean_traceback(str(exc)))


def _quiet_once_killed(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio's report of a task's exception: a kernel that died as the run was stopped (Ctrl-C in watch mode) is
    how every stop ends, and printed a traceback while asyncio.run shut down; anything else is reported as usual."""
    if isinstance(context.get("exception"), (DeadKernelError, asyncio.CancelledError)):
        return
    loop.default_exception_handler(context)


def _keep_process_signals(*args) -> None:
    raise RuntimeError("SIGINT and SIGTERM stay with the grader")  # nbclient then installs none of its own


async def _run(notebook: PreparedNotebook | Deferred, sandbox: Sandbox, client: CappedClient, result: Execution,
               phase_limit: float | None) -> None:
    """Start the kernel, run the prelude, then (a ``Deferred`` notebook once it came) the student's cells.

    ``phase_limit`` bounds each side of the wait for a ``Deferred`` notebook, which no limit counts.
    """
    start = time.monotonic()
    # nbclient would take SIGINT and SIGTERM for the whole process while a kernel runs, and leave the defaults
    # behind: a batch worker would then survive its stop signal, and Ctrl-C would print a traceback per worker.
    asyncio.get_running_loop().add_signal_handler = _keep_process_signals
    asyncio.get_running_loop().set_exception_handler(_quiet_once_killed)
    deferred = isinstance(notebook, Deferred)
    first = notebook.prelude if deferred else notebook
    # cleanup_kc: we pass our own kernel manager, so nbclient would otherwise leave channels open.
    with open(sandbox.root / "kernel.log", "wb") as log:
        async with client.async_setup_kernel(cleanup_kc=True, env=sandbox.env, cwd=str(sandbox.workdir),
                                             stdout=None, stderr=log):
            result.timings["kernel_start"] = time.monotonic() - start
            result.timings["pid"] = client.km.provisioner.pid if client.km.provisioner else None
            # The prelude: torchvision workaround and threads; counts towards nobody's budget.
            client.timeout = int(sandbox.limits.cell_timeout_s)
            await asyncio.wait_for(client.async_execute_cell(first.nb.cells[first.prelude_index],
                                                             first.prelude_index), phase_limit)
            prepared = notebook
            if deferred:
                if notebook.warm:
                    await asyncio.wait_for(_silently(client, notebook.warm), phase_limit)
                waiting = time.monotonic()
                prepared = await _in_thread(notebook.wait)
                result.timings["waited"] = time.monotonic() - waiting
                if prepared is None:
                    return
                if not await client.km.is_alive() or not await client.kc.answers():
                    result.kernel_lost = True
                    return
                client.nb, client.export_index = prepared.nb, prepared.export_index
            then = notebook.export_then if deferred else None
            await asyncio.wait_for(_run_cells(prepared, sandbox, client, result, then), phase_limit)
            # The run is over: the kernel dies while nbclient closes its side, instead of after.
            sandbox.kill(result.timings.get("pid"), wait=False)


async def _silently(client: CappedClient, source: str) -> None:
    """Run the grader's own ``source`` with no history, output or cell events; returns when it ends or the kernel died.

    Its failure costs only the head start it was for: a kernel that died is found and replaced before the notebook runs.
    """
    msg_id = client.kc.execute(source, silent=True, store_history=False)
    while True:
        try:
            reply = await client.kc.shell_channel.get_msg(timeout=1)
        except Empty:
            if not await client.km.is_alive():
                return
            continue
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return


async def _in_thread(wait: Callable[[], PreparedNotebook | None]) -> PreparedNotebook | None:
    """``wait()`` in a daemon thread of its own: asyncio's default executor would make ``asyncio.run`` wait for it
    when Ctrl-C ends the loop, and it waits for the stop that Ctrl-C's handler has not yet set."""
    loop = asyncio.get_running_loop()
    came = loop.create_future()

    def deliver(method, value) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(lambda: came.done() or method(value))

    def work() -> None:
        try:
            deliver(came.set_result, wait())
        except BaseException as e:  # noqa: BLE001 - handed to the waiting coroutine
            deliver(came.set_exception, e)

    threading.Thread(target=work, name="grader-wait-notebook", daemon=True).start()
    return await came


async def _run_cells(prepared: PreparedNotebook, sandbox: Sandbox, client: CappedClient, result: Execution,
                     export_then: Callable[[], str] | None = None) -> None:
    """The student cells under their time limits, then the export cell (its source from ``export_then``, if given)."""
    limits = sandbox.limits
    cells = prepared.nb.cells
    deadline = time.monotonic() + limits.total_timeout_s
    student_start, stuck = time.monotonic(), False
    result.student_began = True
    for index in prepared.student_cells:
        remaining = deadline - time.monotonic()
        number = prepared.student_number(index)
        if remaining <= 0:
            result.status = Status.TIMEOUT
            result.reason = (f"the notebook ran out of time before code cell {number} "
                             f"(limit {limits.total_timeout_s:g} s for all cells)")
            break
        budget = min(limits.cell_timeout_s, remaining)
        client.timeout = max(1, int(budget))
        try:
            await client.async_execute_cell(cells[index], index)
        except CellExecutionError as e:
            if e.ename == TIMEOUT_ENAME:
                result.status = Status.TIMEOUT
                which = "per-cell" if budget == limits.cell_timeout_s else "whole-notebook"
                result.reason = f"code cell {number} did not finish within {budget:.0f} s (the {which} limit)"
                # Interrupted, it may run on (it catches KeyboardInterrupt, say): the export would only queue behind
                # it for its own limit. Such a kernel is stopped instead, with nothing exported.
                stuck = not await client.kc.answers(limits.interrupt_grace_s)
                if stuck:
                    result.reason += (f", and it did not stop when interrupted ({limits.interrupt_grace_s:g} s), so "
                                      "it was stopped without exporting any value")
                break
            result.errors.append(_error_from(e, number))
    result.timings["student_cells"] = time.monotonic() - student_start
    if stuck:
        return
    export_start = time.monotonic()
    if export_then is not None:
        cells[prepared.export_index].source = export_then()
    client.timeout = int(limits.export_timeout_s)
    try:
        await client.async_execute_cell(cells[prepared.export_index], prepared.export_index)
        result.exported = True
    except CellExecutionError as e:
        result.errors.append(_error_from(e, 0))
    result.timings["export"] = time.monotonic() - export_start


def _kernel_log(sandbox: Sandbox) -> str:
    try:
        return (sandbox.root / "kernel.log").read_text(errors="replace")
    except OSError:
        return ""


def _machinery_lost(sandbox: Sandbox, code: int | None) -> str:
    """Why a kernel forked from the factory died with the grader's own machinery; "" when it died of itself.

    The factory's client (the kernel's launcher) writes its last line to the kernel log after the kernel ended,
    so the last of its lines is its own: ``KERNEL_ENDED`` when the factory told it how the kernel ended (an
    ``os._exit``, a signal, the memory limit: the notebook's doing). ``FACTORY_LOST`` with ``LOST_EXIT``, from a
    factory that no longer answers, means the factory died under the kernel; no line at all from a client killed
    by a signal means someone killed the launcher from outside. Only the grader's processes reach either: the
    kernel runs as another user, in its own process namespace.
    """
    if sandbox.factory is None or not sandbox.factory.socket or code is None:
        return ""
    log = _kernel_log(sandbox)
    said = [line for line in log.splitlines() if line.startswith("grader-factory:")]
    if any(line.startswith(FELL_BACK) for line in said):  # a fresh launch after all: no factory to lose
        return ""
    last = said[-1] if said else ""
    if last.startswith(KERNEL_ENDED):
        return ""
    if code == LOST_EXIT and last.startswith(FACTORY_LOST) and not sandbox.factory.answers():
        return "the grader's kernel factory ended while this notebook ran (it was killed, or the machine stopped it)"
    if code < 0 and not last:
        return (f"the kernel's launcher was killed from outside (signal {-code}) while this notebook ran, before "
                "the kernel ended")
    return ""


def _kernel_start(sandbox: Sandbox) -> str:
    """How this run's kernel started, from the client's own words in the kernel log when it fell back."""
    if sandbox.factory is None:
        return "fresh launch"
    if not sandbox.factory.socket:
        return f"fresh launch: {sandbox.factory.reason}"
    log = _kernel_log(sandbox)
    fell_back = next((line for line in log.splitlines() if line.startswith(FELL_BACK)), None)
    return fell_back.removeprefix("grader-factory: ") if fell_back else "forked from the pre-warmed factory"


def find_kernel_spec() -> KernelSpec:
    """The kernel's spec, looked up as a kernel's start does: the first lookup imports ipykernel's (40 ms)."""
    return SandboxKernelManager().kernel_spec


def execute(notebook: PreparedNotebook | Deferred, sandbox: Sandbox) -> Execution:
    """Run the prepared notebook (or, ``Deferred``, the one that comes); never raises for anything it does."""
    km = SandboxKernelManager(transport="ipc", connection_file=str(sandbox.conn_dir / "kernel.json"))
    km.grader_sandbox = sandbox
    first = notebook.prelude if isinstance(notebook, Deferred) else notebook
    client = CappedClient(first.nb, km=km, timeout=int(sandbox.limits.cell_timeout_s),
                          startup_timeout=STARTUP_TIMEOUT_S, interrupt_on_timeout=True,
                          error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
                          shutdown_kernel="immediate", allow_errors=False, record_timing=False,
                          resources={"metadata": {"path": str(sandbox.workdir)}})
    client.output_budget = sandbox.limits.max_output_kb * 1024
    client.export_index = first.export_index
    result = Execution()
    hard_limit = sandbox.limits.total_timeout_s + sandbox.limits.export_timeout_s + 2 * STARTUP_TIMEOUT_S
    started = time.monotonic()
    failure = ""  # what ended the run early, in the machinery's words
    try:
        # A notebook that comes later gets the limit from its arrival: each side of the wait has its own.
        phased = isinstance(notebook, Deferred)
        asyncio.run(asyncio.wait_for(_run(notebook, sandbox, client, result, hard_limit if phased else None),
                                     None if phased else hard_limit))
    except DeadKernelError:
        result.status = Status.ERROR
        failure = "the kernel died"
        code = km.provisioner.process.poll() if km.provisioner and km.provisioner.process else None
        how = f" (exit code {code})" if code and code > 0 else (f" (killed by signal {-code})" if code else "")
        result.machinery_lost = _machinery_lost(sandbox, code)
        result.reason = ("the kernel died" + how + ". Common causes: a call to os._exit or a crash in native code, "
                         f"or running out of memory (limit {sandbox.limits.memory_mb} MB)")
    except (CellTimeoutError, asyncio.TimeoutError):
        result.status = Status.TIMEOUT
        failure = "the grader's prelude cell did not finish in time"
        result.reason = result.reason or ("the notebook did not respond to an interrupt and was stopped "
                                          f"(limit {sandbox.limits.total_timeout_s:g} s)")
    except RuntimeError as e:  # kernel failed to start, or nbclient gave up on it
        result.status = Status.ERROR
        failure = f"the kernel could not be started: {e}"
        result.reason = f"the kernel could not be run: {e}"
    except Exception as e:  # noqa: BLE001 - whatever the kernel sends, the run ends in a graded outcome
        result.status = Status.ERROR
        failure = f"{type(e).__name__}: {str(e)[:300]}"
        result.reason = (f"the kernel's replies could not be processed ({type(e).__name__}: {e}); this happens "
                         "when a cell breaks the kernel itself, for example by patching modules it relies on (such "
                         "as json) or by using up the process limit")
    finally:
        result.timings["total"] = time.monotonic() - started - result.timings.get("waited", 0.0)
        result.outputs_truncated = client.truncated
        result.export_digest = client.export_digest
        result.kernel_start = _kernel_start(sandbox)
        atexit.unregister(client._cleanup_kernel)  # nbclient leaves it behind when the kernel fails to start
        sandbox.kill(result.timings.get("pid"))
        sandbox.launcher_pid = None  # reaped: the number may soon belong to another process
    if result.status is not Status.OK and not result.student_began and not result.kernel_lost:
        # No student byte ran: a kernel that did not start, or a prelude of the grader's own that failed, is no grade.
        result.machinery_lost = result.machinery_lost or (
            f"the grader's kernel failed before the notebook's first cell ran ({failure}; the sandbox's memory limit "
            f"is {sandbox.limits.memory_mb} MB)")
    if result.status is Status.OK and result.errors:
        first = result.errors[0]
        result.status = Status.ERROR
        where = f"code cell {first.cell}" if first.cell else "the grader's export step"
        said = (first.evalue or "").strip().splitlines()  # `raise SystemExit` says nothing: no colon left dangling
        result.reason = f"{where} raised {first.ename}" + (f": {said[0]}" if said else "")
        result.reason += missing_module_hint(first)
    return result


# What students' notebooks commonly import, named where the grading environment has it.
COMMON_PACKAGES = ("torch", "torchvision", "numpy", "matplotlib", "pandas", "tqdm", "torchinfo", "scipy", "sklearn",
                   "seaborn")


def missing_module_hint(error: CellError) -> str:
    """For an import of a module the grading environment lacks, what it has instead; "" for any other error."""
    import importlib.util

    found = re.match(r"No module named '([^']+)'", error.evalue or "")
    if error.ename != "ModuleNotFoundError" or not found:
        return ""
    has = [name for name in COMMON_PACKAGES if importlib.util.find_spec(name) is not None]
    return (f". The grading environment has no module '{found.group(1)}': only your notebook runs there, with "
            f"{', '.join(has)} and Python's standard library. Remove that import and what uses it; a package "
            "installed on your own machine is not on the grader's")
