"""Verify quiz keys by running their code in the sandbox and comparing what it did with what the key claims.

Execution returns plain data (``Outcome``): each run is its own process, forked from one sandboxed
interpreter per call that has imported torch once. ``compare`` turns an expectation and an outcome
into the list of differences; ``verify_quiz`` returns one ``VerifyResult`` per run, plus one per
question that has nothing to run. A run that times out or crashes is a mismatch with its reason.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

from .quizzes import Expectation, Quiz
from .sandbox import open_sandbox
from .spec import Limits

# The notebooks' limits (memory, processes, file size, no network, unprivileged user), with a
# per-run timeout that suits a snippet rather than a whole notebook.
QUIZ_LIMITS = Limits(cell_timeout_s=60.0, total_timeout_s=60.0)
MAX_STDOUT_CHARS = 20_000
MAX_READ_BYTES = 4 * 2**20
STARTUP_ALLOWANCE_S = 60.0  # the runner's own start and torch import
VERIFIED, MISMATCH, NOT_CHECKABLE = "verified", "mismatch", "not checkable"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b")

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
class Outcome:
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
        lines = _lines(self.stdout)
        parts = [f"printed {' | '.join(lines)}" if lines else "printed nothing"]
        parts.append(f"warned {' | '.join(_short(w) for w in self.warnings)}" if self.warnings else "no warning")
        if self.exception:
            where = f" at line {self.exception_line}" if self.exception_line else ""
            parts.append(f"raised {self.exception}{where}: {_short(self.exception_message)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class VerifyResult:
    quiz: str
    question: str
    status: str  # VERIFIED, MISMATCH or NOT_CHECKABLE
    claim: str  # the key's claim that was checked, or the question's prompt
    detail: str  # mismatch: what differs; not checkable: why; verified: ""
    did: str = ""  # what the code really did
    seconds: float = 0.0


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compare(expect: Expectation, outcome: Outcome) -> list[str]:
    """The differences between what the key claims and what the code did; empty when the claim holds.

    >>> compare(Expectation("prints 2", stdout="2"), Outcome(stdout="2  \\n\\n"))
    []
    >>> compare(Expectation("lr", stdout_lines_approx=(0.1, 0.05)), Outcome(stdout="lr 0.1\\nlr 0.0500001\\n"))
    ['line 2: expected 0.05, printed 0.0500001']
    """
    if outcome.failure:
        return [outcome.failure]
    problems = []
    if expect.stdout is not None and _lines(outcome.stdout) != _lines(expect.stdout):
        problems.append(f"expected to print {' | '.join(_lines(expect.stdout)) or 'nothing'}")
    if expect.stdout_lines_approx is not None:
        problems += _compare_numbers(expect, _lines(outcome.stdout))
    if expect.warning is not None and not any(expect.warning in w for w in outcome.warnings):
        problems.append(f"expected a warning containing {expect.warning!r}")
    if expect.no_warning is True and outcome.warnings:
        problems.append("expected no warning at all")
    elif isinstance(expect.no_warning, str) and any(expect.no_warning in w for w in outcome.warnings):
        problems.append(f"expected no warning containing {expect.no_warning!r}")
    if expect.exception is not None and expect.exception not in outcome.exception_bases:
        problems.append(f"expected {expect.exception} to be raised")
    elif expect.exception is None and outcome.exception:
        problems.append(f"raised {outcome.exception}: {_short(outcome.exception_message)}")
    return problems


def _compare_numbers(expect: Expectation, lines: list[str]) -> list[str]:
    found = [(line, NUMBER.findall(line)) for line in lines if line.strip()]
    numbers = [float(nums[-1]) for _, nums in found if nums]
    wanted = expect.stdout_lines_approx
    if len(numbers) != len(wanted) or len(numbers) != len(found):
        return [f"expected {len(wanted)} printed line(s) ending in the numbers {', '.join(f'{v:g}' for v in wanted)}"]
    return [f"line {i}: expected {want:g}, printed {got:g}"
            for i, (want, got) in enumerate(zip(wanted, numbers), start=1)
            if not math.isclose(want, got, rel_tol=expect.tolerance, abs_tol=1e-12)]


def run_code(code: str, limits: Limits = QUIZ_LIMITS) -> Outcome:
    """Run ``code`` in a fresh sandboxed interpreter (``-W always``) and report what it did."""
    return run_many([code], limits)[0]


def run_many(codes: list[str], limits: Limits = QUIZ_LIMITS) -> list[Outcome]:
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
        command = [sys.executable, "-W", "always", str(work / "runner.py"), str(work / "manifest.json")]
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
                return [Outcome(failure=f"timed out: the runner gave no result within {backstop:g} s")] * len(codes)
        entries = _report(_tail(out_path), manifest["marker"])
        if entries is None:
            reason = f"the runner failed (exit code {proc.returncode}): {_last_line(_tail(out_path))}"
            return [Outcome(failure=reason, seconds=time.monotonic() - start)] * len(codes)
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
    return _short(lines[-1]) if lines else "no output"


def _report(stdout: str, marker: str) -> list | None:
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith(marker)), None)
    return json.loads(line[len(marker):]) if line else None


def _outcome(entry: dict, stderr_path: pathlib.Path, limits: Limits) -> Outcome:
    seconds = entry.get("seconds", 0.0)
    if entry.get("timed_out"):
        return Outcome(failure=f"timed out: no result within {limits.cell_timeout_s:g} s", seconds=seconds)
    report = entry.get("report")
    if report is None:
        code = entry.get("exit")
        reason = (f"killed by signal {-code} (a limit, e.g. memory {limits.memory_mb} MB, or a native crash)"
                  if code is not None and code < 0 else f"crashed (exit code {code})")
        return Outcome(failure=f"{reason}: {_last_line(_tail(stderr_path))}", seconds=seconds)
    exc = report.get("exception") or {}
    return Outcome(stdout=report["stdout"], warnings=tuple(report["warnings"]), exception=exc.get("type"),
                   exception_bases=tuple(exc.get("bases", ())), exception_message=exc.get("message", ""),
                   exception_line=exc.get("line"), seconds=seconds)


def verify_quizzes(quizzes: list[Quiz], limits: Limits = QUIZ_LIMITS) -> list[VerifyResult]:
    """One result per run of every question, in quiz order; questions without runs are 'not checkable'.

    All runs share one sandboxed runner (torch is imported once), each in a process of its own.
    """
    jobs = [run for quiz in quizzes for q in quiz.questions for run in q.runs]
    outcomes = iter(run_many([run.code for run in jobs], limits) if jobs else [])
    results = []
    for quiz in quizzes:
        for q in quiz.questions:
            if not q.runs:
                results.append(VerifyResult(quiz=quiz.id, question=q.id, status=NOT_CHECKABLE,
                                            claim=_short(q.prompt, 100), detail=q.unchecked))
            for run in q.runs:
                outcome = next(outcomes)
                problems = compare(run.expect, outcome)
                results.append(VerifyResult(
                    quiz=quiz.id, question=q.id, status=MISMATCH if problems else VERIFIED, claim=run.expect.claim,
                    detail="; ".join(problems), did=outcome.describe(), seconds=round(outcome.seconds, 2)))
    return results


def verify_quiz(quiz: Quiz, limits: Limits = QUIZ_LIMITS) -> list[VerifyResult]:
    """``verify_quizzes`` for one quiz."""
    return verify_quizzes([quiz], limits)


__all__ = ["MISMATCH", "NOT_CHECKABLE", "Outcome", "QUIZ_LIMITS", "VERIFIED", "VerifyResult", "compare",
           "run_code", "run_many", "verify_quiz", "verify_quizzes"]
