"""Start the dask cluster that grader.toml's [cluster] table describes: local worker processes, Slurm jobs
(dask-jobqueue), Kubernetes pods (dask-kubernetes' operator), or none when ``grading.cluster`` is the
address of a scheduler that runs already.

Every worker runs one thread, so it grades one submission at a time, with ``OMP_NUM_THREADS=1``.
A worker on a GPU advertises the dask resource ``GPU=1``; the tasks of ``cluster.gpu_exercises`` ask
for it. dask, distributed, dask_jobqueue and dask_kubernetes are optional extras: they are imported
inside the functions only, so that ``grader --help`` and the local process pool never load them.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import shlex
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import UserError
from grader.specs.config import CLUSTER_KINDS, ClusterSettings, KubernetesSettings, SlurmSettings, is_cluster_address

if TYPE_CHECKING:  # the extras, for the annotations only
    from dask_jobqueue import SLURMCluster
    from dask_kubernetes.operator import KubeCluster
    from distributed import LocalCluster, Security

GPU_RESOURCE = "GPU=1"  # the resource grader.grading.cluster_jobs.GPU names; one submission at a time per worker
STAGGER_S = 300.0  # workers of one batch retire up to this far apart, so they do not all leave at once
DISABLED_HTTP = "127.0.0.1:0"  # a scheduler always serves /health: without a dashboard, on a free local port


class ClusterUnavailable(UserError):
    """A cluster that cannot be started from here: its extra is not installed, sbatch is missing, no kube config."""


def _require(module: str, extra: str):
    """Import ``module``, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ClusterUnavailable(
            f"this cluster needs {module.split('.')[0]}, which cannot be imported here ({e}): install the grader's "
            f"{extra!r} extra, pip install 'training-dynamics-grader[{extra}]' (in a checkout: "
            f"pip install -e '.[{extra}]')") from None


def security(settings: ClusterSettings) -> Security | None:
    """distributed's Security from [cluster.tls] (encryption required), or None when TLS is not configured.

    One certificate serves the grader (client), the scheduler and the workers; each side requires the
    other's to be signed by ``ca_file``, so a client without them cannot connect.
    """
    tls = settings.tls
    if tls is None:
        return None
    for path in (tls.ca_file, tls.cert, tls.key):
        if not path.is_file():
            raise ClusterUnavailable(f"cluster.tls: {path}: no such file")
    files = {"tls_ca_file": str(tls.ca_file)}
    for role in ("client", "scheduler", "worker"):
        files |= {f"tls_{role}_cert": str(tls.cert), f"tls_{role}_key": str(tls.key)}
    return _require("distributed.security", "cluster").Security(require_encryption=True, **files)


def _scheduler_dashboard(dashboard: str) -> dict:
    """Scheduler options for ``cluster.dashboard``; "" turns the dashboard off."""
    if dashboard:
        return {"dashboard": True, "dashboard_address": dashboard}
    # dashboard_address None would make distributed try port 8787 all the same (and warn when it is taken).
    return {"dashboard": False, "dashboard_address": DISABLED_HTTP}


def local_cluster(workers: int, *, dashboard: str = ":8787", security: Security | None = None) -> LocalCluster:
    """Worker processes on this machine, one thread each; over TLS when ``security`` is given."""
    distributed = _require("distributed", "cluster")
    return distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=dashboard or DISABLED_HTTP,
        scheduler_kwargs={"dashboard": bool(dashboard)}, security=security,
        protocol="tls://" if security is not None else None, preload=["grader.grading.local_worker_setup"])


def asks_for_gpu(job_extra: tuple[str, ...] | list[str]) -> bool:
    """Whether these #SBATCH options book a GPU.

    >>> asks_for_gpu(["--gres=gpu:a100:1"]), asks_for_gpu(["--gpus-per-node=1"]), asks_for_gpu(["--exclusive"])
    (True, True, False)
    """
    return any(re.search(r"--gres=\S*gpu|--gpus\b|--gpus-per-|^-G\b", line.strip()) for line in job_extra)


def slurm_worker_args(settings: SlurmSettings) -> list[str]:
    """The dask worker's own options: retire before the walltime ends, and advertise the GPU when one is booked.

    The lifetime is staggered by at most half the margin, so even the last worker retires before Slurm kills it.
    """
    lifetime = settings.walltime_s - settings.lifetime_margin_s
    stagger = min(STAGGER_S, settings.lifetime_margin_s / 2)
    args = ["--lifetime", f"{round(lifetime)}s", "--lifetime-stagger", f"{round(stagger)}s"]
    if settings.gpus > 0 or asks_for_gpu(settings.job_extra):
        args += ["--resources", GPU_RESOURCE]
    return args


def _job_directives(settings: SlurmSettings) -> list[str]:
    gpu = [f"--gres=gpu:{settings.gpus}"] if settings.gpus > 0 and not asks_for_gpu(settings.job_extra) else []
    return [*settings.job_extra, *gpu]


def _job_prologue(settings: SlurmSettings, mnist_root: Path | None) -> list[str]:
    # The grader's exports come last, so that nothing the instructor's prologue loads can undo them.
    exports = ["export OMP_NUM_THREADS=1"]
    if mnist_root is not None:
        exports.append(f"export MNIST_ROOT={shlex.quote(str(mnist_root))}")
    return [*settings.prologue, *exports]


def slurm_cluster(settings: SlurmSettings, *, dashboard: str = ":8787", security: Security | None = None,
                  mnist_root: Path | None = None) -> SLURMCluster:
    """A dask_jobqueue.SLURMCluster whose jobs each run one single-threaded worker; not scaled yet.

    Its scheduler runs in this process; each job books ``settings.cores`` CPUs and ``settings.memory``
    for the worker and the kernels it starts.
    """
    if shutil.which("sbatch") is None:
        raise ClusterUnavailable("grading on Slurm needs its sbatch command, which is not on the PATH here: run "
                                 "`grader grade` on a login node of the Slurm cluster")
    jobqueue = _require("dask_jobqueue", "slurm")
    return jobqueue.SLURMCluster(
        queue=settings.queue, account=settings.account, walltime=settings.walltime,
        cores=1, processes=1, job_cpu=settings.cores, memory=settings.memory,  # 1 thread, all the job's CPUs
        job_name="grader", python=settings.python or sys.executable,
        job_extra_directives=_job_directives(settings), job_script_prologue=_job_prologue(settings, mnist_root),
        worker_extra_args=slurm_worker_args(settings), interface=settings.interface,
        log_directory=str(settings.log_directory) if settings.log_directory else None,
        security=security, scheduler_options=_scheduler_dashboard(dashboard))


def kubernetes_spec(settings: KubernetesSettings, *, workers: int = 1, mnist_root: Path | None = None,
                    name: str = "grader") -> dict:
    """The DaskCluster resource dask-kubernetes' operator makes pods from: ``settings.workers`` (else ``workers``)
    single-threaded workers of ``settings.image``, each with its CPU, memory and GPU booked."""
    operator = _require("dask_kubernetes.operator", "kubernetes")
    env = {"OMP_NUM_THREADS": "1"} | ({"MNIST_ROOT": str(mnist_root)} if mnist_root is not None else {})
    command = ["dask-worker", "--nthreads", "1"] + (["--resources", GPU_RESOURCE] if settings.gpu > 0 else [])
    spec = operator.make_cluster_spec(name=name, image=settings.image, n_workers=settings.workers or workers,
                                      env=env, worker_command=" ".join(command))
    booked = {"cpu": settings.cpu, "memory": settings.memory}
    gpu = {"nvidia.com/gpu": str(settings.gpu)} if settings.gpu > 0 else {}  # extended resources: limits suffice
    # Only the workers': make_cluster_spec would give the scheduler pod the same CPUs, memory and GPU.
    spec["spec"]["worker"]["spec"]["containers"][0]["resources"] = {"requests": dict(booked),
                                                                    "limits": booked | gpu}
    # As start_cluster sets it for the schedulers it runs here: one task at a time per worker thread.
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    scheduler.setdefault("env", []).append({"name": "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION", "value": "1.0"})
    return spec


def kubernetes_cluster(settings: KubernetesSettings, *, workers: int = 1,
                       mnist_root: Path | None = None) -> KubeCluster:
    """A KubeCluster made from ``kubernetes_spec``, under a name of its own; its pods go when it is closed."""
    operator = _require("dask_kubernetes.operator", "kubernetes")
    name = f"grader-{uuid.uuid4().hex[:8]}"  # two batches in one namespace must not share (connect to) one cluster
    spec = kubernetes_spec(settings, workers=workers, mnist_root=mnist_root, name=name)
    try:
        return operator.KubeCluster(custom_cluster_spec=spec, namespace=settings.namespace, shutdown_on_close=True,
                                    quiet=True)
    except Exception as e:  # noqa: BLE001 - kr8s and the operator raise many kinds; each means "not here"
        raise ClusterUnavailable(
            f"cannot start the Kubernetes cluster {name} ({type(e).__name__}: {str(e)[:300]}). Check that kubectl "
            "reaches the cluster from here (kubectl get pods) and that the dask operator is installed in it") from None


def _start(kind: str, settings: ClusterSettings, workers: int) -> LocalCluster | SLURMCluster | KubeCluster:
    if kind == "local":
        return local_cluster(workers, dashboard=settings.dashboard, security=security(settings))
    if kind == "slurm":
        slurm = settings.slurm or SlurmSettings()
        cluster = slurm_cluster(slurm, dashboard=settings.dashboard, security=security(settings),
                                mnist_root=settings.mnist_root)
        jobs = slurm.jobs or workers
        try:
            # Adaptive with a fixed size, as dask-jobqueue advises for --lifetime: a retired job is replaced.
            cluster.adapt(minimum_jobs=jobs, maximum_jobs=jobs)
        except BaseException:
            cluster.close()
            raise
        return cluster
    if settings.kubernetes is None:
        raise ClusterUnavailable("a Kubernetes cluster needs a [cluster.kubernetes] table in grader.toml, with the "
                                 "workers' image (image = \"ghcr.io/course/grader:2026\")")
    if settings.tls is not None:
        # The operator's pods hold no certificates: the grader's Security would refuse their plain TCP.
        raise ClusterUnavailable("[cluster.tls] is not supported with kubernetes: its pods have no certificates. "
                                 "Leave TLS out, or start the scheduler yourself and pass its tls:// address")
    return kubernetes_cluster(settings.kubernetes, workers=workers, mnist_root=settings.mnist_root)


@contextlib.contextmanager
def start_cluster(kind: str, settings: ClusterSettings, workers: int) -> Iterator[object]:
    """What ``distributed.Client`` accepts for ``kind``: a cluster started here (closed on exit) for local, slurm
    and kubernetes, or the address itself; ``workers`` is the size when the settings give none."""
    if kind not in CLUSTER_KINDS:
        if not is_cluster_address(kind):
            raise UserError(f"unknown cluster {kind!r}: expected one of {', '.join(CLUSTER_KINDS)}, or a dask "
                            "scheduler's address such as tcp://head:8786")
        yield kind
        return
    import dask

    # The grader keeps no more jobs in flight than there are threads (cluster_batch); for other clients' tasks
    # too, a worker should not hold tasks it has not started: a worker that dies fails every task it holds.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = _start(kind, settings, max(workers, 1))
    try:
        yield cluster
    finally:
        cluster.close()
