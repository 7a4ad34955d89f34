"""Run snippets of Python in the sandbox and report what each did: printed, warned, raised.

Used to verify quiz keys. One sandboxed interpreter per call imports torch once, then forks a
fresh child per snippet, so each starts from the same clean state without paying for the
import again. Execution returns plain data (``SnippetOutcome``); judging it is the caller's job.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import subprocess
import time
from dataclasses import dataclass

from grader.kernel.limits import Limits
from grader.kernel.sandbox import INTERPRETER, open_sandbox

MAX_STDOUT_CHARS = 20_000
MAX_READ_BYTES = 4 * 2**20
STARTUP_ALLOWANCE_S = 60.0  # the runner's own start and torch import

# Runs inside the sandbox. It imports torch once, then forks one fresh child per run, so each run starts
# from the same clean interpreter without paying for the import again. A child runs its question.py with
# prints captured and every warning recorded, and writes a JSON report; the parent enforces the per-run
# timeout and prints all reports after a per-call marker, so stray output cannot pass for a report.
RUNNER = r'''
import contextlib, io, json, os, signal, sys, time, traceback, warnings
with open(sys.argv[1], encoding="utf-8") as f:
    manifest = json.load(f)
try:
    if not manifest["preload_torch"]:
        raise ImportError
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # An optimizer's first step imports a few hundred modules (about 2 s); do it once, here.
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).step()
except ImportError:
    pass

def run_one(run):
    err = os.open(run["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(err, 2)
    with open(run["code"], encoding="utf-8") as f:
        code = compile(f.read(), "question.py", "exec")
    out = io.StringIO()
    report = {"exception": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stdout(out):
                exec(code, {"__name__": "__main__"})
        except BaseException as e:  # SystemExit and KeyboardInterrupt are outcomes too
            lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == "question.py"]
            report["exception"] = {"type": type(e).__name__, "bases": [c.__name__ for c in type(e).__mro__],
                                   "message": str(e)[:500], "line": lines[-1] if lines else None}
    report["stdout"] = out.getvalue()[:manifest["cap"]]
    report["warnings"] = [f"{w.category.__name__}: {w.message}"[:1000] for w in caught[:50]]
    with open(run["report"] + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f)
    os.replace(run["report"] + ".tmp", run["report"])

results = []
for run in manifest["runs"]:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            run_one(run)
        finally:
            os._exit(0)
    entry = {}
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            entry["exit"] = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - start > manifest["timeout"]:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            entry["timed_out"] = True
            break
        time.sleep(0.01)
    entry["seconds"] = round(time.monotonic() - start, 3)
    if not entry.get("timed_out") and os.path.exists(run["report"]):
        with open(run["report"], encoding="utf-8") as f:
            entry["report"] = json.load(f)
    results.append(entry)
sys.stdout.write("\n" + manifest["marker"] + json.dumps(results) + "\n")
sys.stdout.flush()
'''


@dataclass(frozen=True)
class SnippetOutcome:
    """What one run really did."""

    stdout: str = ""
    warnings: tuple[str, ...] = ()
    exception: str | None = None  # type name
    exception_bases: tuple[str, ...] = ()
    exception_message: str = ""
    exception_line: int | None = None
    failure: str | None = None  # timed out or crashed: no report came back
    seconds: float = 0.0

    def describe(self) -> str:
        """The outcome in one paragraph, for mismatch reports."""
        if self.failure:
            return self.failure
        lines = printed_lines(self.stdout)
        parts = [f"printed {' | '.join(lines)}" if lines else "printed nothing"]
        parts.append(f"warned {' | '.join(shorten(w) for w in self.warnings)}" if self.warnings else "no warning")
        if self.exception:
            where = f" at line {self.exception_line}" if self.exception_line else ""
            parts.append(f"raised {self.exception}{where}: {shorten(self.exception_message)}")
        return "; ".join(parts)


def printed_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_many(codes: list[str], limits: Limits) -> list[SnippetOutcome]:
    """Run each snippet in its own process, all inside one sandbox; one Outcome per snippet, in order."""
    sandbox = open_sandbox(limits)
    try:
        work = sandbox.workdir
        runs = [{"code": str(work / f"question-{i}.py"), "report": str(work / f"report-{i}.json"),
                 "stderr": str(work / f"stderr-{i}.txt")} for i in range(len(codes))]
        manifest = {"runs": runs, "timeout": limits.cell_timeout_s, "cap": MAX_STDOUT_CHARS,
                    "marker": f"@@quiz-report-{secrets.token_hex(8)}@@",
                    "preload_torch": any("torch" in code for code in codes)}
        files = {work / "runner.py": RUNNER, work / "manifest.json": json.dumps(manifest)}
        files.update({pathlib.Path(run["code"]): code for run, code in zip(runs, codes)})
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
            if sandbox.user:  # the runner drops to the sandbox user, who must read these
                os.chown(path, *sandbox.user)
        command = [INTERPRETER, "-W", "always", str(work / "runner.py"), str(work / "manifest.json")]
        # Output goes to a file the grader owns; RLIMIT_FSIZE caps it, so a flood cannot fill memory.
        out_path = sandbox.root / "stdout"
        # The runner enforces each run's timeout; this one only catches a runner that itself hangs.
        backstop = limits.cell_timeout_s * len(codes) + STARTUP_ALLOWANCE_S
        start = time.monotonic()
        with open(out_path, "wb") as out:
            try:
                proc = subprocess.run(sandbox.wrap(command), env=sandbox.env, cwd=work, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, timeout=backstop)
            except subprocess.TimeoutExpired:
                return [SnippetOutcome(failure=f"timed out: the runner gave no result within {backstop:g} s")] * len(codes)
        entries = _report(_tail(out_path), manifest["marker"])
        if entries is None:
            reason = f"the runner failed (exit code {proc.returncode}): {_last_line(_tail(out_path))}"
            return [SnippetOutcome(failure=reason, seconds=time.monotonic() - start)] * len(codes)
        return [_outcome(entry, pathlib.Path(run["stderr"]), limits) for entry, run in zip(entries, runs)]
    finally:
        sandbox.kill()
        sandbox.remove()


def _tail(path: pathlib.Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - MAX_READ_BYTES))
        return f.read().decode("utf-8", errors="replace")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return shorten(lines[-1]) if lines else "no output"


def _report(stdout: str, marker: str) -> list | None:
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith(marker)), None)
    return json.loads(line[len(marker):]) if line else None


def _outcome(entry: dict, stderr_path: pathlib.Path, limits: Limits) -> SnippetOutcome:
    seconds = entry.get("seconds", 0.0)
    if entry.get("timed_out"):
        return SnippetOutcome(failure=f"timed out: no result within {limits.cell_timeout_s:g} s", seconds=seconds)
    report = entry.get("report")
    if report is None:
        code = entry.get("exit")
        reason = (f"killed by signal {-code} (a limit, e.g. memory {limits.memory_mb} MB, or a native crash)"
                  if code is not None and code < 0 else f"crashed (exit code {code})")
        return SnippetOutcome(failure=f"{reason}: {_last_line(_tail(stderr_path))}", seconds=seconds)
    exc = report.get("exception") or {}
    return SnippetOutcome(stdout=report["stdout"], warnings=tuple(report["warnings"]), exception=exc.get("type"),
                   exception_bases=tuple(exc.get("bases", ())), exception_message=exc.get("message", ""),
                   exception_line=exc.get("line"), seconds=seconds)


