"""The pre-warmed kernel factory's parent: ``python zygote.py SOCKET PRELOAD_JSON``.

It imports once what every kernel needs (ipykernel, numpy, torch, matplotlib with Agg; torchvision for
the exercises on MNIST, whose notebooks read it through torchvision's datasets), checks it
is still single-threaded, freezes those objects out of the garbage collector's reach (``gc.freeze``,
so no kernel's collection copies the pages it shares), then serves requests on a unix socket that
only the grader's own uid may use. For each request it forks a child that applies the whole sandbox
(``sandbox_launch.apply``: session, control group, namespaces, mounts, rlimits, the drop to the
sandbox user) before any student byte runs, reseeds every random generator from OS entropy as a
fresh process would, and only then starts ipykernel on the request's connection file.

The parent never runs student code and no child is ever reused. When the requesting client's
connection closes (the grader killed the kernel), the child is killed; when the child ends, its
exit status goes back to the client.

Run as a script: ``sandbox_launch`` beside it is imported as a plain module, never ``grader``, so
nothing of the grader (or the reference solutions it could reach) is loaded into kernels.
"""

import ctypes
import gc
import importlib
import importlib.util
import json
import os
import random
import selectors
import shutil
import signal
import socket
import sys

import factory_client
import sandbox_launch

PR_SET_CHILD_SUBREAPER = 36
# The namespace of torchvision's import workaround (``_torchvision``): the op library it defines is undone when
# collected, and the kernels need it alive.
_COMPAT: dict = {"__name__": "torchvision_compat"}


def _reseed() -> None:
    """Fresh entropy for every generator a fresh process would seed itself."""
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def _forget_environment_caches() -> None:
    """What the factory's imports worked out from its own environment, worked out again from the kernel's.

    tempfile keeps the folder it first chose: the factory's /tmp, which the sandbox user cannot write, so any
    tempfile use, and torch.compile's cache, failed in a forked kernel.
    """
    import tempfile

    tempfile.tempdir = None
    # torch.compile's C++ headers are precompiled into a folder inductor names at import, from the factory's own
    # temp folder: the kernel's cache folder instead (the sandbox sets TORCHINDUCTOR_CACHE_DIR).
    codecache = sys.modules.get("torch._inductor.codecache")
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if codecache is not None and cache and hasattr(codecache, "_HEADER_DIR"):
        codecache._HEADER_DIR = os.path.join(cache, "precompiled_headers")
        codecache._HEADER_LOCK_DIR = os.path.join(codecache._HEADER_DIR, "locks")


def _become_kernel(request: dict, fds: list[int], closing: list) -> None:
    """In the forked child: the sandbox first, then the kernel. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for held in closing:  # the factory's listener, connections, selector and wake-up pipe: nothing for the kernel
            os.close(held) if isinstance(held, int) else held.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the factory's only handler; the rest are a fresh Python's
        os.environ.clear()
        os.environ.update(request["env"])
        _forget_environment_caches()
        os.chdir(request["cwd"])
        sandbox_launch.apply(request["plan"])
        _reseed()
        # ipykernel read these from the environment when the factory imported it, before this kernel's existed.
        argv = [*request["argv"], f"--IPKernelApp.parent_handle={int(os.environ.get('JPY_PARENT_PID') or 0)}"]
        sys.argv = ["ipykernel_launcher", *argv]
        sys.path[0] = os.getcwd()  # as ``python -m ipykernel_launcher`` would have it, not this script's folder
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except sandbox_launch.SandboxSetupError as e:
        sys.stderr.write(f"sandbox: setup failed: {e}\n")
        code = 70
    except BaseException as e:  # noqa: BLE001 - the child must never return into the factory's loop
        sys.stderr.write(f"factory: the kernel could not start: {type(e).__name__}: {e}\n")
        code = 71
    sys.stderr.flush()
    os._exit(code)


def _status(wait_status: int) -> int:
    return -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)


def _wake_on_child_exit() -> tuple[int, int]:
    """A pipe whose read end becomes readable whenever a child ends; this process is made the reaper of orphans.

    A kernel's launcher and the init of its PID namespace die together, so the init is orphaned; without this
    it would go to the machine's own init, which may reap late or never, and the grader waits for a sandbox's
    processes to be reaped before it removes the sandbox's control group.
    """
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd is written only for a handled signal
    signal.set_wakeup_fd(write)
    return read, write


def serve(listener: socket.socket, leave) -> None:
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    wake = _wake_on_child_exit()
    selector.register(wake[0], selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}  # child pid -> its client's connection
    uid = os.getuid()

    def stop(*_) -> None:  # the grader is gone, or stops this factory: no kernel of it runs on
        for pid in list(children):  # a handler: the loop it interrupted may be changing the dict
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        leave()

    signal.signal(signal.SIGTERM, stop)
    while True:
        for key, _ in selector.select(timeout=0.05):
            if key.fileobj == wake[0]:  # drained; the children are reaped below
                try:
                    while os.read(wake[0], 512):
                        pass
                except BlockingIOError:
                    pass
            elif key.fileobj is listener:
                conn, _ = listener.accept()
                if factory_client.peer_uid(conn) != uid:  # a sandbox user that somehow reached the socket
                    conn.close()
                    continue
                try:
                    request, fds = factory_client.read_request(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    _become_kernel(request, fds, [selector, listener, conn, *children.values(), *wake])
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                selector.register(conn, selectors.EVENT_READ, pid)
            else:  # the client went away (killed, or the grader stopped): its kernel goes too
                if not key.fileobj.recv(1):
                    selector.unregister(key.fileobj)
                    if key.data in children:
                        try:
                            os.kill(key.data, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        while True:  # its own children, and the orphans it adopted
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(json.dumps({"exit": _status(wait_status)}).encode() + b"\n")
                except OSError:
                    pass
                try:
                    selector.unregister(conn)
                except (KeyError, ValueError):  # already gone: its client closed first
                    pass
                conn.close()


def _torchvision() -> None:
    """Import torchvision after reference/torchvision_compat.py's source, run as the kernels' prelude runs it: in a
    namespace of its own, so no module of the reference is imported here (the package is located, not imported).

    A preload the kernels can do without: where it fails, each kernel's prelude applies the workaround itself.
    """
    spec = importlib.util.find_spec("reference")
    if spec is None or not spec.submodule_search_locations:
        return
    path = os.path.join(spec.submodule_search_locations[0], "torchvision_compat.py")
    try:
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), _COMPAT)
        importlib.import_module(factory_client.TORCHVISION)
    except Exception as e:  # noqa: BLE001 - reported in the factory's log; the kernels import it as without a factory
        sys.stderr.write(f"factory: torchvision not preloaded: {type(e).__name__}: {e}\n")


def _announce(path: str, status: str) -> None:
    """``status`` in a file beside the socket, written whole: what a grader or worker waiting on it reads."""
    folder = os.path.dirname(path)
    with open(os.path.join(folder, "status.tmp"), "w") as f:
        f.write(status + "\n")
    os.replace(os.path.join(folder, "status.tmp"), os.path.join(folder, "status"))


def _warm_torch() -> None:
    """One throwaway training step and model export, so that no kernel pays torch's first-call set-up itself.

    torch.export's first capture in a process costs about 0.3 s (symbolic shapes, fake tensors); once
    done here, a forked kernel's export of the student's model takes a few hundredths. The parent's own
    generators are reseeded in every child (``_reseed``), so the throwaway weights leave no trace.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.nn.functional.cross_entropy(model(torch.zeros(4, 2)), torch.zeros(4, dtype=torch.long)).backward()
    optimizer.step()
    if "torch.export" in sys.modules:
        with torch.no_grad():
            torch.export.export(model.eval(), (torch.zeros(2, 2),), dynamic_shapes=({0: torch.export.Dim.AUTO},),
                                strict=False)


def _leaving(folder: str):
    """What ends this factory when its grader is gone or stops it: its folder goes too, which a grader killed
    outright never removes (a batch's SIGKILL, a lost worker), and no Python exit handler runs on the way."""
    me = os.getpid()

    def leave() -> None:
        if os.getpid() == me:  # not a child forked an instant before it restored the default handler
            shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)
    return leave


def main(argv: list) -> None:
    # Never outlive the grader: SIGTERM, so that the kernels it forked go too (``serve``), and a kernel whose launch
    # the grader's own kill missed (it joined its control group later) does not run on alone.
    path, preload = argv[1], json.loads(argv[2])
    leave = _leaving(os.path.dirname(path))
    signal.signal(signal.SIGTERM, lambda *_: leave())
    if not sandbox_launch.die_with_parent(signal.SIGTERM, int(argv[3]) if len(argv) > 3 else None):
        leave()  # the grader died before the signal was armed: no one to serve
    # No collection while importing: each step of torch's import would walk all that came before it (six full
    # collections, half a second of the warm-up every cold command waits for). The objects are frozen instead: out of
    # the collector's reach, so a kernel's full collection walks only its own (2-5 ms, where it walked these ~400,000
    # in 250 ms and copied every page holding one, most of the heap it shares with this parent).
    gc.disable()
    for name in preload:
        _torchvision() if name == factory_client.TORCHVISION else importlib.import_module(name)
    gc.freeze()
    gc.enable()
    _warm_torch()
    threads = factory_client.thread_count()
    if threads != 1:  # a fork would copy a thread pool's locks but not its threads
        _announce(path, f"refused: {threads} threads after the imports; a fork is only safe from one")
        sys.exit(3)
    gc.collect()  # the warm-up's leftovers: these objects alone, not the frozen ones
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    mapped_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
    _announce(path, f"ready {mapped_kb}")  # a kernel's memory limit must leave room above this
    serve(listener, leave)


if __name__ == "__main__":
    main(sys.argv)
