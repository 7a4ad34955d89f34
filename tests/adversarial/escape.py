"""The hostile probe: one kernel that tries every leak and escape of the issue and records what happened.

The test fills in the marker, the class folder and the socket paths it set up on the host.
"""

ESCAPE = r'''
import ctypes, json, os, socket, subprocess, sys, time

MARKER, CLASS, SOCKET, ABSTRACT = {marker!r}, {class_folder!r}, {socket_path!r}, {abstract!r}
probe = {{}}

def attempt(label, action):
    try:
        probe[label] = "ok: " + str(action())[:200]
    except BaseException as e:  # noqa: BLE001
        probe[label] = f"refused: {{type(e).__name__}}"

# Files in the machine's shared places: in a private sandbox they land in its own tmpfs and die with it.
for folder in ("/dev/shm", "/run/lock", "/var/tmp", "/tmp"):
    attempt(f"file {{folder}}", lambda folder=folder: open(f"{{folder}}/{{MARKER}}", "w").write("left behind"))

# A SysV shared-memory segment that would outlive the kernel without an IPC namespace.
libc = ctypes.CDLL(None, use_errno=True)
probe["shm_key"] = 0x5EED0000 + (abs(hash(MARKER)) % 0xFFFF)
attempt("sysv segment", lambda: libc.shmget(probe["shm_key"], 4096, 0o1000 | 0o666))

# Unix sockets of the machine: one in /dev/shm, one abstract.
def connect(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(address)
    return "connected"
attempt("socket file", lambda: connect(SOCKET))
attempt("socket abstract", lambda: connect("\0" + ABSTRACT))

# Classmates' notebooks, at a path the student learned somehow.
attempt("class listing", lambda: os.listdir(CLASS))
attempt("classmate", lambda: open(os.path.join(CLASS, "classmate.ipynb")).read()[:40])

# Other processes, and the grader's command line.
probe["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
cmdlines = []
for pid in probe["processes"]:
    try:
        cmdlines.append(open(f"/proc/{{pid}}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:200])
    except OSError:
        pass
probe["cmdlines"] = cmdlines

# Memory held by several processes together.
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            block = bytearray(300 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(1)
            os._exit(0)
        except MemoryError:
            os._exit(3)
    children.append(pid)
probe["memory children"] = [os.waitpid(pid, 0)[1] for pid in children]

# Disk, and /dev/shm.
def fill(path, megabytes):
    written = 0
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(b"x" * 2**20)
            f.flush()
            written += 1
    return written
attempt("disk 200 MB", lambda: fill("big.bin", 200))
attempt("shm 48 MB", lambda: fill(f"/dev/shm/{{MARKER}}-big", 48))
os.remove("big.bin")  # a careful attacker keeps room for the grader's export

# Processes that would outlive the kernel: a new session, and a double-forked daemon.
subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(1000)  # {{MARKER}}"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", f"import time; time.sleep(1000)  # {{MARKER}} daemon"])
    os._exit(0)
time.sleep(0.5)
'''
