"""The kernel command when a factory is warm: ``python factory_client.py SOCKET -- LAUNCHER PLAN -- KERNEL...``.

Standard library only, so it starts in milliseconds. It asks the factory (``zygote.py``) for a
forked kernel with the launcher's plan and the kernel's arguments, hands over its own stdin,
stdout and stderr, forwards the signals jupyter_client sends it, and exits as the kernel did. If
the factory cannot be reached, it execs the fresh launch it was given instead and says so on
stderr (the kernel log), so the grader records why.
"""

import json
import os
import signal
import socket
import struct
import sys

RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
FELL_BACK = "grader-factory: fresh launch:"
# The client's last word in the kernel log, written before it exits as the kernel did. A client that ends without it
# was killed from outside; one that says FACTORY_LOST lost its factory mid-run: neither is the notebook's outcome.
KERNEL_ENDED = "grader-factory: the kernel ended:"
FACTORY_LOST = "grader-factory: the factory ended before the kernel:"
# The preload entry the factory imports only after torchvision's import workaround (``zygote._torchvision``).
TORCHVISION = "torchvision"
LOST_EXIT = 70  # the client's exit code when the factory went away without telling how the kernel ended


def _request(fresh: list) -> dict:
    """The launcher's plan and the kernel's own arguments, read from the fresh launch command."""
    launcher_end = fresh.index("--")
    kernel = fresh[launcher_end + 1:]
    module = kernel.index("ipykernel_launcher")
    return {"plan": json.loads(fresh[launcher_end - 1]), "argv": kernel[module + 1:], "env": dict(os.environ),
            "cwd": os.getcwd()}


def read_line(conn: socket.socket, buffer: bytearray) -> dict | None:
    """The next JSON line from ``conn`` (``buffer`` holds what came after it); None once the peer closed."""
    while b"\n" not in buffer:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


def thread_count() -> int:
    """This process's threads, as the kernel counts them: a server forks only from one."""
    return len(os.listdir("/proc/self/task"))


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket: a server forks only for its own user."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def read_request(conn: socket.socket, limit: int = 1 << 22) -> tuple[dict, list[int]]:
    """A server's side of a request: one JSON line and the client's stdin, stdout and stderr, passed as descriptors."""
    message, fds, _, _ = socket.recv_fds(conn, limit, 3)
    while not message.endswith(b"\n"):
        more = conn.recv(limit)
        if not more:
            raise ConnectionError("the request ended early")
        message += more
    return json.loads(message), fds


def await_exit(conn: socket.socket, buffer: bytearray, child: int, relayed: tuple) -> dict | None:
    """Relay ``relayed`` signals to ``child`` until its exit line comes; None when the peer closed without one."""
    def relay(signum, frame) -> None:
        try:
            os.kill(child, signum)
        except OSError:  # already gone: its exit line says how it ended
            pass

    for sig in relayed:
        signal.signal(sig, relay)
    try:
        return read_line(conn, buffer)  # a relayed signal does not interrupt it (PEP 475)
    except (OSError, ValueError):
        return None


def main(argv: list) -> None:
    path, fresh = argv[1], argv[argv.index("--") + 1:]
    buffer = bytearray()
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        socket.send_fds(conn, [json.dumps(_request(fresh)).encode() + b"\n"], [0, 1, 2])
        reply = read_line(conn, buffer)
        if not reply or "pid" not in reply:
            raise ConnectionError("the factory did not fork a kernel")
    except (OSError, ValueError) as e:
        sys.stderr.write(f"{FELL_BACK} the factory could not be used ({type(e).__name__}: {e})\n")
        sys.stderr.flush()
        os.execv(fresh[0], fresh)
    ended = await_exit(conn, buffer, reply["pid"], RELAYED)
    code = ended["exit"] if ended else LOST_EXIT
    sys.stderr.write(f"{KERNEL_ENDED} {code}\n" if ended else f"{FACTORY_LOST} it closed the connection\n")
    sys.stderr.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
