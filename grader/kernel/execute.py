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
import json
import re
import time
from dataclasses import dataclass, field

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.kernel.factory_client import FELL_BACK
from grader.kernel.kernel_export import DIGEST_LINE
from grader.kernel.notebook import PreparedNotebook
from grader.kernel.sandbox import Sandbox
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

    @property
    def traceback(self) -> str:
        return self.errors[0].traceback if self.errors else ""


class SandboxKernelManager(AsyncKernelManager):
    """Starts the grader's own interpreter's ipykernel through the sandbox launcher."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        import sys

        command = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]
        fresh = self.grader_sandbox.wrap(command)
        factory = self.grader_sandbox.factory
        return factory.wrap(fresh) if factory else fresh  # the factory's client falls back to ``fresh`` itself

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


def _clean_traceback(message: str) -> str:
    """The traceback's tail, without nbclient's echo of the cell source and without ANSI colours."""
    lines = ANSI.sub("", message).splitlines()
    separators = [i for i, line in enumerate(lines) if line == "-" * 18]  # nbclient: header / source / traceback
    body = lines[separators[1] + 1:] if len(separators) >= 2 else lines
    return "\n".join("\n".join(body).strip("\n").splitlines()[-TRACEBACK_TAIL_LINES:])


def _error_from(exc: CellExecutionError, cell: int) -> CellError:
    return CellError(cell, exc.ename or "Error", str(exc.evalue or "")[:2000], _clean_traceback(str(exc)))


def _keep_process_signals(*args) -> None:
    raise RuntimeError("SIGINT and SIGTERM stay with the grader")  # nbclient then installs none of its own


async def _run(prepared: PreparedNotebook, sandbox: Sandbox, client: CappedClient, result: Execution) -> None:
    start = time.monotonic()
    # nbclient would take SIGINT and SIGTERM for the whole process while a kernel runs, and leave the defaults
    # behind: a batch worker would then survive its stop signal, and Ctrl-C would print a traceback per worker.
    asyncio.get_running_loop().add_signal_handler = _keep_process_signals
    # cleanup_kc: we pass our own kernel manager, so nbclient would otherwise leave channels open.
    with open(sandbox.root / "kernel.log", "wb") as log:
        async with client.async_setup_kernel(cleanup_kc=True, env=sandbox.env, cwd=str(sandbox.workdir),
                                             stdout=None, stderr=log):
            await _run_cells(prepared, sandbox, client, result, start)


async def _run_cells(prepared: PreparedNotebook, sandbox: Sandbox, client: CappedClient, result: Execution,
                     start: float) -> None:
    """The prelude, the student cells under their time limits, then the export cell."""
    limits = sandbox.limits
    result.timings["kernel_start"] = time.monotonic() - start
    pid = client.km.provisioner.pid if client.km.provisioner else None
    result.timings["pid"] = pid
    cells = prepared.nb.cells
    # The prelude: torchvision workaround and threads; counts towards nobody's budget.
    client.timeout = int(limits.cell_timeout_s)
    await client.async_execute_cell(cells[prepared.prelude_index], prepared.prelude_index)
    deadline = time.monotonic() + limits.total_timeout_s
    student_start = time.monotonic()
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
                break
            result.errors.append(_error_from(e, number))
    result.timings["student_cells"] = time.monotonic() - student_start
    export_start = time.monotonic()
    client.timeout = int(limits.export_timeout_s)
    try:
        await client.async_execute_cell(cells[prepared.export_index], prepared.export_index)
        result.exported = True
    except CellExecutionError as e:
        result.errors.append(_error_from(e, 0))
    result.timings["export"] = time.monotonic() - export_start


def _kernel_start(sandbox: Sandbox) -> str:
    """How this run's kernel started, from the client's own words in the kernel log when it fell back."""
    if sandbox.factory is None:
        return "fresh launch"
    if not sandbox.factory.socket:
        return f"fresh launch: {sandbox.factory.reason}"
    try:
        log = (sandbox.root / "kernel.log").read_text(errors="replace")
    except OSError:
        log = ""
    fell_back = next((line for line in log.splitlines() if line.startswith(FELL_BACK)), None)
    return fell_back.removeprefix("grader-factory: ") if fell_back else "forked from the pre-warmed factory"


def execute(prepared: PreparedNotebook, sandbox: Sandbox) -> Execution:
    """Run the prepared notebook; never raises for anything the notebook does."""
    km = SandboxKernelManager(transport="ipc", connection_file=str(sandbox.conn_dir / "kernel.json"))
    km.grader_sandbox = sandbox
    client = CappedClient(prepared.nb, km=km, timeout=int(sandbox.limits.cell_timeout_s),
                          startup_timeout=STARTUP_TIMEOUT_S, interrupt_on_timeout=True,
                          error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
                          shutdown_kernel="immediate", allow_errors=False, record_timing=False,
                          resources={"metadata": {"path": str(sandbox.workdir)}})
    client.output_budget = sandbox.limits.max_output_kb * 1024
    client.export_index = prepared.export_index
    result = Execution()
    hard_limit = sandbox.limits.total_timeout_s + sandbox.limits.export_timeout_s + 2 * STARTUP_TIMEOUT_S
    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(_run(prepared, sandbox, client, result), hard_limit))
    except DeadKernelError:
        result.status = Status.ERROR
        code = km.provisioner.process.poll() if km.provisioner and km.provisioner.process else None
        how = f" (exit code {code})" if code and code > 0 else (f" (killed by signal {-code})" if code else "")
        result.reason = ("the kernel died" + how + ". Common causes: a call to os._exit or a crash in native code, "
                         f"or running out of memory (limit {sandbox.limits.memory_mb} MB)")
    except (CellTimeoutError, asyncio.TimeoutError):
        result.status = Status.TIMEOUT
        result.reason = result.reason or ("the notebook did not respond to an interrupt and was stopped "
                                          f"(limit {sandbox.limits.total_timeout_s:g} s)")
    except RuntimeError as e:  # kernel failed to start, or nbclient gave up on it
        result.status = Status.ERROR
        result.reason = f"the kernel could not be run: {e}"
    except Exception as e:  # noqa: BLE001 - whatever the kernel sends, the run ends in a graded outcome
        result.status = Status.ERROR
        result.reason = (f"the kernel's replies could not be processed ({type(e).__name__}: {e}); this happens "
                         "when a cell breaks the kernel itself, for example by patching modules it relies on (such "
                         "as json) or by using up the process limit")
    finally:
        result.timings["total"] = time.monotonic() - started
        result.outputs_truncated = client.truncated
        result.export_digest = client.export_digest
        result.kernel_start = _kernel_start(sandbox)
        sandbox.kill(result.timings.get("pid"))
        sandbox.launcher_pid = None  # reaped: the number may soon belong to another process
    if result.status is Status.OK and result.errors:
        first = result.errors[0]
        result.status = Status.ERROR
        where = f"code cell {first.cell}" if first.cell else "the grader's export step"
        result.reason = f"{where} raised {first.ename}: {first.evalue.splitlines()[0] if first.evalue else ''}".strip()
    return result
