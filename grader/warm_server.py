"""A warm server for ``grader check`` and ``grader grade``: the grader's imports and a kernel factory kept warm.

A cold command spends seconds starting: Python, torch in the grader and torch again in the
kernel's factory. The first command starts this server in the background (one per user, grader
code and interpreter); each later one is a small client that hands the server its arguments,
folder, environment and terminal, and the server forks a fresh child of itself to run exactly
that command there. The child is never reused, so nothing of one command reaches the next. Its
kernels are forked from the server's factory with the whole sandbox, as every kernel is; a batch
forks its grading workers from the child, before any thread starts, so they start warm too.

The server only ever runs the grader's code for its own user: the socket is in a folder only that
user can enter, and it refuses any other uid. It exits after ``GRADER_WARM_SERVER`` seconds
without a command (default 900); ``GRADER_WARM_SERVER=0`` runs every command in its own process,
cold, as does ``grader check --no-factory``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from grader.errors import EXIT_INTERNAL

if TYPE_CHECKING:
    from grader.kernel.factory import KernelFactory

ENV = "GRADER_WARM_SERVER"
IDLE_S = 900.0
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0  # how long a child whose client went away has after SIGINT before it is killed
ENDED = "ended"  # what the server's selector holds for a child's ``_exit_watch``
# Read by torch, numpy and matplotlib when the server imports them: a server started with other values is another.
IMPORT_ENV = ("PYTHONPATH", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8", "LANG", "LC_ALL", "LC_CTYPE",
              "MPLBACKEND", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HOME", "CUDA_VISIBLE_DEVICES")
# One thread while the server forks: a thread pool's locks would be copied into every child without their threads.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "NUMEXPR_NUM_THREADS": "1"}
# What every check and batch imports: scoring, rendering, the kernel runner; imported once, before any fork.
WARM = ("torch", "torch._dynamo", "grader.commands.check", "grader.commands.grade", "grader.grading.batch",
        "grader.assignments.catalog", "grader.grading.engine", "grader.grading.watch", "grader.kernel.execute",
        "grader.loading.exports", "grader.grading.artifacts", "grader.render.feedback", "grader.render.html",
        "grader.render.terminal", "reference.data")
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent
CODE = ("grader", "reference", "templates")


def idle_seconds(env: dict | None = None) -> float:
    """How long a server waits for the next check; 0 means no server ("0", or anything that is not a number)."""
    value = (os.environ if env is None else env).get(ENV, "")
    if not value:
        return IDLE_S
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def _code_stamp() -> str:
    """What the server's imports were read from: every source and template file's path, size and mtime."""
    digest = hashlib.sha256()
    for part in CODE:
        for folder, dirs, files in os.walk(PACKAGE_ROOT / part):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".html", ".j2", ".css", ".js", ".toml")):
                    st = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def server_key(env: dict | None = None) -> str:
    """One server per interpreter, grader code and import-time environment; another one of these is another server."""
    env = os.environ if env is None else env
    # The interpreter's path normalised: `../.venv/bin/python` from tests/ and `.venv/bin/python` are one interpreter.
    parts = [os.path.normpath(sys.executable), sys.version, _code_stamp(),
             *(f"{k}={env.get(k, '')}" for k in IMPORT_ENV),
             *sorted(f"{k}={v}" for k, v in env.items() if k.startswith(("TORCH_", "PYTORCH_")))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _private_folder() -> pathlib.Path | None:
    """``grader-warm-<uid>`` in the runtime (else temp) folder, only if it is ours alone; None otherwise."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = pathlib.Path(base) / f"grader-warm-{os.getuid()}"
    with contextlib.suppress(FileExistsError, OSError):
        folder.mkdir(mode=0o700)
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    # Someone else's folder, or one others can enter, could hold a socket that is not our server.
    if not os.path.isdir(folder) or os.path.islink(folder) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def server_folder(key: str | None = None) -> pathlib.Path | None:
    folder = _private_folder()
    return folder / (key or server_key()) if folder else None


# --- the client: a command that a server can run -----------------------------------------------------


@contextlib.contextmanager
def _reachable(path: pathlib.Path):
    """``path`` as a unix socket address can hold it (108 bytes): through this process's handle on its folder."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _connect(folder: pathlib.Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _reachable(folder / "server.sock") as address:
            conn.connect(address)
        return conn
    except OSError:
        conn.close()
        return None


def _start(folder: pathlib.Path) -> socket.socket | None:
    """Start a server in ``folder`` (one at a time: a lock), wait until it listens, and connect."""
    folder.mkdir(mode=0o700, exist_ok=True)
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = _connect(folder)  # another command started it while this one waited for the lock
        if conn is not None or (folder / "failed").exists():  # failed once with this code: see server.log
            return conn
        with contextlib.suppress(FileNotFoundError):
            (folder / "server.sock").unlink()
        env = {**os.environ, **SINGLE_THREAD}
        with open(folder / "server.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "grader.warm_server", str(folder)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
                                       cwd="/", start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            conn = _connect(folder)
            if conn is not None:
                return conn
            time.sleep(0.02)
        return None


def forward(argv: list[str]) -> int | None:
    """Run ``grader ARGV...`` in the warm server (starting it if needed) and return its exit code.

    None when no server can be used here (turned off, not Linux, no private folder, it failed to start):
    the caller then runs the command in its own process, as it always could.
    """
    if idle_seconds() <= 0 or sys.platform != "linux":
        return None
    from grader.kernel.factory_client import await_exit, read_line

    folder = server_folder()
    if folder is None:
        return None
    try:
        umask = os.umask(0o077)
        os.umask(umask)
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path, "umask": umask,
                   "streams": [[getattr(s, "encoding", None), getattr(s, "errors", None)] for s in (sys.stdout,
                                                                                                    sys.stderr)]}
    except OSError:  # a folder deleted under the shell: the command itself says what is wrong
        return None
    conn = _connect(folder) or _start(folder)
    if conn is None:
        return None
    buffer = bytearray()
    try:
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        reply = read_line(conn, buffer)
    except (OSError, ValueError):
        reply = None
    if not reply or "pid" not in reply:
        conn.close()
        return None  # nothing ran yet: the command runs here instead
    # Ctrl-C reaches this process only (the command runs in the server's session): relayed to it.
    ended = await_exit(conn, buffer, reply["pid"], (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    if ended is None:
        print("grader: the warm server stopped while it ran this command; run it again "
              f"(or with {ENV}=0 to run it without the server)", file=sys.stderr)
        return EXIT_INTERNAL
    return ended["exit"] if ended["exit"] >= 0 else 128 - ended["exit"]


# --- the server ------------------------------------------------------------------------------------


def _run_command(request: dict, fds: list[int], closing: list, factory_env: dict) -> None:
    """In the forked child: become the client's ``grader`` process, run its command, exit with its code."""
    code = EXIT_INTERNAL
    try:
        for held in closing:
            os.close(held) if isinstance(held, int) else held.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # Written as the client's own streams would be: its encoding and error handler (an ASCII terminal's, say).
        (out_encoding, out_errors), (err_encoding, err_errors) = request.get("streams") or [[None, None]] * 2
        sys.stdin, sys.stdout, sys.stderr = (
            open(0, closefd=False), open(1, "w", closefd=False, encoding=out_encoding, errors=out_errors),
            open(2, "w", closefd=False, encoding=err_encoding, errors=err_errors or "backslashreplace"))
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.umask(request["umask"])  # the pages and gradebooks it writes get the client's permissions
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.update(factory_env)  # the server's warm factory, not a new one (grader.kernel.factory)
        sys.path[:] = request["path"]
        sys.argv = ["grader", *request["argv"]]
        from grader.cli import main

        code = main(request["argv"], warm=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    except BaseException as e:  # noqa: BLE001 - the child must never return into the server's loop
        with contextlib.suppress(Exception):
            sys.stderr.write(f"grader: the warm server could not run the command: {type(e).__name__}: {e}\n")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(folder: pathlib.Path, idle_s: float) -> None:
    """Warm up, listen on ``folder``/server.sock and fork one child per command until ``idle_s`` pass without one."""
    from grader.kernel.factory import launch_factory
    from grader.kernel.factory_client import thread_count

    if (threads := thread_count()) != 1:  # started by the interpreter's own start-up (a sitecustomize): give up now
        raise RuntimeError(f"{threads} threads before any import; a fork is only safe from one")
    factory = launch_factory()  # first, so that the kernel's torch and the grader's import side by side
    try:
        _serve(folder, idle_s, factory)
    finally:  # a server that fails to start closes its factory too (the factory would outlive it otherwise)
        factory.close()


def _serve(folder: pathlib.Path, idle_s: float, factory: KernelFactory) -> None:
    """``serve`` once its factory is launched (``serve`` closes it, whatever happens here)."""
    import importlib
    import selectors

    from grader.kernel.factory import launch_factory, wait_ready
    from grader.kernel.factory_client import peer_uid, read_request, thread_count

    from grader.collector import importing

    with importing():  # and frozen: no command forked from here walks these objects in a collection
        for name in WARM:
            with contextlib.suppress(ImportError):  # a package without it (the student's) imports it when used
                importlib.import_module(name)
    from grader.assignments.catalog import load_all
    from grader.grading.engine import ready_to_fork

    versions_due = []  # the exercises whose versioned code the server finds once it listens
    try:  # a head start only: a child probes whatever was not probed here
        versions_due = load_all()
        ready_to_fork(versions_due)
    except Exception as e:  # noqa: BLE001 - a course folder with a broken exercise still gets its server
        print(f"warm server: sandboxes not probed ahead ({type(e).__name__}: {e})", file=sys.stderr)
    factory = wait_ready(factory)
    if (threads := thread_count()) != 1:
        raise RuntimeError(f"{threads} threads after the imports; a fork is only safe from one")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _reachable(folder / "server.sock") as address:
        listener.bind(address)
    listener.listen(16)
    (folder / "server.pid").write_text(f"{os.getpid()}\n")
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    stopping: dict[int, float] = {}  # child -> when its client went away
    watches: dict[int, int] = {}  # child -> a descriptor readable once it ended (``_exit_watch``)
    last = time.monotonic()
    factory_env = _shared(factory)
    try:
        while children or time.monotonic() - last < idle_s:
            if factory.ready and not factory.alive():  # killed, or out of memory: the next commands get a new one
                factory.close()
                factory = wait_ready(launch_factory())
                factory_env = _shared(factory)
            for key, _ in selector.select(timeout=0.2):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    last = time.monotonic()
                    if peer_uid(conn) != os.getuid():
                        conn.close()
                        continue
                    try:
                        request, fds = read_request(conn)
                    except (OSError, ValueError):
                        conn.close()
                        continue
                    # Held across the fork: a Ctrl-C the client relays as soon as it has the pid waits in the child
                    # until the command can take it (``cli._run``), instead of meeting the server's disposition.
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                    pid = os.fork()
                    if pid == 0:
                        _run_command(request, fds, [selector, listener, conn, *children.values(),
                                                    *watches.values()], factory_env)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                    for fd in fds:
                        os.close(fd)
                    children[pid] = conn
                    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                    selector.register(conn, selectors.EVENT_READ, pid)
                    if (watch := _exit_watch(pid)) is not None:
                        watches[pid] = watch
                        selector.register(watch, selectors.EVENT_READ, ENDED)
                elif key.data == ENDED:  # a command ended: reaped below, its client told now rather than at the tick
                    continue
                elif not key.fileobj.recv(1):  # the client is gone (killed, terminal closed): so is its command
                    selector.unregister(key.fileobj)
                    if key.data in children and key.data not in stopping:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(key.data, signal.SIGINT)
                        stopping[key.data] = time.monotonic()
            for pid, since in list(stopping.items()):
                if pid in children and time.monotonic() - since > STOP_GRACE_S:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            _reap(children, stopping, watches, selector)
            if children:
                last = time.monotonic()
            if versions_due:  # while the first command runs: the batches after it find it done
                _find_versioned_code(versions_due)
                versions_due = []
    finally:
        listener.close()
        for name in ("server.sock", "server.pid"):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        factory.close()


def _find_versioned_code(exercises: list) -> None:
    """Find the code each exercise's version covers (``grader_version``: 0.4 s for the course's seven), for every batch
    forked after; a command that came first finds its own."""
    from grader.assignments.version import grader_version

    for exercise in exercises:
        with contextlib.suppress(Exception):  # a head start only: a batch finds it again, and says what is wrong
            grader_version(exercise)


def _shared(factory) -> dict[str, str]:
    """What a child needs to fork its kernels from ``factory`` (nothing when there is none: they start fresh)."""
    return factory.shared_env() if factory.ready else {}


def _exit_watch(pid: int) -> int | None:
    """A descriptor that turns readable when child ``pid`` ends, so that its client hears at once; None where the
    system has none (before Linux 5.3): the loop's tick, every 0.2 s, finds the end then."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(children: dict, stopping: dict, watches: dict, selector) -> None:
    """Collect ended commands and tell each one's client how it ended (the factory, also a child, is left alone)."""
    for pid in list(children):
        try:
            ended, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            ended, status = pid, 0
        if ended == 0:
            continue
        stopping.pop(pid, None)
        conn = children.pop(pid)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(conn)
        conn.close()
        if (watch := watches.pop(pid, None)) is not None:
            selector.unregister(watch)
            os.close(watch)


def main(argv: list[str]) -> int:
    folder = pathlib.Path(argv[1])
    # Its own session: a stray Ctrl-C is not meant for it. Not SIG_IGN, which would drop a command's own Ctrl-C
    # arriving in its child before the child sets its handler, even while held there.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(folder, idle_seconds() or IDLE_S)
    except Exception as e:  # said once: the commands of this key then run in their own processes, not retry it
        (folder / "failed").write_text(f"{type(e).__name__}: {e}\n")
        raise
    return 0


def stop_servers(runtime: pathlib.Path | None = None) -> list[int]:
    """SIGTERM every warm server of this user (under ``runtime``, else the usual folder); their pids."""
    folder = (runtime / f"grader-warm-{os.getuid()}") if runtime else _private_folder()
    stopped = []
    for pid_file in folder.glob("*/server.pid") if folder else ():
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    return stopped


if __name__ == "__main__":
    sys.exit(main(sys.argv))
