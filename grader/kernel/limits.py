"""What one sandboxed run may use; every value can be set per exercise in its spec's ``[limits]``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Sandbox limits for one submission."""

    cell_timeout_s: float = 120.0  # one student cell
    total_timeout_s: float = 600.0  # all student cells together
    export_timeout_s: float = 120.0  # the grader's export cell, on top of the total
    interrupt_grace_s: float = 10.0  # how long a cell past its limit has to stop once interrupted
    probe_timeout_s: float = 60.0  # each of the grader's own calls of the student's code, within the export cell's
    memory_mb: int = 4096  # address space (RLIMIT_AS); torch alone maps about 0.7 GB
    max_processes: int = 64  # processes of the sandbox user (RLIMIT_NPROC)
    max_file_mb: int = 256  # largest file the kernel may write (RLIMIT_FSIZE)
    max_disk_mb: int = 1024  # all it writes in its working folder together (a tmpfs of this size, as root)
    max_shm_mb: int = 64  # its private /dev/shm (DataLoader workers share batches there)
    max_open_files: int = 512
    max_output_kb: int = 256  # stored cell output, whole notebook
